"""``voiceagent phone --workers N``: N worker processes serve one port (SO_REUSEPORT, the
kernel spreads the connections among them), under one supervisor.

The supervisor binds the port first (with ``--port 0`` the kernel picks it) and keeps that
socket, bound but not listening, for as long as it runs, so the port stays the fleet's while
workers come and go. Each worker is ``python -m voiceagent.phone_workers``: an ordinary
``voiceagent phone`` process (``phone.serve``) listening on that port with SO_REUSEPORT,
its options passed in ``WORKER_ENV``. The supervisor prints the URL (the first stdout line)
once every worker listens; the workers' stderr lines reach its stderr prefixed with
``[worker N]``, their stdout lines its stdout as they are.

SIGTERM or SIGINT to the supervisor: each worker is sent SIGTERM and drains (``--drain-s``);
the supervisor exits when all have (0 if all exited 0). A worker that exits on its own is
restarted after a backoff (0.5 s, doubling while it keeps dying within ``STABLE_S`` of its
start, at most ``MAX_BACKOFF_S``), logged. A worker that fails before the first URL was
printed fails the command with its exit status (a usage error is said by the worker).
Workers read their stdin, a pipe from the supervisor: when it closes (the supervisor is gone,
even by SIGKILL) they drain as on SIGTERM, so none is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from subprocess import PIPE
from typing import IO

import anyio
from anyio.abc import ByteReceiveStream, Process

WORKER_ENV = "VOICEAGENT_PHONE_WORKER"  # the worker's options and number, as JSON
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_S = 30.0  # a worker that lived this long and died is restarted after FIRST_BACKOFF_S
KILL_GRACE_S = 15.0  # after --drain-s, a worker that has not exited is killed
PIPE_GRACE_S = 2.0  # a worker gone: how long its pipes may still be read
PROG = "voiceagent phone"


def say(line: str) -> None:
    print(f"{PROG} (supervisor): {line}", file=sys.stderr, flush=True)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT, not listening: it holds the port
    (the kernel's pick for 0) for the workers, who bind it too and listen."""
    from voiceagent.phone import PhoneError

    if not hasattr(socket, "SO_REUSEPORT"):
        raise PhoneError("--workers N > 1 needs SO_REUSEPORT, which this system lacks: "
                         "run one process per port behind a load balancer")  # fmt: skip
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise PhoneError(f"--host {host}: {error}") from error
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError as error:
            raise PhoneError(f"--workers N > 1 needs SO_REUSEPORT: {error}") from error
        try:
            sock.bind(address)
        except OSError as error:
            raise PhoneError(f"--host {host} --port {port}: {error.strerror}") from error
    except BaseException:
        sock.close()
        raise
    return sock


def supervise(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Runs ``args.workers`` workers on one port until SIGTERM or SIGINT; their exit status."""
    reserved = reserve_port(args.host, args.port)
    try:
        supervisor = Supervisor(args, env, reserved.getsockname()[1])
        return anyio.run(supervisor.run)
    finally:
        reserved.close()


@dataclass
class Slot:
    """One worker's place: the process running in it now, and its restarts."""

    number: int
    process: Process | None = None
    listening: anyio.Event = field(default_factory=anyio.Event)
    url: str | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self, args: argparse.Namespace, env: Mapping[str, str], port: int) -> None:
        self.args = args
        self.env = dict(env)
        self.port = port
        self.slots = [Slot(n) for n in range(1, args.workers + 1)]
        self.draining = anyio.Event()
        self.changed = anyio.Event()  # set (and replaced) when a worker listens or exits
        self.failed: int | None = None  # a worker's exit status before all listened
        self.codes: dict[int, int] = {}  # worker -> its last exit status, once draining

    async def run(self) -> int:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as tg:
                for slot in self.slots:
                    tg.start_soon(self._keep, slot)
                tg.start_soon(self._on_signals, signals)
                await self._until_all_listen()
                if not self.draining.is_set():
                    print(self.slots[0].url, flush=True)  # the first stdout line: where to dial
                    say(f"{len(self.slots)} workers on port {self.port} (pids "
                        f"{', '.join(str(s.process.pid) for s in self.slots if s.process)}); "
                        "--max-calls applies to each")  # fmt: skip
                    if sys.platform != "linux":
                        say(f"on {sys.platform} SO_REUSEPORT may not spread the connections "
                            "over the workers (Linux does): check /health's worker")  # fmt: skip
                    await self.draining.wait()
                tg.start_soon(self._kill_after, self.args.drain_s + KILL_GRACE_S)
                # the task group ends when every worker has exited; then the killer goes
                await self._all_exited()
                tg.cancel_scope.cancel()
        if self.failed is not None:
            return self.failed
        bad = {n: code for n, code in self.codes.items() if code != 0}
        if bad:
            say("workers that did not exit cleanly: "
                + ", ".join(f"{n} ({describe(c)})" for n, c in sorted(bad.items())))  # fmt: skip
            return 1
        return 0

    async def _on_signals(self, signals: AsyncIterator[int]) -> None:
        """The first SIGTERM or SIGINT drains (at any time, even before all listen)."""
        async for signum in signals:
            name = signal.Signals(signum).name
            if self.draining.is_set():
                say(f"{name}: already draining (up to --drain-s {self.args.drain_s:g} s)")
                continue
            say(f"{name}: draining {len(self.slots)} workers, up to {self.args.drain_s:.0f} s")
            self._drain()

    async def _until_all_listen(self) -> None:
        while not all(s.listening.is_set() for s in self.slots) and not self.draining.is_set():
            await self.changed.wait()

    def _drain(self) -> None:
        self.draining.set()
        self._changed()
        for slot in self.slots:
            _signal(slot.process, signal.SIGTERM)

    async def _all_exited(self) -> None:
        while any(s.process is not None for s in self.slots):
            await self.changed.wait()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def _kill_after(self, delay_s: float) -> None:
        await anyio.sleep(delay_s)
        for slot in self.slots:
            if slot.process is not None:
                say(f"worker {slot.number} (pid {slot.process.pid}) still running after "
                    f"--drain-s: killed")  # fmt: skip
                _signal(slot.process, signal.SIGKILL)

    async def _keep(self, slot: Slot) -> None:
        """Runs the slot's worker, and again whenever it exits while not draining."""
        backoff = FIRST_BACKOFF_S
        while not self.draining.is_set():
            began = time.monotonic()
            pid, code = await self._run_worker(slot)
            if self.draining.is_set():
                return
            if not all(s.url for s in self.slots) and slot.restarts == 0:
                say(f"worker {slot.number} exited ({describe(code)}) before serving: stopping")
                self.failed = code if code > 0 else 1
                self._drain()
                return
            if time.monotonic() - began >= STABLE_S:
                backoff = FIRST_BACKOFF_S
            slot.restarts += 1
            say(f"worker {slot.number} (pid {pid}) exited unexpectedly ({describe(code)}): "
                f"restarting it in {backoff:g} s (restart {slot.restarts})")  # fmt: skip
            with anyio.move_on_after(backoff):
                await self.draining.wait()
            backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def _run_worker(self, slot: Slot) -> tuple[int, int]:
        """One worker process in ``slot``, until it exits: its pid and exit status."""
        spec = {"args": vars(self.args) | {"port": self.port, "workers": 1, "worker": slot.number,
                "reuse_port": True}}  # fmt: skip
        env = self.env | {WORKER_ENV: json.dumps(spec, default=str)}
        process = await anyio.open_process(
            [sys.executable, "-m", "voiceagent.phone_workers"],
            stdin=PIPE,  # never written: it closes when the supervisor is gone
            stdout=PIPE,
            stderr=PIPE,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor, which drains
        )
        slot.process = process
        if self.draining.is_set():  # the signal came while it was starting
            _signal(process, signal.SIGTERM)
        try:
            async with anyio.create_task_group() as tg:
                assert process.stdout is not None and process.stderr is not None
                tg.start_soon(
                    self._pump, slot, process.stderr, sys.stderr, f"[worker {slot.number}] "
                )
                tg.start_soon(self._pump, slot, process.stdout, sys.stdout, None)
                code = await process.wait()
                # its last lines, unless something it started still holds the pipes open
                tg.cancel_scope.deadline = anyio.current_time() + PIPE_GRACE_S
            self.codes[slot.number] = code  # before the supervisor can see it gone
        finally:
            slot.process = None
            self._changed()
            if process.stdin is not None:
                await process.stdin.aclose()
        return process.pid, code

    async def _pump(
        self, slot: Slot, stream: ByteReceiveStream, out: IO[str], prefix: str | None
    ) -> None:
        """Copies the worker's lines to ``out`` (stderr ones prefixed); its first stdout line
        is its URL: the worker listens."""
        rest = b""
        first = prefix is None
        try:
            async for chunk in stream:
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for raw in lines:
                    line = raw.decode(errors="replace")
                    if first:
                        first = False
                        slot.url = line.strip()
                        slot.listening.set()
                        self._changed()
                        continue
                    out.write(f"{prefix or ''}{line}\n")
                out.flush()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        if rest:
            out.write(f"{prefix or ''}{rest.decode(errors='replace')}\n")
            out.flush()


def describe(code: int) -> str:
    """An exit status as people read it: "exit 2", or the signal that ended the process."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def _signal(process: Process | None, signum: signal.Signals) -> None:
    if process is not None and process.returncode is None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass


def _drain_when_orphaned() -> None:
    """Waits (on a thread) for stdin to close, the supervisor gone: then drains as on
    SIGTERM, so no worker outlives its supervisor."""

    def watch() -> None:
        try:  # os.read, not sys.stdin: a buffered read would hold its lock at exit
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def worker_main() -> int:
    """One worker: ``voiceagent phone`` with the supervisor's options, on its port."""
    from voiceagent.phone import main

    spec = json.loads(os.environ.pop(WORKER_ENV))
    args = argparse.Namespace(**spec["args"])
    _drain_when_orphaned()
    return main(args)


if __name__ == "__main__":
    sys.exit(worker_main())
