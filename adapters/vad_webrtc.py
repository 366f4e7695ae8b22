"""Voice activity detection with WebRTC's GMM detector (``webrtcvad-wheels``, the
``offline`` extra): microseconds per frame, the zero-cost fallback to Silero."""

from __future__ import annotations

import importlib
from typing import Any

from voiceagent import audio
from voiceagent.ports import VADEvent

from .vad_silero import INSTALL_HINT, SpeechGate, VADNotInstalled

SAMPLE_RATES = (8000, 16000, 32000, 48000)
FRAME_MS = (10, 20, 30)


class WebRTCVAD:
    """``ports.VAD`` with webrtcvad: a speech/silence decision per ``frame_ms`` frame.

    ``mode`` 0-3 is the detector's aggressiveness (3 filters out the most non-speech;
    lower modes blipped on background noise here). See ``SpeechGate`` for the minimum
    speech and the hangover. Sans-IO: feed any chunk sizes to ``process``.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        mode: int = 3,
        min_silence_ms: float = 300.0,
        min_speech_ms: float = 250.0,
        frame_ms: int = 20,
    ) -> None:
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"webrtcvad takes {SAMPLE_RATES} Hz, not {sample_rate}")
        if frame_ms not in FRAME_MS:
            raise ValueError(f"webrtcvad takes frames of {FRAME_MS} ms, not {frame_ms}")
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"mode must be 0, 1, 2 or 3, got {mode}")
        try:
            webrtcvad = importlib.import_module("webrtcvad")
        except ImportError as error:
            raise VADNotInstalled(f"WebRTC VAD needs webrtcvad-wheels; {INSTALL_HINT}") from error
        self._sample_rate = sample_rate
        self.mode = mode
        self.frame_samples = sample_rate * frame_ms // 1000
        self._detector: Any = webrtcvad.Vad(mode)
        self._gate = SpeechGate(sample_rate, min_speech_ms, min_silence_ms)
        self._pending = b""

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def reset(self) -> None:
        """Forget everything heard: the next audio is position 0 of a new stream."""
        self._pending = b""
        self._gate.reset()

    def process(self, pcm: bytes) -> list[VADEvent]:
        data = self._pending + pcm
        frame_bytes = self.frame_samples * audio.SAMPLE_WIDTH
        events: list[VADEvent] = []
        start = 0
        while start + frame_bytes <= len(data):
            frame = data[start : start + frame_bytes]
            start += frame_bytes
            speech = bool(self._detector.is_speech(frame, self._sample_rate))
            event = self._gate.frame(speech, self.frame_samples)
            if event is not None:
                events.append(event)
        self._pending = data[start:]
        return events
