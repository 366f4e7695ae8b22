"""Speakers for tests and text-only runs: VirtualSpeaker plays on a virtual clock, as fast as
the loop allows; NullSpeaker is paced in real time but keeps nothing (the listener reads).
Neither has a device behind it: by default each plays at its source's rate."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

from voiceagent import audio, ports
from voiceagent.adapters.wav_speaker import DEFAULT_RATE, WavSpeaker, check_rate, read_block

# Real time an idle block waits: enough that an empty speaker does not spin the CPU, little
# enough that audio queued meanwhile starts almost at once.
_IDLE_WAIT_S = 0.001


class VirtualSpeaker:
    """``ports.AudioSink`` whose clock is its own position: block k covers samples from
    ``k·block_samples``, read at once rather than at ``k·block_ms`` of wall-clock time.

    While the source has audio, one block per event-loop checkpoint. When the source returns
    nothing: a source that can say when it has audio (``wait_for_audio()``, the session's
    speech queue) is waited for, and the real time slept is played as silence, in whole
    blocks, before the new audio; any other source, a short real-time wait per idle block.
    ``samples`` holds everything played. ``sample_rate=None`` (the default) takes the
    source's rate when play starts. One speaker plays one source, once.
    """

    def __init__(self, sample_rate: int | None = None, block_ms: float = 20.0) -> None:
        self.block_ms = block_ms
        self._sample_rate = sample_rate
        self.block_samples = 0
        if sample_rate is not None:
            self._set_rate(sample_rate)
        self._buffer = bytearray()
        self.blocks_written = 0
        self.idle_blocks = 0
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
    def position(self) -> int:
        """Samples played so far: the virtual clock, in samples since sample 0."""
        return self.blocks_written * self.block_samples

    @property
    def samples(self) -> bytes:
        """Everything played so far, as PCM16 mono."""
        return bytes(self._buffer)

    async def play(self, source: ports.AudioSource) -> None:
        """Plays ``source`` until cancelled."""
        if self._started:
            raise RuntimeError("a VirtualSpeaker plays one source, once")
        if self._sample_rate is None:
            self._set_rate(source.sample_rate)
        check_rate(source, self.sample_rate)
        self._started = True
        block_seconds = self.block_samples / self.sample_rate
        wait_for_audio: Callable[[], Awaitable[None]] | None = getattr(
            source, "wait_for_audio", None
        )
        while True:
            block, given = read_block(source, self.block_samples, self.position)
            self._buffer += block
            self.blocks_written += 1
            if given:
                await anyio.lowlevel.checkpoint()
                continue
            self.idle_blocks += 1
            if wait_for_audio is None:
                await anyio.sleep(_IDLE_WAIT_S)
                continue
            slept_from = time.monotonic()
            await wait_for_audio()
            await anyio.lowlevel.checkpoint()
            slept = round((time.monotonic() - slept_from) / block_seconds)
            if slept:
                self.wakeups += 1
                self._buffer += audio.silence(slept * self.block_samples)
                self.blocks_written += slept


class NullSpeaker(WavSpeaker):
    """A ``WavSpeaker`` without a file that keeps no samples: the agent is paced as if heard
    (its timeline stays true) while the application prints what it said."""

    def __init__(
        self, sample_rate: int | None = None, block_ms: float = 20.0, *, origin: float | None = None
    ) -> None:
        super().__init__(None, sample_rate, block_ms, origin=origin)

    def _keep(self, block: bytes) -> None:
        pass
