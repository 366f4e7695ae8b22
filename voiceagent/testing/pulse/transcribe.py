"""How the Pulse fake turns audio into text: offline whisper when installed, else a table of
known utterances recognised by a fingerprint of their loudness over time."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from voiceagent import audio
from voiceagent.ports import STT, Transcript

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

RATE = 16000  # everything here works on PCM16 at 16 kHz
UNKNOWN = ""  # the table's text for speech it does not know
_BLOCK = 160  # 10 ms
_FLOOR_DB, _VOICED_DB = -60.0, -45.0
_MIN_SCORE = 0.75  # Pearson correlation of two envelopes that counts as the same utterance
_MAX_LAG = 3  # blocks of misalignment tolerated (codecs and resampling move the onset)


class Transcriber(Protocol):
    name: str

    async def final(self, pcm: bytes) -> str: ...

    async def partial(self, pcm: bytes) -> str: ...


def fingerprint(pcm: bytes) -> npt.NDArray[np.float64]:
    """Level in dB of each 10 ms block, from the first voiced block to the last ([] if none).

    Independent of sample rate, framing, silence around the speech and the gain (it is
    compared by correlation), and close enough through μ-law or resampling to match."""
    import numpy as np

    samples = audio.pcm_to_float32(pcm).astype(np.float64)
    blocks = samples[: len(samples) - len(samples) % _BLOCK].reshape(-1, _BLOCK)
    power = np.mean(np.square(blocks), axis=1) if len(blocks) else np.zeros(0)
    level = np.maximum(10.0 * np.log10(np.maximum(power, 1e-12)), _FLOOR_DB)
    voiced = np.flatnonzero(level > _VOICED_DB)
    return level[voiced[0] : voiced[-1] + 1] if voiced.size else np.zeros(0)


def _score(heard: npt.NDArray[np.float64], known: npt.NDArray[np.float64]) -> float:
    """Best correlation of ``heard`` with the start of ``known`` over small misalignments."""
    import numpy as np

    best = -1.0
    for lag in range(-_MAX_LAG, _MAX_LAG + 1):
        a, b = (heard[lag:], known) if lag >= 0 else (heard, known[-lag:])
        n = min(len(a), len(b))
        if n < 5 or np.std(a[:n]) == 0 or np.std(b[:n]) == 0:
            continue
        best = max(best, float(np.corrcoef(a[:n], b[:n])[0, 1]))
    return best


@dataclass(frozen=True)
class _Entry:
    text: str
    print: npt.NDArray[np.float64]


class UtteranceTable:
    """Known utterances keyed by content: ``add(pcm16, text)``, then audio that sounds like it
    (same recording, any framing, padding, gain, codec or rate) transcribes to ``text``.
    Unknown speech gives ``unknown`` (``""`` by default); silence always gives ``""``."""

    name = "table"

    def __init__(self, unknown: str = UNKNOWN) -> None:
        self.unknown = unknown
        self._entries: list[_Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, pcm16: bytes, text: str, sample_rate: int = RATE) -> None:
        if sample_rate != RATE:
            resampler = audio.Resampler(sample_rate, RATE)
            pcm16 = resampler.process(pcm16) + resampler.flush()
        voice = fingerprint(pcm16)
        if voice.size < 5:
            raise ValueError("the audio holds no speech to recognise (is it silence?)")
        self._entries.append(_Entry(text, voice))

    def lookup(self, pcm16: bytes) -> tuple[str, float] | None:
        """(text, fraction of it heard) of the best match for 16 kHz audio; None if silent."""
        heard = fingerprint(pcm16)
        if heard.size == 0:
            return None
        best: tuple[float, str, float] = (_MIN_SCORE, self.unknown, 1.0)
        for entry in self._entries:
            if len(heard) > 1.25 * len(entry.print) + _MAX_LAG:
                continue  # longer than this utterance: something else
            score = _score(heard, entry.print)
            fraction = min(1.0, len(heard) / len(entry.print))
            if score >= best[0]:
                best = (score, entry.text, 1.0 if fraction > 0.9 else fraction)
        return best[1], best[2]

    async def final(self, pcm: bytes) -> str:
        found = self.lookup(pcm)
        return found[0] if found else ""

    async def partial(self, pcm: bytes) -> str:
        """A growing prefix of the text, in proportion to the audio heard so far."""
        found = self.lookup(pcm)
        if found is None:
            return ""
        words = found[0].split()
        return " ".join(words[: math.ceil(found[1] * len(words))])


class WhisperTranscriber:
    """Offline whisper through ``voiceagent.adapters.whisper.WhisperSTT`` (``offline`` extra).
    Partials re-transcribe the utterance so far: slow, so the server asks at most once a second.
    The model loads on first use and is shared by every stream of the same language."""

    name = "whisper"

    def __init__(self, language: str = "en") -> None:
        module = importlib.import_module("voiceagent.adapters.whisper")
        self._stt: STT = module.WhisperSTT(sample_rate=RATE, language=language)

    async def final(self, pcm: bytes) -> str:
        async with self._stt.stream() as stream:
            await stream.send_audio(pcm)
            await stream.finalize()
            async for event in stream.events():
                if isinstance(event, Transcript) and event.is_final:
                    return event.text
        return ""

    async def partial(self, pcm: bytes) -> str:
        return await self.final(pcm)


def whisper_available() -> bool:
    """True when offline whisper can run here (the adapter, faster-whisper and the model)."""
    try:
        WhisperTranscriber()
    except (ImportError, OSError):
        return False
    return True
