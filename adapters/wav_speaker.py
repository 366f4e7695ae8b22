"""A speaker that records to a WAV file in real time, silences included: the file is the timeline.

Sample k of the file is what a listener would have heard at ``origin + k / sample_rate``.
"""

from __future__ import annotations

import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.lowlevel

from voiceagent import audio, ports

DEFAULT_RATE = 24000  # a speaker's rate before it plays, when it takes its source's


class WavSpeaker:
    """``ports.AudioSink`` that pulls one block per ``block_ms`` on the monotonic clock.

    Sample k is due at ``origin + k / sample_rate``: a block is read from the source when
    its first sample is due, padded with silence and appended to the file and to
    ``samples``. A loop that falls behind writes the missed blocks at once, each at its own
    position, so the file never drifts from wall-clock time (``late_blocks`` counts them).

    A source that can say when it has audio (``wait_for_audio()``, as the session's speech
    queue does) lets the speaker sleep once a read gave nothing, instead of reading a
    silent block every block; when it wakes, it writes the silence it slept through in one
    go and reads the new audio at once, at the sample due now. The file stays the timeline.

    ``sample_rate=None`` takes the source's rate when play starts (the file is written at
    it). ``path=None`` keeps the audio in memory only. One speaker plays one source, once.
    """

    def __init__(
        self,
        path: str | Path | None,
        sample_rate: int | None = DEFAULT_RATE,
        block_ms: float = 20.0,
        origin: float | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.block_ms = block_ms
        self._sample_rate = sample_rate
        self.block_samples = 0
        if sample_rate is not None:
            self._set_rate(sample_rate)
        self._origin = origin
        self._buffer = bytearray()
        self._position = 0  # samples written
        self.blocks_written = 0  # blocks read from the source
        self.late_blocks = 0
        self.wakeups = 0  # times it slept until the source had audio
        self._started = False

    def _set_rate(self, rate: int) -> None:
        self._sample_rate = rate
        self.block_samples = audio.ms_to_samples(self.block_ms, rate)
        if self.block_samples < 1:
            raise ValueError(f"block_ms={self.block_ms} is less than one sample at {rate} Hz")

    @property
    def sample_rate(self) -> int:
        """The rate given, else the source's once playing (``DEFAULT_RATE`` until then)."""
        return self._sample_rate or DEFAULT_RATE

    @property
    def origin(self) -> float | None:
        """``time.monotonic()`` of sample 0; set when play starts unless given."""
        return self._origin

    @property
    def position(self) -> int:
        """Samples written so far."""
        return self._position

    @property
    def samples(self) -> bytes:
        """Everything written so far, as PCM16 mono."""
        return bytes(self._buffer)

    async def play(self, source: ports.AudioSource) -> None:
        """Plays ``source`` until cancelled; the WAV file is complete and valid afterwards."""
        if self._started:
            raise RuntimeError("a WavSpeaker plays one source, once")
        if self._sample_rate is None:
            self._set_rate(source.sample_rate)
        rate = self.sample_rate
        check_rate(source, rate)
        self._started = True
        if self._origin is None:
            self._origin = time.monotonic()
        origin = self._origin
        block_seconds = self.block_samples / rate
        wait_for_audio: Callable[[], Awaitable[object]] | None = getattr(
            source, "wait_for_audio", None
        )
        file = _WavFile(self.path, rate) if self.path is not None else None
        asleep = False
        try:
            while True:
                # exact: due times never drift by rounding
                wait = origin + self._position / rate - time.monotonic()
                if wait > 0:
                    await anyio.sleep(wait)
                else:
                    # Due already: write it now, but let other tasks and a cancellation in
                    # first. More than a block behind counts as late.
                    if -wait > block_seconds:
                        self.late_blocks += 1
                    await anyio.lowlevel.checkpoint()
                block, given = read_block(source, self.block_samples, self._position)
                if not given and wait_for_audio is not None:
                    asleep = True
                    waited = await wait_for_audio()
                    asleep = False
                    if waited is True:
                        # The silent block read before the sleep is not kept: the audio
                        # that woke us starts at the sample due now, not a block later.
                        self.wakeups += 1
                        self._write_silence_until_now(file, origin)
                        continue
                self._write(file, block)
                self.blocks_written += 1
        finally:
            # Synchronous on purpose: no await, so a cancellation cannot cut the close short.
            if asleep:  # the listener heard silence until the end
                self._write_silence_until_now(file, origin)
            if file is not None:
                file.close()

    def _write_silence_until_now(self, file: _WavFile | None, origin: float) -> None:
        """The silence from the last sample written to the one due now, in one go (in
        pieces of at most a second, so a long sleep costs no large buffer)."""
        due = int((time.monotonic() - origin) * self.sample_rate)
        while self._position < due:
            self._write(file, audio.silence(min(due - self._position, self.sample_rate)))

    def _write(self, file: _WavFile | None, pcm: bytes) -> None:
        if file is not None:
            file.append(pcm)
        self._keep(pcm)
        self._position += audio.pcm_samples(pcm)

    def _keep(self, block: bytes) -> None:
        # A hook: NullSpeaker (a listener who reads rather than hears) keeps nothing.
        self._buffer += block


def check_rate(source: ports.AudioSource, speaker_rate: int) -> None:
    """A speaker plays its source as it is: their rates must agree."""
    if source.sample_rate != speaker_rate:
        raise ValueError(
            f"source is {source.sample_rate} Hz but the speaker plays {speaker_rate} Hz: "
            f"give the speaker the source's rate (sample_rate={source.sample_rate}), or "
            "sample_rate=None to take it"
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
