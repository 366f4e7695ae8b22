"""The agent's voice to one browser page: sent a little ahead of real time on the line clock,
a segment's start and end announced at their stream positions, each end confirmed by the
page as it plays (like Twilio's marks), cleared at once on barge-in, and what was heard
corrected from the page's reports (``web_transport`` has the wire)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from voiceagent import audio, ports
from voiceagent.adapters.line_clock import PacedSpeaker, SpokenSegment

logger = logging.getLogger(__name__)

FRAME_MS = 20  # the agent's audio sent per tick

Message = str | bytes


@dataclass
class _Sent:
    """A segment's audio on its way to the page: stream samples [start, end)."""

    segment: SpokenSegment
    start: int
    end: int


class WebSpeaker(PacedSpeaker):
    """``ports.AudioSink`` for one page: the agent's audio as binary messages, ``lead_ms``
    ahead of the session clock (``origin``), silence never sent (the page plays silence
    when its buffer is empty). Positions count the samples sent (the page's stream index).

    The page reports how far it has played (``progress``), and each segment's last sample
    (``confirm``); on ``interrupt()`` (barge-in) what was heard is corrected at once from
    the last report and the time since, and again, exactly, from the page's ``cleared``.
    """

    def __init__(
        self,
        sample_rate: int,
        send: Callable[[Message], None],
        *,
        origin: float,
        lead_ms: float = 100.0,
        frame_ms: int = FRAME_MS,
    ) -> None:
        self._rate = sample_rate
        self._send = send
        self._pace_with(sample_rate, origin, lead_ms, frame_ms)
        self.sent = 0  # samples of audio sent: the page's stream index
        self.position = 0  # how far the page has played (its last report)
        self._reported_at = origin
        self.marks_sent: list[str] = []
        self.confirmed: list[str] = []  # echoed by the page: heard to the end
        self.cleared: list[str] = []  # outstanding at a clear: not heard to the end
        self.clears = 0
        self.clears_answered = 0  # the page said where each clear stopped it
        self.heard_correction = 0  # samples the page's exact report took off the estimate
        self._outstanding: dict[str, int] = {}  # mark -> the stream index it stands at
        self._on_line: list[_Sent] = []  # segments sent and not known to have played
        self._cut: list[_Sent] = []  # segments of the last clear, until the page answers it
        self._current: _Sent | None = None

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def outstanding(self) -> list[str]:
        """Marks sent and not yet confirmed."""
        return list(self._outstanding)

    async def play(self, source: ports.AudioSource) -> None:
        """Sends ``source`` to the page in real time until cancelled."""
        if source.sample_rate != self._rate:
            raise ValueError(f"this page plays {self._rate} Hz, not {source.sample_rate}")
        await self._pace(source)

    def _frame(self, source: ports.AudioSource, position: int) -> None:
        pcm = source.read(self.frame_samples, position)
        got = audio.pcm_samples(pcm)
        ends, self._ends = self._ends, []
        offset = 0
        for segment, end in ends:
            cut = min(max(end - position, offset), got)
            self._audio(pcm[2 * offset : 2 * cut], segment)
            self._mark(segment)
            offset = cut
        playing = self._source.playing if self._source is not None else None
        self._audio(pcm[2 * offset :], playing)

    def _audio(self, pcm: bytes, segment: SpokenSegment | None) -> None:
        samples = audio.pcm_samples(pcm)
        if not samples:
            return
        if segment is not None:
            if self._current is None or self._current.segment is not segment:
                self._current = _Sent(segment, self.sent, self.sent)
                self._on_line.append(self._current)
                self._send(json.dumps({"type": "segment", "segment": segment.id,
                                       "text": _text(segment), "at": self.sent}))  # fmt: skip
            self._current.end += samples
        self._send(pcm)
        self.sent += samples

    def _mark(self, segment: SpokenSegment) -> None:
        name = str(segment.id)
        self._outstanding[name] = self.sent
        self.marks_sent.append(name)
        self._mark_sent()
        self._send(json.dumps({"type": "mark", "name": name, "segment": segment.id,
                               "text": _text(segment), "at": self.sent}))  # fmt: skip
        if self._current is not None and self._current.segment is segment:
            self._current = None

    def progress(self, position: int) -> None:
        """The page has played ``position`` samples of the stream."""
        position = min(max(position, self.position), self.sent)
        self.position = position
        self._reported_at = time.monotonic()
        self._on_line = [s for s in self._on_line if s.end > position]

    def confirm(self, name: str, position: int | None = None) -> None:
        """The page played segment ``name`` to its end."""
        at = self._outstanding.pop(name, None)
        if at is None and name in self.cleared:
            return  # confirmed as the clear went out: it was cut all the same
        if at is None:
            self._unknown_mark(name)
            return
        self.confirmed.append(name)
        self.progress(max(at, position or 0))
        self._check_played()

    def interrupt(self) -> None:
        """Barge-in: the page is told to ``clear``; what was heard is corrected now, from
        the page's last report and the time since (DESIGN.md, "What was heard")."""
        elapsed = max(0.0, time.monotonic() - self._reported_at)
        estimate = min(self.sent, self.position + round(elapsed * self._rate))
        for sent in self._on_line:
            sent.segment.correct_played(min(max(0, estimate - sent.start), sent.end - sent.start))
        self._cut = self._on_line
        self._on_line = []
        self._current = None
        self.cleared.extend(self._outstanding)
        self._outstanding.clear()
        self.clears += 1
        self._send(json.dumps({"type": "clear", "at": self.sent}))
        self.position, self._reported_at = self.sent, time.monotonic()
        self._check_played()

    def answer_clear(self, position: int) -> None:
        """The page says where the clear stopped it: the heard part, exactly."""
        for sent in self._cut:
            before = sent.segment.played
            sent.segment.correct_played(min(max(0, position - sent.start), sent.end - sent.start))
            self.heard_correction += before - sent.segment.played
        self._cut = []
        self.clears_answered += 1


def _text(segment: SpokenSegment) -> str:
    text = getattr(segment, "text", "")
    return text.strip() if isinstance(text, str) else ""
