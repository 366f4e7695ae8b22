"""A speaker that records to a WAV file in real time, silences included: the file is the timeline.

Sample k of the file is what a listener would have heard at ``origin + k / sample_rate``.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.lowlevel

from voiceagent import audio, ports


class WavSpeaker:
    """``ports.AudioSink`` that pulls one block per ``block_ms`` on the monotonic clock.

    Block k is due at ``origin + k·block``; at that moment it reads the source from sample
    ``k·block_samples``, pads the block with silence and appends it to the file and to
    ``samples``. A loop that falls behind writes the missed blocks at once, each at its own
    position, so the file never drifts from wall-clock time (``late_blocks`` counts them).
    ``path=None`` keeps the audio in memory only. One speaker plays one source, once.
    """

    def __init__(
        self,
        path: str | Path | None,
        sample_rate: int = 24000,
        block_ms: float = 20.0,
        origin: float | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._sample_rate = sample_rate
        self.block_samples = audio.ms_to_samples(block_ms, sample_rate)
        if self.block_samples < 1:
            raise ValueError(f"block_ms={block_ms} is less than one sample at {sample_rate} Hz")
        # The block's exact length in seconds, so that due times never drift by rounding.
        self._block_seconds = self.block_samples / sample_rate
        self._origin = origin
        self._buffer = bytearray()
        self.blocks_written = 0
        self.late_blocks = 0
        self._started = False

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def origin(self) -> float | None:
        """``time.monotonic()`` of sample 0; set when play starts unless given."""
        return self._origin

    @property
    def position(self) -> int:
        """Samples written so far."""
        return self.blocks_written * self.block_samples

    @property
    def samples(self) -> bytes:
        """Everything written so far, as PCM16 mono."""
        return bytes(self._buffer)

    async def play(self, source: ports.AudioSource) -> None:
        """Plays ``source`` until cancelled; the WAV file is complete and valid afterwards."""
        if self._started:
            raise RuntimeError("a WavSpeaker plays one source, once")
        check_rate(source, self._sample_rate)
        self._started = True
        if self._origin is None:
            self._origin = time.monotonic()
        origin = self._origin
        file = _WavFile(self.path, self._sample_rate) if self.path is not None else None
        try:
            while True:
                due = origin + self.blocks_written * self._block_seconds
                wait = due - time.monotonic()
                if wait > 0:
                    await anyio.sleep(wait)
                else:
                    # Due already: write it now, but let other tasks and a cancellation in
                    # first. More than a block behind counts as late.
                    if -wait > self._block_seconds:
                        self.late_blocks += 1
                    await anyio.lowlevel.checkpoint()
                block = self._read_block(source)
                if file is not None:
                    file.append(block)
                self._keep(block)
                self.blocks_written += 1
        finally:
            # Synchronous on purpose: no await, so a cancellation cannot cut the close short.
            if file is not None:
                file.close()

    def _keep(self, block: bytes) -> None:
        # A hook: NullSpeaker (a listener who reads rather than hears) keeps nothing.
        self._buffer += block

    def _read_block(self, source: ports.AudioSource) -> bytes:
        return read_block(source, self.block_samples, self.position)[0]


def check_rate(source: ports.AudioSource, speaker_rate: int) -> None:
    """A speaker plays its source as it is: their rates must agree."""
    if source.sample_rate != speaker_rate:
        raise ValueError(
            f"source is {source.sample_rate} Hz but the speaker plays {speaker_rate} Hz"
        )


def read_block(source: ports.AudioSource, block_samples: int, position: int) -> tuple[bytes, int]:
    """One full block from ``source`` (padded with silence) and how many samples it gave."""
    pcm = source.read(block_samples, position=position)
    if len(pcm) > 2 * block_samples or len(pcm) % 2:
        raise ValueError(
            f"source returned {len(pcm)} bytes for {block_samples} samples "
            "(at most that many whole 16-bit samples)"
        )
    given = audio.pcm_samples(pcm)
    return pcm + audio.silence(block_samples - given), given


class _WavFile:
    """A 16-bit mono WAV written block by block; its header is valid after every block."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self._file: BinaryIO = path.open("wb")
        self._writer = wave.open(self._file, "wb")
        self._writer.setnchannels(1)
        self._writer.setsampwidth(audio.SAMPLE_WIDTH)
        self._writer.setframerate(sample_rate)
        self.append(b"")  # the header alone: a valid, empty WAV from the start

    def append(self, pcm: bytes) -> None:
        # wave rewrites the header's lengths after each write; flush so readers see both.
        self._writer.writeframes(pcm)
        self._file.flush()

    def close(self) -> None:
        try:
            self._writer.close()
        finally:
            self._file.close()
