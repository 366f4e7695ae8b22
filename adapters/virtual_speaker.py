"""Speakers for tests and text-only runs: VirtualSpeaker plays on a virtual clock, as fast as
the loop allows; NullSpeaker is paced in real time but keeps nothing (the listener reads)."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from voiceagent import audio, ports
from voiceagent.adapters.wav_speaker import WavSpeaker, check_rate, read_block

# Real time an idle block waits: enough that an empty speaker does not spin the CPU, little
# enough that audio queued meanwhile starts almost at once.
_IDLE_WAIT_S = 0.001


class VirtualSpeaker:
    """``ports.AudioSink`` whose clock is its own position: block k covers samples from
    ``k·block_samples``, read at once rather than at ``k·block_ms`` of wall-clock time.

    While the source has audio, one block per event-loop checkpoint; when the source returns
    nothing, a short real-time wait per idle block. ``samples`` holds everything played.
    One speaker plays one source, once.
    """

    def __init__(self, sample_rate: int = 24000, block_ms: float = 20.0) -> None:
        self._sample_rate = sample_rate
        self.block_samples = audio.ms_to_samples(block_ms, sample_rate)
        if self.block_samples < 1:
            raise ValueError(f"block_ms={block_ms} is less than one sample at {sample_rate} Hz")
        self._buffer = bytearray()
        self.blocks_written = 0
        self.idle_blocks = 0
        self._started = False

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

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
        check_rate(source, self._sample_rate)
        self._started = True
        while True:
            block, given = read_block(source, self.block_samples, self.position)
            self._buffer += block
            self.blocks_written += 1
            if given:
                await anyio.lowlevel.checkpoint()
            else:
                self.idle_blocks += 1
                await anyio.sleep(_IDLE_WAIT_S)


class NullSpeaker(WavSpeaker):
    """A ``WavSpeaker`` without a file that keeps no samples: the agent is paced as if heard
    (its timeline stays true) while the application prints what it said."""

    def __init__(
        self, sample_rate: int = 24000, block_ms: float = 20.0, *, origin: float | None = None
    ) -> None:
        super().__init__(None, sample_rate, block_ms, origin=origin)

    def _keep(self, block: bytes) -> None:
        pass
