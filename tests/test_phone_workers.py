"""``voiceagent phone --workers N`` as processes over real sockets: one URL printed once all
workers listen, calls spread over the workers by the kernel (SO_REUSEPORT) and completed,
SIGTERM to the supervisor draining a call in progress before every process exits, a killed
worker restarted, ``--port 0`` and a fixed port."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import ByteReceiveStream, Process, TaskGroup
from test_phone_call import SAFETY_S, played
from test_phone_cli import EXAMPLE, VOICEAGENT, _env
from websockets.exceptions import InvalidStatus

from voiceagent.testing.pulse import PulseServer
from voiceagent.testing.twilio import TwilioCaller

# SO_REUSEPORT spreads connections over the listeners on Linux (macOS only allows the bind)
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the workers balance on Linux")
ATTEMPTS = 30  # new connections until each of 2 workers had one: 2^-29 to fail
ROUNDS = 8  # rounds of CONCURRENT calls until both workers had one: 2 x (1/2)^4 per round
CONCURRENT = 4


@dataclass
class Fleet:
    """A running ``voiceagent phone --workers N``: its URL and what it printed so far."""

    process: Process
    url: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    async def until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(SAFETY_S):
            while not condition():
                changed = self.changed
                await changed.wait()

    def worker_of(self, call_sid: str) -> int | None:
        """The worker whose log says it started ``call_sid``."""
        for line in self.stderr:
            found = re.match(rf"\[worker (\d+)\] {call_sid} call started", line)
            if found:
                return int(found.group(1))
        return None

    async def health(self) -> dict[str, object]:
        """/health on a new connection, so the kernel may hand it to any worker."""
        async with httpx2.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/health")
        assert response.status_code == 200
        body: dict[str, object] = response.json()
        return body

    async def pids(self) -> dict[int, int]:
        """Worker number -> pid, from /health, asked until every worker answered."""
        seen: dict[int, int] = {}
        with anyio.fail_after(SAFETY_S):
            while len(seen) < 2:
                body = await self.health()
                seen[int(str(body["worker"]))] = int(str(body["pid"]))
        return seen


async def _lines(stream: ByteReceiveStream, into: list[str], fleet: Fleet | None) -> None:
    rest = b""
    async for chunk in stream:
        *lines, rest = (rest + chunk).split(b"\n")
        into.extend(line.decode() for line in lines)
        if fleet is not None:
            fleet.changed.set()
            fleet.changed = anyio.Event()


@asynccontextmanager
async def fleet(
    *options: str, workers: int = 2, env: dict[str, str] | None = None
) -> AsyncIterator[Fleet]:
    """The example bot on ``workers`` processes, TestTTS, the Pulse fake; ``env`` added to
    the environment; killed on leaving if still running."""
    async with PulseServer(transcribe="table") as pulse:
        command = [VOICEAGENT, "phone", EXAMPLE, "--tts", "test", "--stt", "pulse",
                   "--stt-url", pulse.url, "--workers", str(workers), *options]  # fmt: skip
        if "--port" not in options:
            command += ["--port", "0"]
        async with await anyio.open_process(command, env=_env() | (env or {})) as process:
            assert process.stdout is not None and process.stderr is not None
            try:
                first = b""
                with anyio.fail_after(SAFETY_S):
                    while not first.endswith(b"\n"):
                        first += await process.stdout.receive(1)
                running = Fleet(process, first.decode().strip())
                tg: TaskGroup
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_lines, process.stdout, running.stdout, running)
                    tg.start_soon(_lines, process.stderr, running.stderr, running)
                    yield running
                    tg.cancel_scope.cancel()
            finally:
                if process.returncode is None:
                    process.kill()


async def _call(url: str) -> TwilioCaller:
    """A call that hears the greeting, then hangs up (Twilio's stop)."""
    caller = TwilioCaller(url)
    async with caller:
        with anyio.fail_after(SAFETY_S):
            await caller.wait_for(lambda: len(played(caller)) >= 1)
    return caller


def _gone(pid: int) -> bool:
    """The process has exited (a zombie whose new parent has not reaped it counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def test_calls_land_on_both_workers_and_complete() -> None:
    async with fleet() as running:
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/twilio", running.url)
        assert running.port != 0
        callers: list[TwilioCaller] = []
        workers: set[int | None] = set()
        for _ in range(ROUNDS):
            results: list[TwilioCaller] = []

            async def place(into: list[TwilioCaller] = results) -> None:
                into.append(await _call(running.url))

            async with anyio.create_task_group() as tg:
                for _ in range(CONCURRENT):
                    tg.start_soon(place)
            callers += results
            sids = [c.call_sid for c in results]
            await running.until(lambda: all(running.worker_of(sid) for sid in sids))  # noqa: B023
            workers |= {running.worker_of(sid) for sid in sids}
            if workers == {1, 2}:
                break
        pids = await running.pids()
        ended = " call ended (hang_up)"
        await running.until(lambda: sum(ended in line for line in running.stderr) == len(callers))
        running.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(SAFETY_S):
            code = await running.process.wait()
    assert workers == {1, 2}, f"{len(callers)} calls, all on worker {workers}"
    assert all(c.protocol_errors == [] and len(played(c)) >= 1 for c in callers)
    assert set(pids) == {1, 2} and len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert code == 0, "\n".join(running.stderr)
    assert running.stdout.count(running.url) == 0  # the URL was printed once: the first line
    served = [line for line in running.stderr if re.match(r"\[worker \d\] served \d+ call", line)]
    assert sorted(line.split()[1] for line in served) == ["1]", "2]"]
    assert sum(int(line.split()[3]) for line in served) == len(callers)


async def test_sigterm_to_the_supervisor_drains_the_call_then_every_process_exits() -> None:
    async with fleet("--drain-s", "60") as running:
        pids = await running.pids()
        caller = TwilioCaller(running.url)
        async with caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)  # the greeting
            running.process.send_signal(signal.SIGTERM)
            await running.until(
                lambda: sum(" SIGTERM: draining " in line for line in running.stderr) >= 3
            )
            with anyio.fail_after(SAFETY_S):
                while True:  # no worker listens any more; the call goes on
                    try:
                        stream = await anyio.connect_tcp("127.0.0.1", running.port)
                    except OSError:
                        break
                    await stream.aclose()
                    await anyio.sleep(0.05)
            assert not caller.ended
            assert running.process.returncode is None  # waiting for the call
            later = caller.now() + 0.5
            with anyio.fail_after(SAFETY_S):  # the line stays up through the drain
                await caller.wait_for(lambda: caller.now() > later)
            assert not caller.ended
        with anyio.fail_after(SAFETY_S):
            code = await running.process.wait()
        assert all(_gone(pid) for pid in pids.values())  # the supervisor waited for them
    assert code == 0, "\n".join(running.stderr)
    assert caller.protocol_errors == []
    drained = [line for line in running.stderr if "SIGTERM: draining" in line]
    assert drained[0].startswith("voiceagent phone (supervisor): SIGTERM: draining 2 workers")
    assert sorted(re.findall(r"draining (\d) call", " ".join(drained))) == ["0", "1"]
    assert any(line.endswith(f"{caller.call_sid} call ended (hang_up)") for line in running.stderr)


async def test_a_killed_worker_is_restarted_with_backoff_and_serves_again() -> None:
    async with fleet() as running:
        before = await running.pids()
        pid = before[2]
        for restart, wait in ((1, "0.5"), (2, "1")):  # killed again soon after: a longer wait
            os.kill(pid, signal.SIGKILL)
            said = (f"worker 2 (pid {pid}) exited unexpectedly (SIGKILL): "
                    f"restarting it in {wait} s (restart {restart})")  # fmt: skip
            await running.until(lambda: any(said in line for line in running.stderr))  # noqa: B023
            with anyio.fail_after(SAFETY_S):
                while (after := await running.pids())[2] == pid:
                    pass
            pid = after[2]
        assert after[1] == before[1]  # the other worker went on
        callers = [await _call(running.url) for _ in range(2)]
        running.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(SAFETY_S):
            code = await running.process.wait()
    assert code == 0, "\n".join(running.stderr)
    assert all(c.protocol_errors == [] and len(played(c)) >= 1 for c in callers)
    assert all("ws://" not in line for line in running.stdout)  # the URL printed once


async def test_max_calls_counts_per_worker() -> None:
    async with fleet("--max-calls", "1") as running, AsyncExitStack() as held:
        admitted: list[TwilioCaller] = []
        refused = 0
        for _ in range(ATTEMPTS):  # each worker's one place taken, the rest refused
            try:
                caller = await held.enter_async_context(TwilioCaller(running.url))
            except InvalidStatus as error:
                assert error.response.status_code == 503
                refused += 1
                continue
            admitted.append(caller)
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)  # noqa: B023
            if len(admitted) == 2:
                break
        sids = [c.call_sid for c in admitted]
        await running.until(lambda: all(running.worker_of(sid) for sid in sids))
        assert sorted(running.worker_of(sid) or 0 for sid in sids) == [1, 2]
        with pytest.raises(InvalidStatus) as full:  # both workers full: any connection
            await held.enter_async_context(TwilioCaller(running.url))
        said = "refused a call: 1 calls in progress (--max-calls)"
        await running.until(lambda: sum(said in line for line in running.stderr) > refused)
    assert full.value.response.status_code == 503
    assert all(c.protocol_errors == [] for c in admitted)
    assert sum(said in line for line in running.stderr) == refused + 1  # and the last one


async def test_the_workers_drain_and_exit_when_the_supervisor_is_killed() -> None:
    async with fleet() as running:
        pids = await running.pids()
        running.process.kill()  # SIGKILL: no drain of its own, its pipes close
        with anyio.fail_after(SAFETY_S):
            for _ in itertools.count():
                if all(_gone(pid) for pid in pids.values()):
                    break
                await anyio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_fixed_port_is_shared_by_the_workers() -> None:
    port = _free_port()
    async with fleet("--port", str(port), workers=3) as running:
        assert running.url == f"ws://127.0.0.1:{port}/twilio"
        body = await running.health()
        assert body["status"] == "ok" and body["worker"] in (1, 2, 3)
        running.process.send_signal(signal.SIGINT)  # Ctrl-C drains too
        with anyio.fail_after(SAFETY_S):
            code = await running.process.wait()
    assert code == 0, "\n".join(running.stderr)
    assert sum("served 0 call(s)" in line for line in running.stderr) == 3


def test_a_port_in_use_is_a_clear_error_and_no_worker_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([VOICEAGENT, "phone", "--port", str(port), "--workers", "2",
                               "--tts", "test", "--stt-url", "ws://127.0.0.1:9/x"],
                              env=_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert f"--port {port}" in done.stderr and "[worker" not in done.stderr


def test_fewer_than_one_worker_is_refused() -> None:
    done = subprocess.run([VOICEAGENT, "phone", "--port", "0", "--workers", "0", "--tts", "test",
                           "--stt-url", "ws://127.0.0.1:9/x"], env=_env(), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "--workers 0" in done.stderr


def test_a_usage_error_is_said_once_by_the_supervisor() -> None:
    env = {**_env(), "TWILIO_AUTH_TOKEN": "tok"}
    done = subprocess.run([VOICEAGENT, "phone", "--port", "0", "--workers", "2", "--tts", "test",
                           "--stt-url", "ws://127.0.0.1:9/x"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "--public-url" in done.stderr and "[worker" not in done.stderr


def test_a_worker_that_cannot_start_fails_the_command() -> None:
    done = subprocess.run([VOICEAGENT, "phone", "no_such_module_here", "--port", "0",
                           "--workers", "2", "--tts", "test", "--stt-url", "ws://127.0.0.1:9/x"],
                          env=_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "[worker " in done.stderr and "before serving: stopping" in done.stderr


def test_the_readme_deployment_commands_parse_and_name_files_that_exist() -> None:
    from voiceagent.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
    commands = [line for line in section.splitlines() if line.startswith("voiceagent phone ")]
    assert len(commands) == 2
    for command in commands:
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.workers == 2 and args.public_url == "wss://bot.example.com"
        assert (Path(__file__).resolve().parents[1] / args.agent).is_file()
    for path in re.findall(r"`((?:examples|bench|tests)/[\w./]+)`", section):
        assert (Path(__file__).resolve().parents[1] / path).is_file(), path
