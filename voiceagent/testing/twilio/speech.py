"""What the caller says: speech loaded as 8 kHz μ-law and scheduled on the caller's clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from voiceagent.audio import Resampler, parse_wav, read_wav, silence, ulaw_encode
from voiceagent.testing.twilio.wire import FRAME_BYTES, SAMPLE_RATE

SpeechSource = bytes | str | Path

SILENT_FRAME = ulaw_encode(silence(FRAME_BYTES))


def load_speech(source: SpeechSource, sample_rate: int = SAMPLE_RATE) -> bytes:
    """8 kHz μ-law of a WAV path, WAV bytes, or raw PCM16 bytes at ``sample_rate``."""
    if isinstance(source, (str, Path)):
        pcm, rate = read_wav(source)
    elif source[:4] == b"RIFF":
        pcm, rate = parse_wav(source)
    else:
        pcm, rate = bytes(source), sample_rate
    if rate != SAMPLE_RATE:
        resampler = Resampler(rate, SAMPLE_RATE)
        pcm = resampler.process(pcm) + resampler.flush()
    return ulaw_encode(pcm)


@dataclass
class SpeechQueue:
    """Caller speech waiting to be sent: each piece starts no earlier than its time, and
    never over another (a piece due while one is playing follows it)."""

    _scheduled: list[tuple[float, int, bytes]] = field(default_factory=list)
    _current: bytearray = field(default_factory=bytearray)
    _count: int = 0

    def add(self, ulaw: bytes, at: float) -> None:
        self._count += 1
        self._scheduled.append((at, self._count, ulaw))
        self._scheduled.sort()

    def next_frame(self, t: float) -> bytes:
        """The 20 ms frame to send at caller time ``t`` (silence when nobody speaks)."""
        while self._scheduled and self._scheduled[0][0] <= t + 1e-9:
            self._current += self._scheduled.pop(0)[2]
        if not self._current:
            return SILENT_FRAME
        frame = bytes(self._current[:FRAME_BYTES])
        del self._current[:FRAME_BYTES]
        return frame + SILENT_FRAME[len(frame) :]

    @property
    def idle(self) -> bool:
        """Nothing being said and nothing scheduled."""
        return not self._current and not self._scheduled
