"""The sound card's speaker as a ``ports.AudioSink``: PortAudio pulls 20 ms blocks from a
small ring that a task on the event loop keeps full from the session's ``AudioSource``."""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from voiceagent import audio, ports
from voiceagent.adapters.audio_devices import Device, negotiate_rate, sounddevice

# Blocks read ahead of the card. Each one is audio that still plays after a barge-in, so
# few; the loop only has to wake once per block to keep up.
RING_BLOCKS = 2


class DeviceSpeaker:
    """Plays a source on ``device`` until cancelled, at the source's rate when the device
    takes it, else resampled to the device's own rate.

    ``AudioSource.read`` runs on the event loop only (sources are not thread-safe): the
    PortAudio callback just pops prepared blocks. An empty ring plays silence and counts an
    ``underflow``; the samples missed are skipped in the source's positions, so sample k of
    the source is still what is heard at ``origin + k / rate`` (plus the card's latency,
    which the first position already includes).

    A source with ``wait_for_audio()`` (the session's speech queue) lets the loop sleep once
    a read gave nothing: the card plays silence meanwhile (not counted as underflows), the
    samples it played are skipped in the positions as above, and new audio is read at once.
    """

    def __init__(self, device: Device, *, block_ms: float = 20.0, origin: float) -> None:
        self.device = device
        self.block_ms = block_ms
        self._origin = origin
        self._rate = device.default_rate
        self._ring: collections.deque[bytes] = collections.deque()
        self._missed = 0  # device samples played as silence for want of a block (callback)
        self.underflows = 0
        self.voice_until = 0.0  # time.monotonic() when the agent's latest audio has played
        self._asleep = False  # the loop waits for audio: an empty ring is silence, not underflow
        self._started = False

    @property
    def sample_rate(self) -> int:
        """The device's rate (the one negotiated, once playing)."""
        return self._rate

    @property
    def origin(self) -> float:
        """``time.monotonic()`` of source sample 0 (the session clock's origin)."""
        return self._origin

    async def play(self, source: ports.AudioSource) -> None:
        if self._started:
            raise RuntimeError("a DeviceSpeaker plays one source, once")
        self._started = True
        sd = sounddevice()
        rate = self._rate = negotiate_rate(self.device, "output", source.sample_rate)
        resampler = (
            audio.Resampler(source.sample_rate, rate) if rate != source.sample_rate else None
        )
        block = audio.ms_to_samples(self.block_ms, rate)
        wait_for_audio: Callable[[], Awaitable[None]] | None = getattr(
            source, "wait_for_audio", None
        )
        source_block = audio.ms_to_samples(self.block_ms, source.sample_rate)
        stream = sd.RawOutputStream(
            device=self.device.index,
            samplerate=rate,
            channels=1,
            dtype="int16",
            blocksize=block,
            latency="low",
            callback=self._callback,
        )
        try:
            lead_s = float(stream.latency) + RING_BLOCKS * self.block_ms / 1000
            position = round((time.monotonic() - self._origin + lead_s) * source.sample_rate)
            pending = bytearray()
            seen_missed = 0
            started = False
            while True:
                missed, seen_missed = self._missed - seen_missed, self._missed
                position += round(missed * source.sample_rate / rate)
                silent_read = False
                while len(self._ring) < RING_BLOCKS:
                    pcm = source.read(source_block, position)
                    position += source_block
                    if pcm:
                        self.voice_until = time.monotonic() + lead_s + self.block_ms / 1000
                    else:
                        silent_read = True
                    pcm += audio.silence(source_block - audio.pcm_samples(pcm))
                    pending += resampler.process(pcm) if resampler is not None else pcm
                    while len(pending) >= block * audio.SAMPLE_WIDTH:
                        self._ring.append(bytes(pending[: block * audio.SAMPLE_WIDTH]))
                        del pending[: block * audio.SAMPLE_WIDTH]
                if not started:  # primed: the first callback finds audio
                    stream.start()
                    started = True
                if silent_read and wait_for_audio is not None:
                    self._asleep = True
                    try:
                        await wait_for_audio()
                    finally:
                        self._asleep = False
                    if len(self._ring) < RING_BLOCKS:  # it slept: the new audio goes in now
                        continue
                await anyio.sleep(self.block_ms / 2000)
        finally:
            # abort, not stop: a barge-in or Ctrl-C silences at once rather than draining
            stream.abort()
            stream.close()

    def _callback(self, outdata: Any, frames: int, _time: Any, status: Any) -> None:
        # PortAudio's thread: no locks, no waiting, no allocation beyond the copy
        if status.output_underflow:
            self.underflows += 1
        try:
            chunk = self._ring.popleft()
        except IndexError:
            chunk = b""
            if not self._asleep:
                self.underflows += 1
        size = min(len(chunk), frames * audio.SAMPLE_WIDTH)
        outdata[:size] = chunk[:size]
        outdata[size:] = bytes(frames * audio.SAMPLE_WIDTH - size)
        self._missed += frames - size // audio.SAMPLE_WIDTH
