"""One Pulse stream inside the fake: audio in, VAD events, partials, endpointed finals and
answers to ``finalize``/``close_stream`` out (all on the stream's own audio clock)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from voiceagent import audio
from voiceagent.ports import VAD, SpeechStarted
from voiceagent.testing.pulse import wire
from voiceagent.testing.pulse.transcribe import RATE, Transcriber

Emit = Callable[[dict[str, Any], bool], Awaitable[None]]  # (message, is it a final)
_PAD = audio.ms_to_samples(200, RATE)  # audio kept around speech for the transcriber


class StreamSession:
    """Positions are samples at 16 kHz since the socket opened."""

    def __init__(
        self,
        session_id: str,
        config: wire.StreamConfig,
        vad: VAD,
        transcriber: Transcriber,
        partial_every_ms: float,
        emit: Emit,
    ) -> None:
        self.session_id, self.config = session_id, config
        self.vad, self.transcriber, self.emit = vad, transcriber, emit
        self.partial_every = audio.ms_to_samples(partial_every_ms, RATE)
        # The table only compares levels of 10 ms blocks: linear interpolation is plenty, and
        # 20x cheaper than sinc (a 200-call bench spent three quarters of the fake in it)
        converter = "linear" if transcriber.name == "table" else "sinc_medium"
        self._resampler = audio.Resampler(config.sample_rate, RATE, converter)
        self._audio = bytearray()
        self._base = 0  # position of _audio[0]
        self.position = 0
        self._utterance = 0  # audio before this position has had its final
        self._speech: int | None = None  # start of the speech going on
        self._heard = False  # speech since the last final
        self._last_partial_at = 0
        self._last_partial = ""

    async def on_frame(self, frame: bytes) -> None:
        pcm = wire.decode(frame, self.config.encoding)
        if self.config.sample_rate != RATE:
            pcm = self._resampler.process(pcm)
        self._audio += pcm
        self.position += len(pcm) // 2
        for event in self.vad.process(pcm):
            at = audio.ms_to_samples(event.at_ms, RATE)
            if isinstance(event, SpeechStarted):
                self._speech, self._heard = at, True
                self._last_partial_at = at
                if self.config.vad_events:
                    await self.emit(wire.vad_event("speech_started", event.at_ms), False)
                continue
            # The endpointing final comes before speech_ended: both fire on the same silence
            # window, and LiveKit's plugin (stt.py, _process_stream_event) opens a turn on
            # any final with words and closes it on speech_ended, so a final after the end
            # would open a phantom second turn against the real service.
            start, self._speech = self._speech, None
            if self.config.endpointing and self._heard and start is not None:
                end = at + _PAD
                text = await self.transcriber.final(self._slice(start - _PAD, end))
                await self._final(text, end)
            if self.config.vad_events:
                await self.emit(wire.vad_event("speech_ended", event.at_ms), False)
        if self._speech is not None and self.position - self._last_partial_at >= self.partial_every:
            self._last_partial_at = self.position
            text = await self.transcriber.partial(self._slice(self._speech - _PAD, self.position))
            if text and text != self._last_partial:
                self._last_partial = text
                await self.emit(wire.transcription(self.session_id, text, is_final=False), False)

    async def on_finalize(self, *, last: bool = False) -> None:
        """Everything heard since the last final, as one final (``""`` if nothing was said)."""
        text = ""
        if self._heard:
            text = await self.transcriber.final(self._slice(self._utterance, self.position))
        await self._final(text, self.position, from_finalize=not last, last=last)

    async def _final(
        self, text: str, end: int, *, from_finalize: bool = False, last: bool = False
    ) -> None:
        message = wire.transcription(
            self.session_id,
            text,
            is_final=True,
            is_last=last,
            from_finalize=from_finalize,
            language=self.config.language,
        )
        await self.emit(message, True)
        self._utterance = max(self._utterance, min(end, self.position))
        self._heard = self._speech is not None  # speech going on belongs to the next one
        self._last_partial = ""
        keep = min(self._utterance, self._speech if self._speech is not None else self.position)
        self._forget_before(keep - _PAD)

    def _slice(self, start: int, end: int) -> bytes:
        start = max(start, self._utterance, self._base)
        return bytes(self._audio[2 * (start - self._base) : 2 * (max(start, end) - self._base)])

    def _forget_before(self, position: int) -> None:
        if position > self._base:
            del self._audio[: 2 * (position - self._base)]
            self._base = position
