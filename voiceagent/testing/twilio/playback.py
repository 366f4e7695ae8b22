"""Twilio's playback buffer as a model on the caller's clock: what played, when, and which
marks it confirmed or cleared."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from voiceagent.audio import silence, ulaw_decode
from voiceagent.testing.twilio.wire import SAMPLE_RATE


@dataclass
class _Audio:
    index: int  # which bot media message, in arrival order
    ulaw: bytes
    offset: int = 0  # samples of it already played


@dataclass
class _Mark:
    name: str


@dataclass
class PlaybackBuffer:
    """Bot audio queued at 8 kHz and played from when it arrives, in order, at one sample per
    1/8000 s of caller clock; silence whenever the queue is empty.

    Callers move it forward with ``advance(t)`` before every change, so the queue's head is
    always what plays at the current moment. Times are caller-clock seconds.
    """

    heard: bytearray = field(default_factory=bytearray)  # PCM16, sample 0 = t 0
    media_played_at: list[float | None] = field(default_factory=list)
    _queue: deque[_Audio | _Mark] = field(default_factory=deque)

    @property
    def cursor(self) -> int:
        """Samples of caller clock accounted for (heard audio plus silence)."""
        return len(self.heard) // 2

    def advance(self, t: float) -> list[str]:
        """Play up to caller time ``t``; the names of the marks reached, in order."""
        target = round(t * SAMPLE_RATE)
        reached: list[str] = []
        while True:
            while self._queue and isinstance(self._queue[0], _Mark):
                reached.append(self._pop_mark())
            if self.cursor >= target:
                return reached
            if not self._queue:
                self.heard += silence(target - self.cursor)
                return reached
            head = self._queue[0]
            assert isinstance(head, _Audio)
            if head.offset == 0:
                self.media_played_at[head.index] = self.cursor / SAMPLE_RATE
            n = min(len(head.ulaw) - head.offset, target - self.cursor)
            self.heard += ulaw_decode(head.ulaw[head.offset : head.offset + n])
            head.offset += n
            if head.offset == len(head.ulaw):
                self._queue.popleft()

    def add_media(self, t: float, ulaw: bytes) -> list[str]:
        """Queue one bot media payload arriving at ``t``; marks reached on the way there."""
        reached = self.advance(t)
        self.media_played_at.append(None)
        if ulaw:
            self._queue.append(_Audio(len(self.media_played_at) - 1, ulaw))
        return reached

    def add_mark(self, t: float, name: str) -> list[str]:
        """Queue a mark arriving at ``t``; the marks reached (this one too if nothing is queued)."""
        reached = self.advance(t)
        self._queue.append(_Mark(name))
        return reached + self.advance(t)

    def clear(self, t: float) -> tuple[list[str], list[str]]:
        """Drop the unplayed audio at ``t``: (marks reached before it, marks cleared by it)."""
        reached = self.advance(t)
        cleared = [item.name for item in self._queue if isinstance(item, _Mark)]
        self._queue.clear()
        return reached, cleared

    def next_mark_due(self) -> float | None:
        """Caller time at which the next pending mark will be reached, if any."""
        samples = self.cursor
        for item in self._queue:
            if isinstance(item, _Mark):
                return samples / SAMPLE_RATE
            samples += len(item.ulaw) - item.offset
        return None

    @property
    def pending_marks(self) -> list[str]:
        return [item.name for item in self._queue if isinstance(item, _Mark)]

    def _pop_mark(self) -> str:
        item = self._queue.popleft()
        assert isinstance(item, _Mark)
        return item.name
