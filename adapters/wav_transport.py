"""A transport from a WAV file to a WAV file: the caller's audio streamed at real time (or
faster), the agent recorded by the real-time ``WavSpeaker``. Headless runs and tests use it."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from voiceagent import audio
from voiceagent.adapters.wav_speaker import WavSpeaker


class WavTransport:
    """``ports.Transport`` whose caller is a WAV file (16-bit mono) and whose speaker records.

    ``incoming()`` yields ``frame_ms`` frames of the file; frame k is yielded no earlier than
    ``origin + (k+1)·frame/speed`` on ``time.monotonic()``, when its last sample was spoken
    (``speed`` 0 or infinity: at once, with a checkpoint between frames). After the file,
    silence frames at the same pace keep the line open, as a caller who went quiet would,
    until ``aclose()`` or until ``hang_up_after_s`` of trailing audio have been sent: then
    the iteration ends (hang-up).
    ``origin`` is the session clock's origin, shared with the speaker; by default the input
    starts its clock when iteration starts and the speaker when it starts playing.
    ``output_path=None`` keeps the agent's audio in memory only (``output.samples``).
    """

    def __init__(
        self,
        input_path: str | Path,
        output_path: str | Path | None,
        *,
        output_rate: int = 24000,
        frame_ms: float = 20.0,
        speed: float = 1.0,
        origin: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        hang_up_after_s: float | None = None,
    ) -> None:
        if not speed >= 0:
            raise ValueError(f"speed must be >= 0 (0 or inf = as fast as possible), not {speed}")
        if hang_up_after_s is not None and not hang_up_after_s >= 0:
            raise ValueError(f"hang_up_after_s must be >= 0 or None, not {hang_up_after_s}")
        self._pcm, self._rate = audio.read_wav(input_path)
        self.frame_samples = audio.ms_to_samples(frame_ms, self._rate)
        if self.frame_samples < 1:
            raise ValueError(f"frame_ms={frame_ms} is less than one sample at {self._rate} Hz")
        # Due times from whole samples, so the input never drifts by rounding frame_ms.
        self._frame_seconds = self.frame_samples / self._rate
        self._fast = speed == 0 or math.isinf(speed)
        self._speed = speed
        self._origin = origin
        self._metadata: Mapping[str, Any] = dict(metadata or {})
        self._file_samples = audio.pcm_samples(self._pcm)
        self._end_samples = (
            None
            if hang_up_after_s is None
            else self._file_samples + audio.ms_to_samples(1000.0 * hang_up_after_s, self._rate)
        )
        self._speaker = WavSpeaker(output_path, output_rate, origin=origin)
        self.frames_sent = 0
        self._started = False
        self._closed = False
        # Created when iteration starts (an anyio.Event needs a running loop), so that
        # aclose() can wake a frame that is waiting for its due time.
        self._closed_event: anyio.Event | None = None

    @property
    def input_rate(self) -> int:
        return self._rate

    @property
    def output(self) -> WavSpeaker:
        return self._speaker

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    @property
    def origin(self) -> float | None:
        """``time.monotonic()`` of the input's frame 0; set when iteration starts unless given."""
        return self._origin

    @property
    def input_duration_ms(self) -> float:
        """Length of the input file alone (without the trailing silence)."""
        return audio.samples_to_ms(self._file_samples, self._rate)

    async def incoming(self) -> AsyncGenerator[bytes, None]:
        if self._started:
            raise RuntimeError("a WavTransport's incoming() is iterated once")
        self._started = True
        closed = self._closed_event = anyio.Event()
        if self._closed:
            closed.set()
        if self._origin is None:
            self._origin = time.monotonic()
        origin = self._origin
        k = 0
        while not closed.is_set():
            start = k * self.frame_samples
            if self._end_samples is not None and start >= self._end_samples:
                return  # the caller hung up
            if self._fast:
                await anyio.lowlevel.checkpoint()
            else:
                # a frame exists once its last sample has been spoken, as from a microphone
                due = origin + (k + 1) * self._frame_seconds / self._speed
                await self._wait_until(due, closed)
            if closed.is_set():
                return
            frame = self._pcm[2 * start : 2 * (start + self.frame_samples)]
            frame += audio.silence(self.frame_samples - audio.pcm_samples(frame))
            self.frames_sent += 1
            k += 1
            yield frame

    async def aclose(self) -> None:
        self._closed = True
        if self._closed_event is not None:
            self._closed_event.set()

    async def _wait_until(self, due: float, closed: anyio.Event) -> None:
        if time.monotonic() >= due:
            # Due already (a loop running behind): still let other tasks and a cancellation in.
            await anyio.lowlevel.checkpoint()
            return
        # A loop, not one sleep: event loops may wake a timer a hair early, and a frame is
        # never handed on before its due time.
        while not closed.is_set() and (wait := due - time.monotonic()) > 0:
            with anyio.move_on_after(wait):
                await closed.wait()
