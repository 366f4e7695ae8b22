"""Pictures of turn timelines: plain-text lanes for a terminal and one self-contained HTML page
(inline SVG and CSS, nothing fetched)."""

from __future__ import annotations

import html as _html
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voiceagent.timeline import TimelineEvent, TurnTimeline

__all__ = ["html", "lanes", "summary"]

# style -> terminal glyph; the same styles are CSS classes in the HTML page
_GLYPHS = {"listen": "~", "wait": "-", "queue": ".", "run": "=", "speak": "#"}
_LEGEND = "~ user speaking  - waiting  . queued  = running  # audio playing  X barge-in"
_LABEL_WIDTH = 10


@dataclass
class _Bar:
    t0: float
    t1: float
    style: str


@dataclass
class _Row:
    label: str
    note: str = ""  # a tool's name, a segment's text
    bars: list[_Bar] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (t_ms, glyph)
    events: list[TimelineEvent] = field(default_factory=list)

    def bar(self, t0: float | None, t1: float | None, style: str) -> None:
        if t0 is not None and t1 is not None and t1 >= t0:
            self.bars.append(_Bar(t0, t1, style))

    def title(self) -> str:
        """Every event of the row with its exact time and attributes (the tooltip)."""
        lines = [self.label + (f": {self.note}" if self.note else "")]
        for event in self.events:
            attrs = ", ".join(f"{k}={v!r}" for k, v in event.attrs.items())
            lines.append(f"{event.t_ms:.1f} ms  {event.kind}" + (f"  ({attrs})" if attrs else ""))
        return "\n".join(lines)


def _first(events: list[TimelineEvent], kind: str) -> float | None:
    return next((e.t_ms for e in events if e.kind == kind), None)


def _grouped(events: list[TimelineEvent], prefix: str, key: str) -> dict[Any, list[TimelineEvent]]:
    groups: dict[Any, list[TimelineEvent]] = {}
    for event in events:
        if event.kind.startswith(prefix) and key in event.attrs:
            groups.setdefault(event.attrs[key], []).append(event)
    return groups


def _rows(turn: TurnTimeline) -> list[_Row]:
    """The lanes of a turn: listening, one per LLM round, one per tool call, one per segment."""
    events = turn.events
    end = events[-1].t_ms if events else 0.0

    listening = _Row("listening")
    listening.events = [e for e in events if e.kind in ("user.speech_end", "stt.final")]
    speech_end, final = _first(events, "user.speech_end"), _first(events, "stt.final")
    listening.bar(0.0, speech_end, "listen")
    listening.bar(speech_end, final, "wait")
    listening.marks += [(e.t_ms, "|") for e in listening.events]
    listening.note = next((str(e.attrs["text"]) for e in listening.events if "text" in e.attrs), "")
    rows = [listening]

    for number, group in sorted(_grouped(events, "llm.", "round").items()):
        row = _Row(f"LLM r{number}", events=group)
        request, token = _first(group, "llm.request"), _first(group, "llm.first_token")
        done = _first(group, "llm.end")
        row.bar(
            request, token if token is not None else (done if done is not None else end), "wait"
        )
        row.bar(token, done if done is not None else end, "run")
        rows.append(row)

    calls = list(_grouped(events, "tool.", "call_id").values())
    for index, group in enumerate(calls or [[]]):
        row = _Row("tools" if index == 0 else "", note=str(group[0].attrs["name"]) if group else "")
        row.events = group
        ready, start, stop = (
            _first(group, k) for k in ("tool.args_ready", "tool.start", "tool.end")
        )
        row.bar(ready, start, "wait")
        row.bar(start, stop if stop is not None else end, "run")
        rows.append(row)

    segments = _grouped(events, "", "segment")
    for index, (number, group) in enumerate(segments.items() or [(None, [])]):
        row = _Row("speech" if index == 0 else "", events=group)
        row.note = next((str(e.attrs["text"]) for e in group if "text" in e.attrs), "")
        request, first = _first(group, "tts.request"), _first(group, "tts.first_audio")
        start, stop = _first(group, "audio.start"), _first(group, "audio.end")
        row.bar(request, first if first is not None else start, "wait")
        row.bar(first, start, "queue")
        row.bar(start, stop if stop is not None else end, "speak")
        row.marks += [(e.t_ms, "X") for e in group if e.kind == "barge_in"]
        if number is None:
            row.note = ""
        rows.append(row)
    return rows


def _step(span: float, slots: int) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving at most ``slots`` ticks."""
    raw = span / max(1, slots)
    power = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def summary(turn: TurnTimeline) -> str:
    m = turn.metrics()
    parts = [
        f"{turn.trigger} turn at {turn.start_ms:.1f} ms",
        f"first audio {_fmt(m['first_audio_ms'], ' ms')}",
        f"filler->answer gap {_fmt(m['filler_answer_gap_ms'], ' ms')}",
    ]
    if m["tool_hidden_ms"] is None:
        parts.append("tool time hidden n/a")
    else:
        parts.append(f"tool time hidden {m['tool_hidden_ms']:.1f} of {m['tool_time_ms']:.1f} ms")
    usage = m["usage"]
    if usage is None:
        parts.append("cached tokens n/a")
    else:
        ratio = m["cache_hit_ratio"]
        share = f" ({ratio:.0%})" if ratio is not None else ""
        estimate = ", estimated" if usage["estimated"] else ""
        parts.append(f"cached tokens {usage['cached']}/{usage['prompt']}{share}{estimate}")
    parts.append(f"total {_fmt(m['total_ms'], ' ms')}")
    return " | ".join(parts)


def lanes(turn: TurnTimeline, width: int = 100) -> str:
    if width < 40:
        raise ValueError(f"lanes need a width of at least 40 columns, got {width}")
    plot = width - _LABEL_WIDTH
    rows = _rows(turn)
    events = turn.events
    span = max(events[-1].t_ms if events else 0.0, 1.0)

    def col(t: float) -> int:
        return min(plot - 1, max(0, round(t / span * (plot - 1))))

    lines = []
    for row in rows:
        cells = [" "] * plot
        for bar in row.bars:
            for c in range(col(bar.t0), col(bar.t1) + 1):
                cells[c] = _GLYPHS[bar.style]
        for t, glyph in row.marks:
            cells[col(t)] = glyph
        used = [c for c, ch in enumerate(cells) if ch != " "]
        if row.note:
            # the note after the bars when it fits, else before them, clipped to the room left
            after = used[-1] + 2 if used else 0
            room_after, room_before = plot - after, (used[0] - 1 if used else 0)
            at, room = (
                (after, room_after) if room_after >= min(12, room_before) else (0, room_before)
            )
            if room >= 8:  # a shorter stub would say nothing
                text = _clip(row.note, room - 1)
                cells[at : at + len(text)] = text
        lines.append(row.label[: _LABEL_WIDTH - 1].ljust(_LABEL_WIDTH) + "".join(cells).rstrip())

    step = _step(span, plot // 9)
    ticks = [i * step for i in range(int(span // step) + 1)]
    axis, numbers = ["-"] * plot, [" "] * plot
    free = 0  # first column a new number may use
    for tick in ticks:
        c = col(tick)
        axis[c] = "+"
        label = f"{tick:g}"
        at = min(c, plot - len(label))
        if at >= free:
            numbers[at : at + len(label)] = label
            free = at + len(label) + 1
    lines.append("ms".ljust(_LABEL_WIDTH) + "".join(axis))
    lines.append(" " * _LABEL_WIDTH + "".join(numbers).rstrip())
    lines += textwrap.wrap(_LEGEND, width) + textwrap.wrap(summary(turn), width)
    return "\n".join(lines)


def _clip(text: str, room: int) -> str:
    text = " ".join(text.split())
    if room <= 0:
        return ""
    return text if len(text) <= room else text[: max(0, room - 3)] + "..."[:room]


# --- HTML ---

_CSS = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h2 { font-size: 16px; margin: 28px 0 6px; }
table.metrics { border-collapse: collapse; margin: 6px 0 10px; }
table.metrics td { padding: 2px 12px 2px 0; }
table.metrics td.v { font-variant-numeric: tabular-nums; font-weight: 600; }
svg { display: block; background: #fcfcfc; border: 1px solid #ddd; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
svg text.note { fill: #666; font-size: 11px; }
svg .grid { stroke: #e6e6e6; }
svg .guide { stroke: #b04; stroke-dasharray: 4 3; }
rect.listen { fill: #9bc4e2; } rect.wait { fill: #d8d8d8; } rect.queue { fill: #f1e3a6; }
rect.run { fill: #5b8def; } rect.speak { fill: #3aa76d; }
line.mark { stroke: #222; stroke-width: 2; } line.cut { stroke: #d22; stroke-width: 3; }
.legend span { display: inline-block; width: 12px; height: 10px; margin: 0 4px 0 12px; }
details { margin: 4px 0 12px; } td, th { text-align: left; }
"""

_ROW, _LEFT, _PLOT, _AXIS = 20, 120, 960, 30


def html(turns: Sequence[TurnTimeline]) -> str:
    span = max([t.events[-1].t_ms for t in turns if t.events] + [1.0])
    scale = _PLOT / span  # one scale for every turn, so turns compare by length
    legend = "".join(
        f'<span class="{s}" style="background: var(--{s})"></span>{_html.escape(name)}'
        for s, name in (
            ("listen", "user speaking"),
            ("wait", "waiting"),
            ("queue", "queued"),
            ("run", "running"),
            ("speak", "audio playing"),
        )
    )
    colours = ":root { --listen: #9bc4e2; --wait: #d8d8d8; --queue: #f1e3a6; "
    colours += "--run: #5b8def; --speak: #3aa76d; }"
    body = [_turn_html(index, turn, scale) for index, turn in enumerate(turns, 1)]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8"><title>voiceagent timeline</title>',
            f"<style>{colours}{_CSS}</style></head><body>",
            f"<h1>voiceagent timeline: {len(turns)} turn{'s' if len(turns) != 1 else ''}</h1>",
            f'<p class="legend">{legend}</p>',
            *body,
            "</body></html>",
        ]
    )


def _turn_html(index: int, turn: TurnTimeline, scale: float) -> str:
    esc = _html.escape
    rows = _rows(turn)
    events = turn.events
    length = events[-1].t_ms if events else 0.0
    height = len(rows) * _ROW + _AXIS
    width = _LEFT + max(_PLOT, length * scale) + 200

    def x(t: float) -> float:
        return round(_LEFT + t * scale, 1)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}">']
    step = _step(length or 1.0, 10)
    for i in range(int(length // step) + 1):
        t = i * step
        svg.append(f'<line class="grid" x1="{x(t)}" y1="0" x2="{x(t)}" y2="{height - _AXIS}"/>')
        svg.append(f'<text x="{x(t)}" y="{height - 10}" text-anchor="middle">{t:g}</text>')
    svg.append(f'<text x="{_LEFT - 8}" y="{height - 10}" text-anchor="end">ms</text>')
    for number, row in enumerate(rows):
        y = number * _ROW
        title = f"<title>{esc(row.title())}</title>"
        svg.append(f'<g><text x="6" y="{y + 14}">{esc(row.label)}</text>')
        for bar in row.bars:
            w = max(1.0, round((bar.t1 - bar.t0) * scale, 1))
            svg.append(
                f'<rect class="{bar.style}" x="{x(bar.t0)}" y="{y + 3}" width="{w}" '
                f'height="{_ROW - 6}" rx="2">{title}</rect>'
            )
        for t, glyph in row.marks:
            css = "cut" if glyph == "X" else "mark"
            svg.append(
                f'<line class="{css}" x1="{x(t)}" y1="{y + 2}" x2="{x(t)}" y2="{y + _ROW - 2}">'
                f"{title}</line>"
            )
        if row.note:
            right = max([x(b.t1) for b in row.bars] + [x(t) for t, _ in row.marks] + [_LEFT])
            svg.append(
                f'<text class="note" x="{right + 6}" y="{y + 14}">'
                f"{esc(_clip(row.note, 60))}{title}</text>"
            )
        svg.append("</g>")
    for kind, name in (("user.speech_end", "user stopped"), ("audio.start", "first audio")):
        guide = _first(events, kind)
        if guide is not None:
            svg.append(
                f'<line class="guide" x1="{x(guide)}" y1="0" x2="{x(guide)}" '
                f'y2="{height - _AXIS}"><title>{esc(name)} at {guide:.1f} ms</title></line>'
            )
    svg.append("</svg>")

    metrics = "".join(
        f"<tr><td>{esc(key)}</td><td class='v'>{esc(_metric(key, value))}</td></tr>"
        for key, value in turn.metrics().items()
    )
    listing = "".join(
        f"<tr><td>{e.t_ms:.1f}</td><td>{esc(e.kind)}</td>"
        f"<td>{esc(', '.join(f'{k}={v!r}' for k, v in e.attrs.items()))}</td></tr>"
        for e in events
    )
    return "\n".join(
        [
            f'<section id="turn-{index}">',
            f"<h2>Turn {index} ({esc(turn.trigger)}), at {turn.start_ms:.1f} ms "
            "on the session clock</h2>",
            f'<table class="metrics">{metrics}</table>',
            "".join(svg),
            f"<details><summary>{len(events)} events</summary><table>"
            f"<tr><th>t_ms</th><th>kind</th><th>attributes</th></tr>{listing}</table></details>",
            "</section>",
        ]
    )


def _metric(key: str, value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if key.endswith("_ms"):
        return f"{value:.1f} ms"
    if key == "cache_hit_ratio":
        return f"{value:.4f} ({value:.0%})"
    return str(value)
