"""A caller cannot starve the others: one that floods the server with audio faster than real
time is paced (the excess dropped before it costs anything) and closed, and one that stops
reading is closed; the normal call beside each is answered as usual. Real sockets, 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
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
from voiceagent.testing.pulse import PulseServer
from voiceagent.testing.twilio import TwilioCaller, wire

RATE = 8000
FRAME = b"\xff" * 160  # 20 ms of μ-law silence, as Twilio sends it
FLOOD_S = 600  # seconds of audio the flooding caller pushes as fast as it can
RSS_GROWTH_MB = 200  # generous: the server's memory may not grow with what a caller floods


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def _start_call(ws: ClientConnection, call_sid: str) -> str:
    stream_sid = wire.new_sid("MZ")
    await ws.send(json.dumps(wire.connected()))
    start = wire.start("1", stream_sid, wire.new_sid("AC"), call_sid, {})
    await ws.send(json.dumps(start))
    return stream_sid


def _media(stream_sid: str, chunk: int, frame: bytes = FRAME) -> str:
    return json.dumps(wire.media(str(chunk + 1), stream_sid, chunk, 20 * chunk, frame))


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
        async with connect(self.url, compression=None, max_size=None) as ws:
            stream_sid = await _start_call(ws, self.call_sid)

            async def drain() -> None:
                try:
                    async for _ in ws:
                        pass
                except ConnectionClosed:
                    pass

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                try:
                    for chunk in range(FLOOD_S * 50):
                        await ws.send(_media(stream_sid, chunk))
                        self.frames_sent += 1
                        if chunk % 50 == 0:  # a send that need not wait never yields
                            await anyio.lowlevel.checkpoint()
                except ConnectionClosed:
                    pass
                with anyio.move_on_after(15):  # the server closes a flood: no need to stop
                    await ws.wait_closed()
                tg.cancel_scope.cancel()
            if (rcvd := ws.protocol.close_rcvd) is not None:  # what the server said
                self.close_code, self.close_reason = rcvd.code, rcvd.reason


@needs_espeak
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
async def test_a_flooding_caller_is_paced_and_closed_beside_a_normal_call() -> None:
    async with PulseServer(transcribe="table") as pulse:
        pulse.table.add(spoken(WEATHER), WEATHER, sample_rate=RATE)
        stt = ["--stt", "pulse", "--stt-url", pulse.url]
        command = [VOICEAGENT, "phone", EXAMPLE, "--port", "0", "--tts", "test", *stt,
                   "--drain-s", "1"]  # fmt: skip
        env = {**_env(), "VOICEAGENT_LOG": "WARNING"}
        silence = audio.silence(RATE // 5)
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
                    url = out.decode().splitlines()[0].strip()
                    rss_before = _rss_mb(process.pid)
                    began = time.monotonic()
                    normal, flood = TwilioCaller(url), Flood(url)
                    async with normal:
                        with anyio.fail_after(SAFETY_S):
                            await normal.wait_for(lambda: len(played(normal)) >= 1)  # greeting
                            async with anyio.create_task_group() as tg:
                                tg.start_soon(flood.run)
                                await anyio.sleep(0.5)  # the flood is on
                                normal.say(silence + spoken(WEATHER) + audio.silence(RATE))
                                asked = len(normal.received_events("mark"))
                                await normal.wait_for(lambda: len(played(normal)) > asked)
                    elapsed = time.monotonic() - began
                    rss_after = _rss_mb(process.pid)
                    process.terminate()
                    with anyio.fail_after(SAFETY_S):
                        await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
    stdout, stderr = out.decode(), err.decode()
    # the normal call was answered: its turn ended, with the words it said
    turns = [line for line in stdout.splitlines() if line.startswith(normal.call_sid)]
    assert turns, stdout
    assert normal.protocol_errors == []
    # the flood was closed by the server, with a code that says why, long before its end
    assert flood.close_code == 1008, (flood.close_code, flood.close_reason, stderr[-2000:])
    assert flood.frames_sent < FLOOD_S * 50
    assert flood.call_sid in stderr and "faster than real time" in stderr
    # what reached the STT was never more than real time (plus the burst): most was dropped
    for connection in pulse.connections:
        assert sum(connection.frame_ms) / 1000 <= elapsed + 3.0
    assert rss_after - rss_before < RSS_GROWTH_MB, (rss_before, rss_after)


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
