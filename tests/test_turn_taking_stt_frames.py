"""The STT feed wakes its task once per frame of a stream that sends whole frames (Pulse's
``frame_bytes``), not per piece of input, and every frame still leaves on the piece of input
that completes it; after a finalize (which sends what the stream held, padded) the framing
starts again. A stream that says nothing about frames gets every piece as it comes.

The stream here is a plug-point implementation that frames audio as ``PulseStream`` does
(whole frames sent, the rest held, padded at a finalize); the VAD is the real WebRTC one on
espeak-ng speech, so the finalize comes from a real end of turn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from session_rig import RATE, needs_offline, spoken
from stt_plug_rig import QuietStream, turn_taker

from voiceagent import audio
from voiceagent.turn_taking import Utterance

PIECE = RATE * 40 // 1000 * 2  # 40 ms of PCM16, as a phone line hands it over
FRAME = RATE * 100 // 1000 * 2  # the stream's frame: 100 ms


class Input:
    """The caller's audio in pieces, counting the pieces handed over so far."""

    def __init__(self, pcm: bytes) -> None:
        self.pcm = pcm
        self.given = 0

    async def pieces(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.pcm), PIECE):
            self.given += 1
            yield self.pcm[i : i + PIECE]
            await anyio.sleep(0.001)  # a little real time between pieces, as a line has


class FramedStream(QuietStream):
    """Sends audio in whole frames of ``frame_bytes`` and holds the rest, as Pulse's stream
    does; records which piece of input was the last one given when each frame left."""

    def __init__(self, source: Input, frame_bytes: int | None) -> None:
        super().__init__()
        if frame_bytes is not None:
            self.frame_bytes = frame_bytes
        self.source = source
        self.size = frame_bytes or 1
        self.calls = 0  # send_audio calls: the feed's wake-ups with audio
        self.pending = bytearray()
        self.frames: list[tuple[int, int]] = []  # (pieces given when it left, bytes)
        self.order: list[int | str] = []  # frames' bytes, or "finalize"

    async def send_audio(self, pcm: bytes) -> None:
        self.calls += 1
        self.pending += pcm
        while len(self.pending) >= self.size:
            self._frame(self.size)

    def _frame(self, size: int) -> None:
        del self.pending[:size]
        self.frames.append((self.source.given, size))
        self.order.append(size)

    async def finalize(self) -> None:
        if self.pending:
            self._frame(len(self.pending))  # padded out, as Pulse pads it
        self.order.append("finalize")

    async def close(self) -> None:
        await self.finalize()
        await super().close()


@needs_offline
async def test_each_frame_leaves_on_the_piece_that_completes_it_with_one_wake_per_frame() -> None:
    pcm = audio.silence(RATE // 2) + spoken("what is the weather in paris") + audio.silence(RATE)
    pcm = pcm[: len(pcm) - len(pcm) % PIECE]
    source = Input(pcm)
    stream = FramedStream(source, FRAME)
    out, _ = anyio.create_memory_object_stream[Utterance](10)
    with anyio.fail_after(30):
        await turn_taker(stream).run(source.pieces(), out)

    assert "finalize" in stream.order  # the VAD ended the turn mid-input
    sent = sum(size for size in stream.order if isinstance(size, int))
    assert sent == len(pcm)  # nothing lost, nothing added
    # where each whole frame left: on the piece of input that completed it, counted from
    # the start and anew after the finalize
    finalize_at = stream.order.index("finalize")
    whole_before = [f for f in stream.frames[:finalize_at] if f[1] == FRAME]
    for k, (given, _) in enumerate(whole_before, 1):
        assert given == -(-k * FRAME // PIECE), (k, given)
    # after the finalize: frames complete from the bytes handed over since
    rest = stream.order[finalize_at + 1 :]
    offset = sum(size for size in stream.order[:finalize_at] if isinstance(size, int))
    for k, (given, size) in enumerate(stream.frames[finalize_at:], 1):
        if size != FRAME:
            break  # the rest at the hang-up's close
        assert given == -(-(offset + k * FRAME) // PIECE), (k, given)
    assert rest  # audio came after the end of turn
    # one wake-up with audio per frame (and at the finalize and the close), not per piece
    pieces = len(pcm) // PIECE
    assert stream.calls <= len(stream.frames) + 2 < pieces


@needs_offline
async def test_a_stream_without_frames_gets_every_piece_as_it_comes() -> None:
    pcm = audio.silence(RATE // 2) + spoken("hello") + audio.silence(RATE)
    pcm = pcm[: len(pcm) - len(pcm) % PIECE]
    source = Input(pcm)
    stream = FramedStream(source, None)  # no frame_bytes: one byte "frames", sent at once
    out, _ = anyio.create_memory_object_stream[Utterance](10)
    with anyio.fail_after(30):
        await turn_taker(stream).run(source.pieces(), out)
    assert stream.calls == len(pcm) // PIECE  # a send per piece
    assert sum(size for size in stream.order if isinstance(size, int)) == len(pcm)
