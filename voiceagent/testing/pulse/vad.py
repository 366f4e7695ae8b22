"""Voice activity detection for the Pulse fake: the webrtcvad adapter when the ``offline``
extra is installed, else a small energy detector (both implement ``ports.VAD``)."""

from __future__ import annotations

import importlib

from voiceagent import audio
from voiceagent.ports import VAD, SpeechEnded, SpeechStarted, VADEvent

BLOCK_MS = 10


class EnergyVAD:
    """``ports.VAD`` by level: 10 ms blocks louder than ``threshold_dbfs`` are voiced. Speech
    starts after ``min_speech_ms`` of voiced blocks and ends after ``min_silence_ms`` quiet.

    Fine for clean test audio (synthetic speech padded with digital silence), not for noise.
    ``SpeechStarted.at_ms`` is the first voiced block, ``SpeechEnded.at_ms`` the end of the last.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        threshold_dbfs: float = -45.0,
        min_speech_ms: int = 30,
        min_silence_ms: int = 300,
    ) -> None:
        self._sample_rate = sample_rate
        self.threshold_dbfs = threshold_dbfs
        self.block = audio.ms_to_samples(BLOCK_MS, sample_rate)
        self.min_speech_blocks = max(1, min_speech_ms // BLOCK_MS)
        self.min_silence_blocks = max(1, min_silence_ms // BLOCK_MS)
        self.reset()

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def reset(self) -> None:
        self._held = b""
        self._blocks = 0  # blocks seen so far
        self._speaking = False
        self._run = 0  # consecutive voiced (while quiet) or quiet (while speaking) blocks
        self._last_voiced = 0  # block index just after the last voiced block

    def process(self, pcm: bytes) -> list[VADEvent]:
        data = self._held + pcm
        size = 2 * self.block
        whole = len(data) - len(data) % size
        self._held = data[whole:]
        events: list[VADEvent] = []
        for start in range(0, whole, size):
            voiced = audio.rms_dbfs(data[start : start + size]) > self.threshold_dbfs
            self._blocks += 1
            if voiced:
                self._last_voiced = self._blocks
            if self._speaking:
                self._run = 0 if voiced else self._run + 1
                if self._run >= self.min_silence_blocks:
                    self._speaking, self._run = False, 0
                    events.append(SpeechEnded(self._last_voiced * float(BLOCK_MS)))
            else:
                self._run = self._run + 1 if voiced else 0
                if self._run >= self.min_speech_blocks:
                    self._speaking, self._run = True, 0
                    first = self._blocks - self.min_speech_blocks
                    events.append(SpeechStarted(first * float(BLOCK_MS)))
        return events


def make_vad(sample_rate: int, min_silence_ms: int) -> tuple[VAD, str]:
    """The best detector installed, and its name (``"webrtcvad"`` or ``"energy"``)."""
    try:
        module = importlib.import_module("voiceagent.adapters.vad_webrtc")
        detector: VAD = module.WebRTCVAD(sample_rate, mode=3, min_silence_ms=min_silence_ms)
        return detector, "webrtcvad"
    except ImportError:
        return EnergyVAD(sample_rate, min_silence_ms=min_silence_ms), "energy"
