"""A real ``redis-server`` per test (own port, own temp dir) and fleet worker processes.

No redis-server installed: the fleet tests skip saying why, or fail under CI (tests/ci_env.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ci_env import missing

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "fleet_worker.py"


def require_redis_server() -> str:
    """The redis-server binary, or skip (fail in CI) saying why."""
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if path is None:
        reason = (
            "redis-server is not installed (Debian package redis-server, installed by "
            ".ci/system-packages): the fleet's Redis tests need a real one"
        )
        missing(reason)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1, stoppable and restartable on its port."""

    def __init__(self, binary: str, workdir: Path, password: str | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.workdir), "--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.client().ping():
                    return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def pause(self) -> None:
        """SIGSTOP: connections are accepted (by the kernel) and never answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server could not act on SIGTERM
            process.terminate()
            process.wait(timeout=20)

    def client(self) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5
        )

    def members(self, suffix: str) -> list[str]:
        """The members of the one fleet set ending in ``suffix`` (holders, queue, waiting)."""
        client = self.client()
        keys = client.keys(f"voiceagent:plan:*:{suffix}")
        assert len(keys) <= 1, keys
        return [m.decode() for m in client.zrange(keys[0], 0, -1)] if keys else []


def redis_server(tmp_path: Path, password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(require_redis_server(), tmp_path, password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Worker:
    """A fleet worker process (tests/fleet_worker.py): its stdout's JSON events, collected
    by a thread; it waits after ``ready`` until ``go``."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.stderr += line.decode(errors="replace")

    def seen(self, event: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["event"] == event]

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def finish(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """The worker's final ``finished`` event (it must exit 0 within the timeout)."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker hung; stderr:\n{self.stderr}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        assert code == 0, f"worker exited {code}; stderr:\n{self.stderr}"
        (final,) = self.seen("finished")
        return final

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_all(workers: Sequence[Worker]) -> None:
    """Both processes imported and ready, then released together."""
    for worker in workers:

        def ready(w: Worker = worker) -> bool:
            return bool(w.seen("ready")) or w.process.poll() is not None

        wait_for(ready, "a worker ready")
        assert worker.seen("ready"), f"worker died before ready; stderr:\n{worker.stderr}"
    for worker in workers:
        worker.go()
