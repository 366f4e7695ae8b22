"""A stalled STT never holds the VAD: barge-in is decided on the frame that carries the speech,
while the STT's socket is stuck; the STT's backlog is bounded (the oldest audio is dropped and
counted) and what it gets arrives in order, a finalize after the audio before it.

The STT here is a plug-point implementation whose ``send_audio`` blocks until released, like
a socket whose peer stopped reading; the VAD is the real WebRTC one on espeak-ng speech.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
from session_rig import RATE, needs_offline, spoken
from stt_plug_rig import QuietStream, turn_taker

from voiceagent import audio
from voiceagent.turn_taking import Utterance

FRAME = 640  # 20 ms of PCM16 at 16 kHz


class StalledStream(QuietStream):
    """``send_audio`` blocks (the first call, or every call) until ``release`` is set."""

    def __init__(self, log: list[str], *, fallback_s: float) -> None:
        super().__init__()
        self.log = log
        self.release = anyio.Event()
        self.fallback_s = fallback_s  # so that a VAD held by the stall still gets its turn
        self.received: list[bytes] = []
        self.order: list[int | str] = []  # bytes of audio, or "finalize", as the STT got them

    async def send_audio(self, pcm: bytes) -> None:
        if not self.release.is_set():
            with anyio.move_on_after(self.fallback_s):
                await self.release.wait()
            self.release.set()
            self.log.append("stall ended")
        self.received.append(pcm)
        self.order.append(len(pcm))

    async def finalize(self) -> None:
        self.order.append("finalize")


async def frames(pcm: bytes) -> AsyncIterator[bytes]:
    """The input as a transport gives it, as fast as it is taken (no real-time pacing)."""
    for i in range(0, len(pcm), FRAME):
        yield pcm[i : i + FRAME]
        await anyio.lowlevel.checkpoint()


@needs_offline
async def test_barge_in_is_decided_while_the_stt_is_stalled() -> None:
    log: list[str] = []
    stream = StalledStream(log, fallback_s=3.0)

    def on_speech(at_ms: float) -> None:
        log.append("barge_in")
        stream.release.set()  # the peer reads again only now: before the fix, never in time

    pcm = audio.silence(RATE // 5) + spoken("stop please") + audio.silence(RATE)
    out, _ = anyio.create_memory_object_stream[Utterance](10)
    with anyio.fail_after(30):
        await turn_taker(stream, on_speech).run(frames(pcm), out)
    assert log[:2] == ["barge_in", "stall ended"]  # the VAD did not wait for the STT
    assert b"".join(stream.received) == pcm  # within its buffer, the STT lost nothing


@needs_offline
async def test_a_stalled_stt_s_backlog_is_bounded_dropping_the_oldest_audio() -> None:
    log: list[str] = []
    stream = StalledStream(log, fallback_s=60.0)
    speech = spoken("hello there")
    tail = audio.silence(RATE // 2)
    pcm = audio.silence(RATE * 3) + speech + tail  # ~ 4.5 s in all
    out, _ = anyio.create_memory_object_stream[Utterance](10)
    taker = turn_taker(stream, stt_buffer_s=1.0)

    async def input_then_release() -> AsyncIterator[bytes]:
        async for frame in frames(pcm):
            yield frame
        stream.release.set()  # the STT comes back once all the input has arrived

    with anyio.fail_after(30):
        await taker.run(input_then_release(), out)
    got = b"".join(stream.received[1:])  # the first frame was in flight when the stall began
    # at most a second of backlog was kept: the newest, ending where the input ends
    assert len(got) <= 2 * RATE and pcm.endswith(got)
    dropped = len(pcm) - len(stream.received[0]) - len(got)
    assert dropped > 0 and taker.stt_dropped_ms == dropped * 1000 / (2 * RATE)
    # the end of turn (the VAD's, 300 ms into the tail) reached the STT after the speech
    # before it and before the rest of the tail
    finalized = stream.order.index("finalize")
    after = stream.order[finalized + 1 :]
    assert 0 < sum(after) < len(tail)  # type: ignore[arg-type]
    assert finalized > 1  # kept audio from before the end of turn went first
