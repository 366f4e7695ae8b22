"""A caller cannot starve the others: one that floods the server with audio faster than real
time is paced (the excess dropped before it costs anything) and closed, one that stays just
under the close is held to real time, and one that stops reading is closed; the normal call
beside each is answered as it is on a quiet server. Real sockets, 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from itertools import count
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import ByteReceiveStream
from test_phone_call import SAFETY_S, WEATHER, needs_espeak, phone_rig, played, spoken
from test_phone_cli import EXAMPLE, VOICEAGENT, _env
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voiceagent import audio
from voiceagent.adapters.inbound_pacer import BURST_S, FORGIVE_PER_S
from voiceagent.testing.pulse import PulseServer
from voiceagent.testing.twilio import TwilioCaller, wire
from voiceagent.testing.twilio.record import Received

RATE = 8000
SILENT = b"\xff\x7f"  # μ-law's two zeros
FRAME = b"\xff" * 160  # 20 ms of μ-law silence, as Twilio sends it
# The flood: an hour of audio in 1 s frames (under the 64 KiB message cap), as fast as the
# socket takes it. Unpaced, the server holds what it has not processed yet: the code before
# the pacer (e8d9bf6, 2c72d1e) peaked 35-53 MB above its quiet call (its inbox unbounded) and
# sent 1,400-3,000 s of the flood to the STT within 24 s; paced, under 2 MB and 2 s.
FLOOD_S = 3600
FLOOD_FRAME_S = 1.0
FLOOD_FRAMES = round(FLOOD_S / FLOOD_FRAME_S)
RSS_GROWTH_MB = 20  # the server's peak RSS over the flooded call, above the quiet call's
# The caller just under the close: dropped audio is forgiven at FORGIVE_PER_S a second, so
# at 1 + FORGIVE_PER_S times real time the debt never grows: paced for ever, never closed.
UNDER_PACE = 1.0 + FORGIVE_PER_S
UNDER_S = 10.0  # at least this long: unpaced, the STT would get UNDER_PACE × this
# (RSS tells nothing there: 1.5× real time is too little audio to show in RSS, paced or not.)
# The normal call's first audio beside a flood may be this much later than on the quiet
# server, in the same run: generous (a noisy 2-core machine), yet the 5 s late (or
# no answer) fails it.
FIRST_AUDIO_MARGIN_S = 1.0
REPLY_WAIT_S = 20.0  # an answer later than this is taken as missing
QUIET_S = 0.5  # an answer is complete once nothing more came for this long (marks played)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class Server:
    """``voiceagent phone`` in a process of its own (its RSS is the server's alone)."""

    url: str
    pid: int
    out: bytearray
    err: bytearray

    @property
    def stdout(self) -> str:
        return self.out.decode()

    @property
    def stderr(self) -> str:
        return self.err.decode()


@asynccontextmanager
async def phone_server(pulse: PulseServer) -> AsyncIterator[Server]:
    stt = ["--stt", "pulse", "--stt-url", pulse.url]
    command = [VOICEAGENT, "phone", EXAMPLE, "--port", "0", "--tts", "test", *stt,
               "--drain-s", "1"]  # fmt: skip
    env = {**_env(), "VOICEAGENT_LOG": "WARNING"}
    async with await anyio.open_process(command, env=env) as process:
        assert process.stdout is not None and process.stderr is not None
        out, err = bytearray(), bytearray()
        first_line = anyio.Event()

        async def collect(stream: ByteReceiveStream, into: bytearray) -> None:
            async for chunk in stream:  # read on: a full pipe would stall the server
                into += chunk
                if b"\n" in out:
                    first_line.set()

        try:
            async with anyio.create_task_group() as pipes:
                pipes.start_soon(collect, process.stdout, out)
                pipes.start_soon(collect, process.stderr, err)
                with anyio.fail_after(SAFETY_S):
                    await first_line.wait()
                yield Server(out.decode().splitlines()[0].strip(), process.pid, out, err)
                process.terminate()
                with anyio.fail_after(SAFETY_S):
                    await process.wait()
        finally:
            if process.returncode is None:
                process.kill()


class PeakRss:
    """The process's RSS, sampled every 50 ms while ``run`` runs: its peak above ``base``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = self.peak = _rss_mb(pid)

    @property
    def growth_mb(self) -> float:
        return self.peak - self.base

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, _rss_mb(self.pid))
            await anyio.sleep(0.05)


@dataclass
class Answer:
    """The normal call's turn, as its caller heard it (the caller simulator's clock)."""

    call_sid: str
    first_audio_s: float | None  # end of its question → the bot's first audio after it
    marks: int  # the answer's marks played
    audio_s: float  # the answer's audio


async def ask(url: str, beside: Callable[[], Awaitable[None]] | None = None) -> Answer:
    """A normal call: the greeting heard, then (after ``beside``) the question asked; its
    answer heard to the end."""
    caller = TwilioCaller(url)
    question = spoken(WEATHER)
    async with caller:
        with anyio.fail_after(SAFETY_S):
            await caller.wait_for(lambda: len(played(caller)) >= 1)  # the greeting
            if beside is not None:
                await beside()
            await caller.wait_for(lambda: not caller.pending_marks)
            at = math.ceil(caller.now() / wire.FRAME_S + 2) * wire.FRAME_S  # a frame's time
            caller.say(audio.silence(RATE // 5) + question + audio.silence(RATE), at=at)
            asked_end = at + 0.2 + len(question) / 2 / RATE  # the last frame of speech
            greeted = len(played(caller))
            with anyio.move_on_after(REPLY_WAIT_S):
                await caller.wait_for(lambda: len(played(caller)) > greeted)
                await _until_quiet(caller)
    # the bot's audio after the question: its frames that are not silence (an idle line
    # may send silence; TestTTS's tones are never silent)
    after = [(r.t, ulaw) for r in caller.received if r.t > asked_end and (ulaw := _audio(r))]
    marks = [name for name, outcome, t in caller.marks if outcome == "played" and t > asked_end]
    assert caller.protocol_errors == []
    return Answer(
        call_sid=caller.call_sid,
        first_audio_s=after[0][0] - asked_end if after else None,
        marks=len(marks),
        audio_s=sum(len(ulaw) for _, ulaw in after) / RATE,
    )


def _audio(received: Received) -> bytes:
    """The μ-law of a media message from the bot, b"" if it is no media or all silence."""
    if received.message is None or received.message.get("event") != "media":
        return b""
    ulaw = wire.media_payload(received.message) or b""
    return ulaw if ulaw.strip(SILENT) else b""


def _more(count: Callable[[], int], than: int) -> bool:
    return count() > than


async def _until_quiet(caller: TwilioCaller) -> None:
    """Until every mark sent was played and no audio came for ``QUIET_S``."""

    def heard() -> int:
        return sum(1 for r in caller.received if _audio(r))

    while not caller.ended:
        await caller.wait_for(lambda: not caller.pending_marks)
        seen = heard()
        with anyio.move_on_after(QUIET_S):
            await caller.wait_for(partial(_more, heard, seen))
        if heard() == seen and not caller.pending_marks:
            return


def assert_answered_as_quietly(quiet: Answer, flooded: Answer) -> None:
    assert quiet.first_audio_s is not None and quiet.marks > 0, quiet
    # every reply, whole: as many marks played and as much audio as on the quiet server
    assert flooded.marks == quiet.marks, (quiet, flooded)
    assert abs(flooded.audio_s - quiet.audio_s) < 0.1, (quiet, flooded)
    # Tests never assert wall-clock timings; this one compares, in the same run, the first
    # audio beside the flood with the quiet call's, as issue 15 asks ("the normal one's
    # first audio unchanged"), with a margin far above this machine's noise.
    assert flooded.first_audio_s is not None
    assert flooded.first_audio_s <= quiet.first_audio_s + FIRST_AUDIO_MARGIN_S, (quiet, flooded)


async def _start_call(ws: ClientConnection, call_sid: str) -> str:
    stream_sid = wire.new_sid("MZ")
    await ws.send(json.dumps(wire.connected()))
    start = wire.start("1", stream_sid, wire.new_sid("AC"), call_sid, {})
    await ws.send(json.dumps(start))
    return stream_sid


def _media(stream_sid: str, chunk: int, frame: bytes = FRAME) -> str:
    ms = 1000 * len(frame) // RATE
    return json.dumps(wire.media(str(chunk + 1), stream_sid, chunk, ms * chunk, frame))


async def _drain(ws: ClientConnection) -> None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


class Flood:
    """A caller that sends ``FLOOD_S`` of audio as fast as the socket takes it (reading what
    the server sends, so it sees the close)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.call_sid = wire.new_sid("CA")
        self.frames_sent = 0
        self.close_code: int | None = None
        self.close_reason = ""

    async def run(self) -> None:
        frame = b"\xff" * round(RATE * FLOOD_FRAME_S)
        async with connect(self.url, compression=None, max_size=None) as ws:
            stream_sid = await _start_call(ws, self.call_sid)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_drain, ws)
                try:
                    for chunk in range(FLOOD_FRAMES):
                        await ws.send(_media(stream_sid, chunk, frame))
                        self.frames_sent += 1
                        await anyio.lowlevel.checkpoint()  # a send need not wait: let go
                except ConnectionClosed:
                    pass
                with anyio.move_on_after(15):  # the server closes a flood: no need to stop
                    await ws.wait_closed()
                tg.cancel_scope.cancel()
            if (rcvd := ws.protocol.close_rcvd) is not None:  # what the server said
                self.close_code, self.close_reason = rcvd.code, rcvd.reason


class UnderFlood:
    """A caller that sends 20 ms frames at ``UNDER_PACE`` times real time until ``stop()``:
    just under what the server closes, so it is paced (its excess dropped) all along."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.call_sid = wire.new_sid("CA")
        self.frames_sent = 0
        self.began = self.ended = 0.0  # time.monotonic() before connecting, after its last send
        self.close_code: int | None = None  # set if the server closed it
        self.sending = anyio.Event()
        self._stop = anyio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self.began = time.monotonic()
        async with connect(self.url, compression=None, max_size=None) as ws:
            stream_sid = await _start_call(ws, self.call_sid)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_drain, ws)
                t0 = time.monotonic()
                self.sending.set()
                try:
                    for chunk in count():
                        if self._stop.is_set():
                            break
                        due = t0 + chunk * wire.FRAME_S / UNDER_PACE
                        await anyio.sleep(max(0.0, due - time.monotonic()))
                        await ws.send(_media(stream_sid, chunk))
                        self.frames_sent += 1
                except ConnectionClosed:
                    self.close_code = ws.close_code
                self.ended = time.monotonic()
                tg.cancel_scope.cancel()
            await ws.close()

    @property
    def sent_s(self) -> float:
        return self.frames_sent * wire.FRAME_S


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc"
)


@needs_espeak
@needs_proc
async def test_a_flooding_caller_is_closed_and_the_normal_call_beside_it_answered_as_quietly() -> (
    None
):
    async with PulseServer(transcribe="table") as pulse:
        pulse.table.add(spoken(WEATHER), WEATHER, sample_rate=RATE)
        async with phone_server(pulse) as server:
            # the same server, nobody flooding (its first call: if anything slower)
            quiet = await ask(server.url)
            rss = PeakRss(server.pid)  # after a whole call: the server is warm
            seen = len(pulse.connections)
            flood = Flood(server.url)
            async with anyio.create_task_group() as sampling:
                sampling.start_soon(rss.run)
                began = time.monotonic()
                async with anyio.create_task_group() as tg:

                    async def beside() -> None:
                        tg.start_soon(flood.run)
                        await anyio.sleep(0.5)  # the flood is on

                    flooded = await ask(server.url, beside)
                elapsed = time.monotonic() - began
                sampling.cancel_scope.cancel()
    stdout, stderr = server.stdout, server.stderr
    print(f"first audio: quiet {quiet}, flooded {flooded}; RSS {rss.base:.0f} MB + "
          f"{rss.growth_mb:.1f} MB; STT {[sum(c.frame_ms) / 1000 for c in pulse.connections]} "
          f"in {elapsed:.1f} s")  # fmt: skip
    # the normal call's turn ended, with the words it said, and it was answered as quietly
    assert [line for line in stdout.splitlines() if line.startswith(flooded.call_sid)], stdout
    assert_answered_as_quietly(quiet, flooded)
    # the server held nothing of the flood: unpaced, it holds what it has not processed yet
    assert rss.growth_mb < RSS_GROWTH_MB, (rss.base, rss.peak)
    # what reached the STT was never more than real time (plus the burst): most was dropped
    for connection in pulse.connections[seen:]:  # the normal call's and the flood's
        assert sum(connection.frame_ms) / 1000 <= elapsed + BURST_S + 1.0
    # the flood was closed by the server, with a code that says why, long before its end
    assert flood.close_code == 1008, (flood.close_code, flood.close_reason, stderr[-2000:])
    assert flood.frames_sent < FLOOD_FRAMES
    assert flood.call_sid in stderr and "faster than real time" in stderr


@needs_espeak
async def test_a_caller_just_under_the_close_is_held_to_real_time_beside_a_normal_call() -> None:
    async with PulseServer(transcribe="table") as pulse:
        pulse.table.add(spoken(WEATHER), WEATHER, sample_rate=RATE)
        async with phone_server(pulse) as server:
            quiet = await ask(server.url)
            flood = UnderFlood(server.url)
            seen = 0
            async with anyio.create_task_group() as tg:

                async def beside() -> None:
                    nonlocal seen
                    seen = len(pulse.connections)  # the normal call's STT is among them
                    tg.start_soon(flood.run)
                    await flood.sending.wait()
                    await anyio.sleep(1.0)  # past its burst: it is being paced

                flooded = await ask(server.url, beside)
                await anyio.sleep(max(0.0, flood.began + UNDER_S - time.monotonic()))
                flood.stop()
            flood_stt = pulse.connections[seen:]
    stderr = server.stderr
    stt_s = [sum(c.frame_ms) / 1000 for c in flood_stt]
    wall = flood.ended - flood.began
    print(f"first audio: quiet {quiet}, flooded {flooded}; under-flood sent {flood.sent_s:.1f}"
          f" s in {wall:.1f} s; STT {stt_s}")  # fmt: skip
    assert_answered_as_quietly(quiet, flooded)
    # what reached the STT: real time and the burst, not the UNDER_PACE × real time it sent
    assert stt_s and max(stt_s) <= wall + BURST_S + 0.5, (stt_s, wall, flood.sent_s)
    # never closed: it stays under the close, its excess dropped (and said so)
    assert flood.close_code is None, stderr[-2000:]
    assert flood.sent_s >= UNDER_PACE * UNDER_S - 1.0
    paced = [line for line in stderr.splitlines() if "faster than real time" in line]
    assert any(flood.call_sid in line for line in paced), stderr[-2000:]


class SlowReader:
    """A caller that sends its audio in real time, a question in it, but never reads what the
    server sends (its socket's receive buffer small, so the server's side fills within
    seconds once the bot answers: an idle line sends nothing, so only speech can fill it)."""

    def __init__(self, url: str, question: bytes) -> None:
        self.url = url
        self.call_sid = wire.new_sid("CA")
        self.ended = anyio.Event()
        ulaw = audio.ulaw_encode(audio.silence(RATE // 2) + question)
        ulaw += FRAME[: -len(ulaw) % len(FRAME)]
        self.frames = [ulaw[i : i + len(FRAME)] for i in range(0, len(ulaw), len(FRAME))]

    async def run(self) -> None:
        host, port = self.url.split("/")[2].split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
            async with connect(self.url, sock=sock, compression=None, max_queue=1) as ws:
                stream_sid = await _start_call(ws, self.call_sid)
                t0 = time.monotonic()
                for chunk in range(60 * 50):
                    await anyio.sleep(max(0.0, t0 + chunk * 0.02 - time.monotonic()))
                    frame = self.frames[chunk] if chunk < len(self.frames) else FRAME
                    await ws.send(_media(stream_sid, chunk, frame))
        except (ConnectionClosed, OSError):
            pass
        finally:
            self.ended.set()


@needs_espeak
async def test_a_caller_that_stops_reading_is_closed_beside_a_normal_call() -> None:
    # a slow voice (100 ms a character): the answers outlast what the socket buffers hold
    async with phone_rig(ms_per_char=100.0) as rig:
        normal = TwilioCaller(rig.server.url)
        slow = SlowReader(rig.server.url, spoken(WEATHER))
        async with normal, anyio.create_task_group() as tg:
            tg.start_soon(slow.run)
            with anyio.fail_after(SAFETY_S):
                await normal.wait_for(lambda: len(played(normal)) >= 1)  # the greeting
                normal.say(audio.silence(RATE // 5) + spoken(WEATHER) + audio.silence(RATE))
                await normal.wait_for(lambda: len(played(normal)) >= 3)  # filler, answer
            # the server drops the caller that does not read, well before keepalive would
            with anyio.fail_after(25):
                await slow.ended.wait()
            tg.cancel_scope.cancel()
        slow_call = next(t for t in rig.transports if t.start.call_sid == slow.call_sid)
    assert normal.protocol_errors == []
    assert slow_call.hung_up
    assert slow_call.refusal is not None and "not reading" in slow_call.refusal[1]
    assert slow_call.outbox_peak_s <= slow_call.outbox_s + 0.5
