"""The turn timeline: timestamped events of every turn on the session clock, their metrics,
and the JSON file of DESIGN.md's observable contract (pictures live in timeline_render)."""

from __future__ import annotations

import bisect
import json
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from voiceagent import timeline_render

__all__ = ["EVENT_KINDS", "SessionClock", "Timeline", "TimelineEvent", "TurnTimeline"]

# kind -> required attributes and their types: the contract's vocabulary, checked on mark()
# so the engine cannot drift from what outside tools read.
EVENT_KINDS: dict[str, dict[str, type]] = {
    "user.speech_end": {},
    "stt.final": {"text": str},
    "llm.request": {"round": int},
    # ours, beyond the contract: a request that waited for a concurrency slot got it (it
    # carries waited_ms); llm.request → llm.slot is the wait, then the server's time
    "llm.slot": {"round": int},
    "llm.first_token": {"round": int},
    "llm.end": {"round": int},
    "tool.args_ready": {"name": str, "call_id": str, "round": int},
    "tool.start": {"name": str, "call_id": str, "round": int},
    "tool.end": {"name": str, "call_id": str, "round": int},
    "tts.request": {"segment": int},
    "tts.first_audio": {"segment": int},
    "audio.start": {"segment": int, "text": str},
    "audio.end": {"segment": int, "text": str},
    "barge_in": {"segment": int},
    "turn.end": {"reason": str},
}
_TYPES = {name: kind for attrs in EVENT_KINDS.values() for name, kind in attrs.items()}
TRIGGERS = ("user", "greeting", "reprompt")
_RESERVED = frozenset({"t_ms", "kind"})  # the event's own keys in the JSON object


def _round_ms(value: float) -> float:
    return round(value, 1) + 0.0  # + 0.0 turns -0.0 into 0.0


class SessionClock:
    """Milliseconds since the session's start (its 0 is sample 0 of the recording)."""

    def __init__(self, origin: float | None = None) -> None:
        self.origin = time.monotonic() if origin is None else origin

    def now_ms(self) -> float:
        return self.ms_at(time.monotonic())

    def ms_at(self, monotonic: float) -> float:
        """Session milliseconds of a ``time.monotonic()`` reading taken elsewhere."""
        return (monotonic - self.origin) * 1000.0


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One moment of a turn; serialised flat as ``{"t_ms", "kind", **attrs}``."""

    kind: str
    t_ms: float  # milliseconds since the turn's t=0
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "kind": self.kind, **self.attrs}


@dataclass(frozen=True, slots=True)
class _Usage:
    prompt: int
    completion: int
    cached: int
    estimated: bool


def _plain(key: str, value: Any) -> Any:
    """The value as JSON will hold it; refuses what JSON cannot (a bug in the caller)."""
    if isinstance(value, Enum):
        value = value.value
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"attribute {key!r} is not a finite number: {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(key, item) for item in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(key, v) for k, v in value.items()}
    raise ValueError(f"attribute {key!r} is not JSON data: {type(value).__name__}")


def _check(kind: str, attrs: dict[str, Any]) -> dict[str, Any]:
    required = EVENT_KINDS.get(kind)
    if required is None:
        raise ValueError(f"unknown timeline event kind {kind!r}; known: {sorted(EVENT_KINDS)}")
    missing = [name for name in required if name not in attrs]
    if missing:
        raise ValueError(f"timeline event {kind!r} needs attribute {missing[0]!r}")
    # a contract attribute has its type wherever it appears (metrics read `round` off audio)
    for name in _TYPES.keys() & attrs.keys():
        value, expected = attrs[name], _TYPES[name]
        # bool is an int to Python, never a round or a segment number to a reader
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(
                f"timeline event {kind!r}: {name!r} must be {expected.__name__}, got {value!r}"
            )
    if attrs.get("round", 1) < 1:
        raise ValueError(f"timeline event {kind!r}: rounds count from 1, got {attrs['round']}")
    clash = _RESERVED & attrs.keys()
    if clash:
        raise ValueError(f"timeline event {kind!r}: {sorted(clash)} are not attribute names")
    return {key: _plain(key, value) for key, value in attrs.items()}


EventListener = Callable[["TurnTimeline", TimelineEvent], None]


class TurnTimeline:
    """The events of one turn, kept sorted by ``t_ms`` (ties in the order they were marked)."""

    def __init__(
        self,
        clock: SessionClock,
        trigger: str,
        start_ms: float,
        on_event: EventListener | None = None,
    ) -> None:
        if trigger not in TRIGGERS:
            raise ValueError(f"turn trigger must be one of {TRIGGERS}, got {trigger!r}")
        self.clock = clock
        self.trigger = trigger
        self.start_ms = _round_ms(start_ms)
        self._events: list[TimelineEvent] = []
        self._usage: list[_Usage] = []
        self.on_event = on_event

    @property
    def events(self) -> list[TimelineEvent]:
        return list(self._events)

    def mark(self, kind: str, *, at_ms: float | None = None, **attrs: Any) -> TimelineEvent:
        """Record ``kind`` at session time ``at_ms`` (default: now)."""
        attrs = _check(kind, attrs)
        if kind in ("audio.start", "audio.end"):
            # one segment plays once: a second start or end is the engine's bug
            if any(e.kind == kind and e.attrs["segment"] == attrs["segment"] for e in self._events):
                raise ValueError(f"segment {attrs['segment']} already has {kind!r}")
        session_ms = self.clock.now_ms() if at_ms is None else at_ms
        if not math.isfinite(session_ms):
            raise ValueError(f"at_ms must be a finite number, got {session_ms!r}")
        event = TimelineEvent(kind, _round_ms(max(0.0, session_ms - self.start_ms)), attrs)
        bisect.insort_right(self._events, event, key=lambda e: e.t_ms)
        if self.on_event is not None:
            self.on_event(self, event)
        return event

    def add_usage(self, prompt: int, completion: int, cached: int, estimated: bool = False) -> None:
        """Token usage of one LLM request of this turn."""
        if min(prompt, completion, cached) < 0:
            raise ValueError(f"token counts cannot be negative: {prompt}, {completion}, {cached}")
        self._usage.append(_Usage(prompt, completion, cached, estimated))

    def metrics(self) -> dict[str, Any]:
        events, usage = self._events, self._usage
        prompt = sum(u.prompt for u in usage)
        cached = sum(u.cached for u in usage)
        tool_spans = _union(_spans(events, "tool.start", "tool.end", "call_id"))
        speech_spans = _union(_spans(events, "audio.start", "audio.end", "segment"))
        return {
            "first_audio_ms": _first_audio_ms(events),
            "filler_answer_gap_ms": _filler_answer_gap_ms(events),
            "tool_hidden_ms": (
                _round_ms(_intersection(tool_spans, speech_spans)) if tool_spans else None
            ),
            "cache_hit_ratio": cached / prompt if usage and prompt else None,
            "usage": {
                "prompt": prompt,
                "completion": sum(u.completion for u in usage),
                "cached": cached,
                "estimated": any(u.estimated for u in usage),
            }
            if usage
            else None,
            # extras, not in the contract: where the remaining latency sits
            "tool_time_ms": _round_ms(_measure(tool_spans)) if tool_spans else None,
            "tool_start_after_args_ms": _tool_start_after_args_ms(events),
            "followup_after_tools_ms": _followup_after_tools_ms(events),
            "total_ms": next((e.t_ms for e in reversed(events) if e.kind == "turn.end"), None),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "trigger": self.trigger,
            "events": [event.to_dict() for event in self._events],
            "metrics": self.metrics(),
        }

    def lanes(self, width: int = 100) -> str:
        """The turn as plain-text lanes on a time axis, then its summary line."""
        return timeline_render.lanes(self, width)

    def summary(self) -> str:
        """One line of the turn's key figures."""
        return timeline_render.summary(self)


class Timeline:
    """Every turn of one session, on one session clock."""

    def __init__(
        self, clock: SessionClock | None = None, *, on_event: EventListener | None = None
    ) -> None:
        self.clock = clock if clock is not None else SessionClock()
        self.turns: list[TurnTimeline] = []
        self.on_event = on_event  # called after every event of every turn, as it is marked

    def start_turn(self, trigger: str = "user", *, start_ms: float | None = None) -> TurnTimeline:
        """A new turn whose t=0 is ``start_ms`` on the session clock (default: now)."""
        start = self.clock.now_ms() if start_ms is None else start_ms
        turn = TurnTimeline(self.clock, trigger, start, self.on_event)
        self.turns.append(turn)
        return turn

    def to_dict(self) -> dict[str, Any]:
        return {"turns": [turn.to_dict() for turn in self.turns]}

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Rewrite the whole file; a reader never sees half of it."""
        _write_atomic(Path(path), json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    def write_html(self, path: str | os.PathLike[str]) -> None:
        """One self-contained HTML page picturing every turn."""
        _write_atomic(Path(path), timeline_render.html(self.turns))


def _write_atomic(path: Path, text: str) -> None:
    # a fresh name opened with "x" rather than mkstemp, so the file gets the umask's mode
    # (mkstemp's 0600 would hide the timeline from other users of a shared box)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "x", encoding="utf-8") as file:
            file.write(text + "\n")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# --- metrics: each documented where it is computed; inputs are the turn's sorted events ---

Span = tuple[float, float]


def _spans(events: list[TimelineEvent], start: str, end: str, key: str) -> list[Span]:
    """[start, end] per ``key``; one never ended (cut by the turn's end) runs to the last event."""
    last = events[-1].t_ms if events else 0.0
    opened: dict[Any, float] = {}
    closed: dict[Any, float] = {}
    for event in events:
        ident = event.attrs.get(key)
        if event.kind == start:
            opened.setdefault(ident, event.t_ms)
        elif event.kind == end:
            closed.setdefault(ident, event.t_ms)
    return [(t0, max(t0, closed.get(ident, last))) for ident, t0 in opened.items()]


def _union(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _measure(spans: list[Span]) -> float:
    return sum(b - a for a, b in spans)


def _intersection(xs: list[Span], ys: list[Span]) -> float:
    """Measure of the overlap of two unions of disjoint spans."""
    return sum(max(0.0, min(b, d) - max(a, c)) for a, b in xs for c, d in ys)


def _first_audio_ms(events: list[TimelineEvent]) -> float | None:
    """First ``audio.start`` minus the first ``user.speech_end`` (t=0 without speech)."""
    audio = next((e.t_ms for e in events if e.kind == "audio.start"), None)
    if audio is None:
        return None
    heard = next((e.t_ms for e in events if e.kind == "user.speech_end"), 0.0)
    return _round_ms(max(0.0, audio - heard))


def _filler_answer_gap_ms(events: list[TimelineEvent]) -> float | None:
    """The largest silence before a follow-up round's first audio.

    For each follow-up round r ≥ 2 (an ``llm.request`` with round r), its first audio is the
    first ``audio.start`` whose ``round`` is r when audio events carry ``round``, else the
    first ``audio.start`` at or after that request. The silence before it is that start minus
    the latest ``audio.end`` at or before it, at least 0, and 0 when another segment was still
    playing then. None when no follow-up produced audio or no audio came before it.
    """
    starts = [e for e in events if e.kind == "audio.start"]
    by_round = any("round" in e.attrs for e in starts)
    spans = _spans(events, "audio.start", "audio.end", "segment")
    gaps: list[float] = []
    for request in events:
        r = request.attrs.get("round")
        if request.kind != "llm.request" or not isinstance(r, int) or r < 2:
            continue
        if by_round:
            first = next((e for e in starts if e.attrs.get("round") == r), None)
        else:
            first = next((e for e in starts if e.t_ms >= request.t_ms), None)
        if first is None:
            continue
        t = first.t_ms
        ends = [e.t_ms for e in events if e.kind == "audio.end" and e.t_ms <= t]
        if any(a < t < b for a, b in spans):  # overlapping speech: no silence at all
            gaps.append(0.0)
        elif ends:
            gaps.append(max(0.0, t - max(ends)))
    return _round_ms(max(gaps)) if gaps else None


def _tool_start_after_args_ms(events: list[TimelineEvent]) -> float | None:
    """Largest wait of a call between complete arguments and its start."""
    ready = {e.attrs["call_id"]: e.t_ms for e in events if e.kind == "tool.args_ready"}
    waits = [
        e.t_ms - ready[e.attrs["call_id"]]
        for e in events
        if e.kind == "tool.start" and e.attrs["call_id"] in ready
    ]
    return _round_ms(max(0.0, *waits)) if waits else None


def _followup_after_tools_ms(events: list[TimelineEvent]) -> float | None:
    """Largest wait between the last ``tool.end`` of round r-1 and ``llm.request`` of round r."""
    waits: list[float] = []
    for request in events:
        r = request.attrs.get("round")
        if request.kind != "llm.request" or not isinstance(r, int) or r < 2:
            continue
        ends = [e.t_ms for e in events if e.kind == "tool.end" and e.attrs["round"] == r - 1]
        if ends:
            waits.append(request.t_ms - max(ends))
    return _round_ms(max(0.0, *waits)) if waits else None
