"""``voiceagent phone`` against a hostile caller, over real sockets: ids and keys from the wire
never name a file outside ``--timeline DIR``, never forge a log line or a stdout line, never
reach the terminal as escapes; a flood of unknown marks is a few log lines, not thousands."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import pytest
from test_phone_call import SAFETY_S, played

from voiceagent.testing.pulse import PulseServer
from voiceagent.testing.twilio import TwilioCaller, wire

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))
EXAMPLE = str(Path(__file__).parents[1] / "examples" / "phone_bot.py")
FORGED_SID = "../../x\n\x1b[31mFORGED"


class HostileCaller(TwilioCaller):
    """A caller that sends what no carrier would: any DTMF 'digit', marks never sent."""

    async def send_raw_dtmf(self, digit: str) -> None:
        await self._send(lambda seq: wire.dtmf(seq, self.stream_sid, digit))

    async def echo_unknown_mark(self, name: str) -> None:
        await self._send(lambda seq: wire.mark(seq, self.stream_sid, name))


@dataclass
class Served:
    stdout: str
    stderr: str
    code: int


class Output:
    """A process's stream, read to its end in the background."""

    def __init__(self) -> None:
        self.text = bytearray()
        self._grew = anyio.Event()

    async def read(self, stream: anyio.abc.ByteReceiveStream) -> None:
        async for chunk in stream:
            self.text.extend(chunk)
            self._grew.set()
            self._grew = anyio.Event()

    async def wait_for(self, needle: bytes) -> None:
        with anyio.fail_after(SAFETY_S):
            while needle not in self.text:
                await self._grew.wait()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMALLEST", "TWILIO"))}
    for name in ("ELECTRON_BASE_URL", "LIGHTNING_URL", "PULSE_URL"):
        env.pop(name, None)
    return env | {"VOICEAGENT_LOG": "info"}


@dataclass
class PhoneProcess:
    """A running ``voiceagent phone``: where to dial, its stdout and stderr as they come."""

    url: str
    out: Output
    err: Output
    process: anyio.abc.Process

    async def end_after_the_call(self) -> int:
        """Once the call has ended: SIGTERM, and the exit code."""
        await self.err.wait_for(b"call ended")
        self.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(SAFETY_S):
            return await self.process.wait()


@asynccontextmanager
async def phone_process(*args: str) -> AsyncIterator[PhoneProcess]:
    """``voiceagent phone`` (the test voice, a Pulse fake) as a process, its output read in
    the background; killed on the way out if a failed wait left it running."""
    async with PulseServer(transcribe="table") as pulse:
        command = [VOICEAGENT, "phone", EXAMPLE, "--port", "0", "--tts", "test", "--stt",
                   "pulse", "--stt-url", pulse.url, *args]  # fmt: skip
        async with await anyio.open_process(command, env=_env()) as process:
            assert process.stdout is not None and process.stderr is not None
            out, err = Output(), Output()
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(out.read, process.stdout)
                    tg.start_soon(err.read, process.stderr)
                    await out.wait_for(b"\n")
                    yield PhoneProcess(out.text.decode().splitlines()[0], out, err, process)
            finally:
                if process.returncode is None:
                    process.kill()


async def serve_one_call(
    timeline: Path, caller_of: Callable[[str], HostileCaller], *, marks: int = 0
) -> tuple[Served, HostileCaller]:
    """``voiceagent phone --timeline`` as a process; one call that hears the greeting, sends
    a forged key, a real one and ``marks`` unknown marks, and hangs up; then SIGTERM."""
    async with phone_process("--timeline", str(timeline)) as phone:
        caller = caller_of(phone.url)
        async with caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)  # the greeting
            await caller.send_raw_dtmf("1\nWARNING voiceagent: FORGED\x1b[2J")
            await caller.send_raw_dtmf("5")
            for i in range(marks):
                await caller.echo_unknown_mark(f"bogus-{i}")
            await anyio.sleep(0.3)
        code = await phone.end_after_the_call()
    return Served(phone.out.text.decode(), phone.err.text.decode(), code), caller


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def assert_inert(served: Served) -> None:
    """Nothing from the wire forged a line or reached the terminal as an escape."""
    for text in (served.stdout, served.stderr):
        assert "\x1b" not in text
        assert not any(line.startswith(("FORGED", "WARNING voiceagent: FORGED", "\x1b"))
                       for line in text.splitlines())  # fmt: skip


async def test_a_forged_call_sid_writes_inside_the_timeline_folder_only(tmp_path: Path) -> None:
    timeline = tmp_path / "a" / "b"
    timeline.mkdir(parents=True)
    served, _ = await serve_one_call(timeline, lambda url: HostileCaller(url, call_sid=FORGED_SID))
    assert served.code == 0, served.stderr
    written = files_under(tmp_path)
    assert len(written) == 1 and written[0].parent == timeline, written
    assert json.loads(written[0].read_text())["turns"]  # the greeting's turn


@pytest.mark.parametrize("kind", ["absolute", "nul", "long"])
async def test_an_id_that_is_no_file_name_still_gets_its_timeline(
    tmp_path: Path, kind: str
) -> None:
    timeline, elsewhere = tmp_path / "timelines", tmp_path / "elsewhere"
    timeline.mkdir()
    elsewhere.mkdir()
    sid = {"absolute": str(elsewhere / "x"), "nul": "CA\x00x", "long": "CA" + "9" * 5000}[kind]
    served, _ = await serve_one_call(timeline, lambda url: HostileCaller(url, call_sid=sid))
    assert served.code == 0, served.stderr
    written = files_under(tmp_path)
    assert len(written) == 1 and written[0].parent == timeline, (written, served.stderr)
    assert len(written[0].name) <= 110


async def test_wire_values_never_forge_a_line_nor_reach_the_terminal(tmp_path: Path) -> None:
    sid = "CA1\nWARNING voiceagent: FORGED\x1b[31m"
    served, _ = await serve_one_call(
        tmp_path,
        lambda url: HostileCaller(url, call_sid=sid, stream_sid="MZ1\r\nFORGED\x1b]0;t\x07"),
    )
    assert served.code == 0, served.stderr
    assert_inert(served)
    escaped = "CA1\\x0aWARNING voiceagent: FORGED\\x1b[31m"
    lines = served.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{escaped} "), lines  # URL, the greeting
    assert f"{escaped} DTMF 5" in served.stderr  # a key is told; a "key" no keypad has is not
    assert "a DTMF key no keypad has: 1\\x0aWARNING voiceagent: FORGED\\x1b[2J" in served.stderr
    assert "DTMF 1" not in served.stderr
    assert f"{escaped} call started" in served.stderr
    assert f"call {escaped} started (stream MZ1\\x0d\\x0aFORGED" in served.stderr  # the log


async def test_a_flood_of_unknown_marks_is_a_few_log_lines(tmp_path: Path) -> None:
    served, _ = await serve_one_call(tmp_path, lambda url: HostileCaller(url), marks=300)
    assert served.code == 0, served.stderr
    warned = [line for line in served.stderr.splitlines() if "bogus-" in line or "mark" in line]
    assert 1 <= len(warned) <= 5, warned
    assert any("300" in line for line in warned), warned  # the count is told, at the latest
