"""Specifications of voiceagent.timeline: the turn timeline contract, its metrics, and pictures."""

from __future__ import annotations

import json
import os
import time
from enum import Enum
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voiceagent.timeline import EVENT_KINDS, SessionClock, Timeline, TurnTimeline
from voiceagent.timeline_render import html as render_html

CONTRACT_METRICS = {
    "first_audio_ms",
    "filler_answer_gap_ms",
    "tool_hidden_ms",
    "cache_hit_ratio",
    "usage",
}
VALID_ATTRS: dict[str, Any] = {
    "round": 1,
    "text": "hello",
    "name": "get_weather",
    "call_id": "call_1",
    "segment": 1,
    "reason": "done",
}


def new_turn(trigger: str = "user", start_ms: float = 0.0) -> TurnTimeline:
    return Timeline(SessionClock(origin=0.0)).start_turn(trigger, start_ms=start_ms)


def say(turn: TurnTimeline, segment: int, start: float, end: float, **extra: Any) -> None:
    """One segment played from ``start`` to ``end`` (turn ms with start_ms 0)."""
    text = f"segment {segment}"
    turn.mark("audio.start", at_ms=start, segment=segment, text=text, **extra)
    turn.mark("audio.end", at_ms=end, segment=segment, text=text, **extra)


def run_tool(turn: TurnTimeline, call_id: str, start: float, end: float, round: int = 1) -> None:
    turn.mark("tool.start", at_ms=start, name="lookup", call_id=call_id, round=round)
    turn.mark("tool.end", at_ms=end, name="lookup", call_id=call_id, round=round)


def tool_turn() -> TurnTimeline:
    """A realistic spoken tool turn: filler while the tool runs, answer queued behind it."""
    turn = new_turn(start_ms=3000.0)
    at = 3000.0
    turn.mark("user.speech_end", at_ms=at + 1400)
    turn.mark("stt.final", at_ms=at + 1500, text="Weather in <script>alert(1)</script> Paris?")
    turn.mark("llm.request", at_ms=at + 1510, round=1)
    turn.mark("llm.first_token", at_ms=at + 1700, round=1)
    turn.mark("tts.request", at_ms=at + 1750, segment=1, round=1)
    turn.mark("tool.args_ready", at_ms=at + 1800, name="get_weather", call_id="c1", round=1)
    turn.mark("tool.start", at_ms=at + 1801, name="get_weather", call_id="c1", round=1)
    turn.mark("llm.end", at_ms=at + 1850, round=1)
    turn.mark("tts.first_audio", at_ms=at + 1880, segment=1, round=1)
    say(turn, 1, at + 1900, at + 3500, round=1)
    turn.mark("tool.end", at_ms=at + 2600, name="get_weather", call_id="c1", round=1, ok=True)
    turn.mark("llm.request", at_ms=at + 2602, round=2)
    turn.mark("llm.first_token", at_ms=at + 2800, round=2)
    turn.mark("llm.end", at_ms=at + 3100, round=2)
    turn.mark("tts.request", at_ms=at + 2850, segment=2, round=2)
    turn.mark("tts.first_audio", at_ms=at + 3000, segment=2, round=2)
    say(turn, 2, at + 3500, at + 6000, round=2)
    turn.mark("turn.end", at_ms=at + 6000, reason="done")
    turn.add_usage(1300, 40, 1024)
    turn.add_usage(1400, 30, 1280)
    return turn


# --- the contract's shape ---


def test_a_turn_serialises_to_start_trigger_events_and_metrics() -> None:
    data = tool_turn().to_dict()
    assert list(data) == ["start_ms", "trigger", "events", "metrics"]
    assert data["start_ms"] == 3000.0
    assert data["trigger"] == "user"
    assert CONTRACT_METRICS <= set(data["metrics"])


def test_an_event_serialises_flat_with_t_ms_and_kind_first() -> None:
    turn = new_turn()
    turn.mark("llm.request", at_ms=12.5, round=1)
    assert turn.to_dict()["events"] == [{"t_ms": 12.5, "kind": "llm.request", "round": 1}]


def test_the_session_serialises_to_its_turns_in_order() -> None:
    timeline = Timeline(SessionClock(origin=0.0))
    timeline.start_turn("greeting", start_ms=0.0)
    timeline.start_turn("user", start_ms=5000.0)
    data = timeline.to_dict()
    assert list(data) == ["turns"]
    assert [(t["trigger"], t["start_ms"]) for t in data["turns"]] == [
        ("greeting", 0.0),
        ("user", 5000.0),
    ]


def test_events_are_sorted_by_t_ms_with_ties_in_marking_order() -> None:
    turn = new_turn()
    turn.mark("llm.end", at_ms=30.0, round=1)
    turn.mark("llm.request", at_ms=10.0, round=1)
    turn.mark("tool.start", at_ms=30.0, name="a", call_id="1", round=1)
    turn.mark("llm.first_token", at_ms=20.0, round=1)
    kinds = [event["kind"] for event in turn.to_dict()["events"]]
    assert kinds == ["llm.request", "llm.first_token", "llm.end", "tool.start"]


def test_t_ms_is_session_time_minus_turn_start_rounded_to_a_tenth() -> None:
    turn = new_turn(start_ms=1000.0)
    event = turn.mark("llm.request", at_ms=1012.345, round=1)
    assert event.t_ms == 12.3
    assert turn.mark("llm.end", at_ms=1012.36, round=1).t_ms == 12.4


def test_t_ms_is_never_negative() -> None:
    turn = new_turn(start_ms=1000.0)
    assert turn.mark("user.speech_end", at_ms=990.0).t_ms == 0.0


def test_start_ms_and_marks_default_to_now_on_the_session_clock() -> None:
    clock = SessionClock(origin=time.monotonic() - 5.0)
    turn = Timeline(clock).start_turn()
    assert 5000.0 <= turn.start_ms < 6000.0
    assert 0.0 <= turn.mark("llm.request", round=1).t_ms < 1000.0


def test_clock_converts_a_monotonic_reading_to_session_ms() -> None:
    clock = SessionClock(origin=100.0)
    assert clock.origin == 100.0
    assert clock.ms_at(101.5) == 1500.0


@pytest.mark.parametrize("trigger", ["user", "greeting", "reprompt"])
def test_each_trigger_is_recorded(trigger: str) -> None:
    assert new_turn(trigger).to_dict()["trigger"] == trigger


# --- validation ---


def test_an_unknown_trigger_is_refused() -> None:
    with pytest.raises(ValueError, match="trigger"):
        Timeline().start_turn("timer")


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        new_turn().mark("llm.start", round=1)


@pytest.mark.parametrize(
    ("kind", "attr"), [(kind, attr) for kind, attrs in EVENT_KINDS.items() for attr in attrs]
)
def test_every_required_attribute_is_enforced(kind: str, attr: str) -> None:
    attrs = {name: VALID_ATTRS[name] for name in EVENT_KINDS[kind] if name != attr}
    with pytest.raises(ValueError, match=attr):
        new_turn().mark(kind, at_ms=1.0, **attrs)


@pytest.mark.parametrize("kind", sorted(EVENT_KINDS))
def test_every_kind_is_accepted_with_its_attributes(kind: str) -> None:
    attrs = {name: VALID_ATTRS[name] for name in EVENT_KINDS[kind]}
    assert new_turn().mark(kind, at_ms=1.0, **attrs).kind == kind


@pytest.mark.parametrize("bad", [{"round": "1"}, {"round": True}, {"round": 1.0}])
def test_a_required_attribute_of_the_wrong_type_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="round"):
        new_turn().mark("llm.request", **bad)


def test_a_contract_attribute_has_its_type_on_every_kind() -> None:
    with pytest.raises(ValueError, match="round"):
        new_turn().mark("audio.start", segment=1, text="hi", round="2")


def test_rounds_count_from_one() -> None:
    with pytest.raises(ValueError, match="round"):
        new_turn().mark("llm.request", round=0)


def test_extra_attributes_are_kept_and_enums_become_their_values() -> None:
    class State(str, Enum):
        DONE = "done"

    turn = new_turn()
    turn.mark("tool.end", at_ms=5.0, name="a", call_id="1", round=1, ok=True, state=State.DONE)
    event = turn.to_dict()["events"][0]
    assert event["ok"] is True
    assert event["state"] == "done" and type(event["state"]) is str


def test_an_attribute_json_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="JSON"):
        new_turn().mark("turn.end", reason="done", detail=object())


def test_an_attribute_named_like_the_events_own_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="t_ms"):
        new_turn().mark("turn.end", reason="done", t_ms=3.0)


def test_a_segment_starts_playing_only_once() -> None:
    turn = new_turn()
    turn.mark("audio.start", at_ms=1.0, segment=1, text="a")
    with pytest.raises(ValueError, match="segment 1"):
        turn.mark("audio.start", at_ms=2.0, segment=1, text="a")


def test_negative_token_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        new_turn().add_usage(prompt=10, completion=-1, cached=0)


# --- first_audio_ms ---


def test_first_audio_counts_from_the_end_of_the_users_speech() -> None:
    turn = new_turn()
    turn.mark("user.speech_end", at_ms=1000.0)
    say(turn, 1, 1450.0, 2000.0)
    say(turn, 2, 2000.0, 2500.0)
    assert turn.metrics()["first_audio_ms"] == 450.0


def test_first_audio_counts_from_t0_for_text_input() -> None:
    turn = new_turn(start_ms=100.0)
    say(turn, 1, 420.0, 900.0)
    assert turn.metrics()["first_audio_ms"] == 320.0


def test_first_audio_is_null_when_nothing_played() -> None:
    turn = new_turn()
    turn.mark("llm.request", at_ms=1.0, round=1)
    assert turn.metrics()["first_audio_ms"] is None


# --- filler_answer_gap_ms ---


def test_gap_is_the_silence_between_filler_and_the_follow_ups_first_audio() -> None:
    turn = new_turn()
    say(turn, 1, 100.0, 900.0, round=1)
    turn.mark("llm.request", at_ms=600.0, round=2)
    say(turn, 2, 1150.0, 2000.0, round=2)
    assert turn.metrics()["filler_answer_gap_ms"] == 250.0


def test_gap_is_zero_when_the_answer_is_queued_behind_the_filler() -> None:
    turn = new_turn()
    say(turn, 1, 100.0, 900.0, round=1)
    turn.mark("llm.request", at_ms=600.0, round=2)
    say(turn, 2, 900.0, 2000.0, round=2)
    assert turn.metrics()["filler_answer_gap_ms"] == 0.0


def test_gap_finds_the_follow_up_by_the_audio_round_not_by_time() -> None:
    # a second filler sentence starts after the follow-up request; it is still round 1
    turn = new_turn()
    say(turn, 1, 100.0, 500.0, round=1)
    turn.mark("llm.request", at_ms=450.0, round=2)
    say(turn, 2, 500.0, 800.0, round=1)
    say(turn, 3, 1100.0, 1500.0, round=2)
    assert turn.metrics()["filler_answer_gap_ms"] == 300.0


def test_gap_without_audio_rounds_takes_the_first_audio_after_the_follow_up_request() -> None:
    turn = new_turn()
    say(turn, 1, 100.0, 500.0)
    turn.mark("llm.request", at_ms=450.0, round=2)
    say(turn, 2, 700.0, 800.0)
    assert turn.metrics()["filler_answer_gap_ms"] == 200.0


def test_gap_measures_from_the_latest_audio_end_before_the_answer() -> None:
    turn = new_turn()
    say(turn, 1, 100.0, 300.0, round=1)
    say(turn, 2, 350.0, 600.0, round=1)
    turn.mark("llm.request", at_ms=400.0, round=2)
    say(turn, 3, 700.0, 900.0, round=2)
    assert turn.metrics()["filler_answer_gap_ms"] == 100.0


def test_gap_reports_the_largest_of_several_follow_ups() -> None:
    turn = new_turn()
    say(turn, 1, 0.0, 100.0, round=1)
    turn.mark("llm.request", at_ms=50.0, round=2)
    say(turn, 2, 130.0, 300.0, round=2)
    turn.mark("llm.request", at_ms=250.0, round=3)
    say(turn, 3, 700.0, 900.0, round=3)
    assert turn.metrics()["filler_answer_gap_ms"] == 400.0


def test_gap_is_zero_when_other_speech_was_still_playing() -> None:
    turn = new_turn()
    say(turn, 1, 0.0, 100.0, round=1)
    say(turn, 2, 150.0, 900.0, round=1)
    turn.mark("llm.request", at_ms=120.0, round=2)
    say(turn, 3, 500.0, 1000.0, round=2)
    assert turn.metrics()["filler_answer_gap_ms"] == 0.0


def test_gap_is_null_without_a_follow_up_round() -> None:
    turn = new_turn()
    turn.mark("llm.request", at_ms=0.0, round=1)
    say(turn, 1, 100.0, 300.0, round=1)
    say(turn, 2, 500.0, 700.0, round=1)
    assert turn.metrics()["filler_answer_gap_ms"] is None


def test_gap_is_null_when_the_follow_up_produced_no_audio() -> None:
    turn = new_turn()
    say(turn, 1, 100.0, 300.0, round=1)
    turn.mark("llm.request", at_ms=200.0, round=2)
    turn.mark("barge_in", at_ms=250.0, segment=1)
    assert turn.metrics()["filler_answer_gap_ms"] is None


def test_gap_is_null_when_no_audio_played_before_the_answer() -> None:
    turn = new_turn()
    turn.mark("llm.request", at_ms=200.0, round=2)
    say(turn, 1, 600.0, 900.0, round=2)
    assert turn.metrics()["filler_answer_gap_ms"] is None


# --- tool_hidden_ms ---


def test_tool_hidden_is_the_tool_time_under_speech() -> None:
    turn = new_turn()
    run_tool(turn, "c1", 100.0, 900.0)
    say(turn, 1, 300.0, 1200.0)
    assert turn.metrics()["tool_hidden_ms"] == 600.0
    assert turn.metrics()["tool_time_ms"] == 800.0


def test_tool_hidden_counts_overlapping_tools_once() -> None:
    turn = new_turn()
    run_tool(turn, "c1", 100.0, 600.0)
    run_tool(turn, "c2", 400.0, 900.0)
    say(turn, 1, 0.0, 2000.0)
    assert turn.metrics()["tool_hidden_ms"] == 800.0


def test_tool_hidden_counts_overlapping_speech_once() -> None:
    turn = new_turn()
    run_tool(turn, "c1", 0.0, 1000.0)
    say(turn, 1, 100.0, 500.0)
    say(turn, 2, 300.0, 700.0)
    say(turn, 3, 900.0, 1500.0)
    assert turn.metrics()["tool_hidden_ms"] == 700.0


def test_tool_hidden_is_zero_when_tools_ran_in_silence() -> None:
    turn = new_turn()
    run_tool(turn, "c1", 100.0, 300.0)
    say(turn, 1, 300.0, 500.0)
    assert turn.metrics()["tool_hidden_ms"] == 0.0


def test_tool_hidden_is_null_when_no_tool_ran() -> None:
    turn = new_turn()
    say(turn, 1, 0.0, 500.0)
    assert turn.metrics()["tool_hidden_ms"] is None


def test_a_tool_still_running_counts_until_the_turns_last_event() -> None:
    turn = new_turn()
    turn.mark("tool.start", at_ms=100.0, name="a", call_id="c1", round=1)
    say(turn, 1, 0.0, 400.0)
    turn.mark("turn.end", at_ms=500.0, reason="barge_in")
    assert turn.metrics()["tool_time_ms"] == 400.0
    assert turn.metrics()["tool_hidden_ms"] == 300.0


# --- tokens ---


def test_cache_hit_ratio_is_cached_over_prompt_tokens_of_all_requests() -> None:
    turn = new_turn()
    turn.add_usage(prompt=1000, completion=50, cached=800)
    turn.add_usage(prompt=1000, completion=20, cached=400)
    assert turn.metrics()["cache_hit_ratio"] == pytest.approx(0.6)


def test_cache_hit_ratio_is_null_without_usage_or_prompt_tokens() -> None:
    assert new_turn().metrics()["cache_hit_ratio"] is None
    turn = new_turn()
    turn.add_usage(prompt=0, completion=0, cached=0)
    assert turn.metrics()["cache_hit_ratio"] is None


def test_usage_sums_requests_and_is_estimated_if_any_request_was() -> None:
    turn = new_turn()
    turn.add_usage(1000, 50, 800)
    turn.add_usage(1200, 20, 900, estimated=True)
    assert turn.metrics()["usage"] == {
        "prompt": 2200,
        "completion": 70,
        "cached": 1700,
        "estimated": True,
    }


def test_usage_is_null_without_requests() -> None:
    assert new_turn().metrics()["usage"] is None


# --- extras ---


def test_extra_metrics_show_where_latency_remains() -> None:
    metrics = tool_turn().metrics()
    assert metrics["tool_start_after_args_ms"] == 1.0
    assert metrics["followup_after_tools_ms"] == 2.0
    assert metrics["total_ms"] == 6000.0


# --- files ---


def test_write_json_reloads_equal_to_the_timeline(tmp_path: Path) -> None:
    timeline = Timeline(SessionClock(origin=0.0))
    timeline.turns.append(tool_turn())
    path = tmp_path / "timeline.json"
    timeline.write_json(path)
    assert json.loads(path.read_text(encoding="utf-8")) == timeline.to_dict()


def test_write_json_rewrites_the_whole_file_after_each_turn(tmp_path: Path) -> None:
    timeline = Timeline(SessionClock(origin=0.0))
    path = tmp_path / "timeline.json"
    path.write_text("x" * 10_000, encoding="utf-8")
    timeline.start_turn(start_ms=0.0)
    timeline.write_json(path)
    timeline.start_turn(start_ms=10.0)
    timeline.write_json(path)
    assert len(json.loads(path.read_text(encoding="utf-8"))["turns"]) == 2
    assert os.listdir(tmp_path) == ["timeline.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "timeline.json"
    path.write_text("old", encoding="utf-8")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        Timeline().write_json(path)
    assert path.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["timeline.json"]


class StrictParser(HTMLParser):
    """Fails on unbalanced tags, the errors html.parser itself lets through."""

    VOID = frozenset({"meta", "br", "img", "input", "link", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text += data


def parsed(timeline: Timeline, tmp_path: Path) -> tuple[str, StrictParser]:
    path = tmp_path / "timeline.html"
    timeline.write_html(path)
    page = path.read_text(encoding="utf-8")
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    return page, parser


def test_html_is_well_formed_with_one_svg_per_turn(tmp_path: Path) -> None:
    timeline = Timeline(SessionClock(origin=0.0))
    timeline.turns += [new_turn("greeting"), tool_turn(), new_turn("reprompt", 9000.0)]
    _, parser = parsed(timeline, tmp_path)
    assert parser.tags.count("svg") == 3
    assert "title" in parser.tags


def test_html_escapes_text_and_loads_nothing(tmp_path: Path) -> None:
    timeline = Timeline(SessionClock(origin=0.0))
    timeline.turns.append(tool_turn())
    page, parser = parsed(timeline, tmp_path)
    assert "script" not in parser.tags
    assert "<script>" in parser.text  # shown as text, not run
    assert "src=" not in page and "<link" not in page


def test_html_shows_each_turns_metrics(tmp_path: Path) -> None:
    timeline = Timeline(SessionClock(origin=0.0))
    timeline.turns.append(tool_turn())
    _, parser = parsed(timeline, tmp_path)
    for name in CONTRACT_METRICS:
        assert name in parser.text


# --- terminal ---


@pytest.mark.parametrize("width", [40, 80, 100, 160])
def test_lanes_show_every_lane_within_the_width(width: int) -> None:
    view = tool_turn().lanes(width)
    labels = [line[:10].strip() for line in view.splitlines()]
    for label in ("listening", "LLM r1", "LLM r2", "tools", "speech", "ms"):
        assert label in labels
    assert max(len(line) for line in view.splitlines()) <= width


def test_lanes_of_an_empty_turn_still_show_the_lanes() -> None:
    view = new_turn().lanes()
    assert all(label in view for label in ("listening", "tools", "speech"))


def test_lanes_refuse_a_width_too_narrow_to_draw() -> None:
    with pytest.raises(ValueError, match="width"):
        new_turn().lanes(20)


def test_summary_is_one_line_of_key_figures() -> None:
    line = tool_turn().summary()
    assert "\n" not in line
    assert "first audio 500.0 ms" in line
    assert "gap 0.0 ms" in line
    assert "tool time hidden 700.0 of 799.0 ms" in line
    assert "cached tokens 2304/2700" in line


# --- properties ---

times = st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False)


@st.composite
def random_turns(draw: st.DrawFn) -> TurnTimeline:
    turn = new_turn()
    if draw(st.booleans()):
        turn.mark("user.speech_end", at_ms=draw(times))
    for number in range(1, draw(st.integers(0, 4)) + 1):
        turn.mark("llm.request", at_ms=draw(times), round=number)
    for index in range(draw(st.integers(0, 4))):
        call = {"name": "t", "call_id": f"c{index}", "round": draw(st.integers(1, 3))}
        start = draw(times)
        turn.mark("tool.start", at_ms=start, **call)
        if draw(st.booleans()):
            turn.mark("tool.end", at_ms=start + draw(times), **call)
    for segment in range(draw(st.integers(0, 5))):
        extra = {"round": draw(st.integers(1, 4))} if draw(st.booleans()) else {}
        start = draw(times)
        turn.mark("audio.start", at_ms=start, segment=segment, text="x", **extra)
        if draw(st.booleans()):
            turn.mark("audio.end", at_ms=start + draw(times), segment=segment, text="x", **extra)
    for _ in range(draw(st.integers(0, 3))):
        prompt = draw(st.integers(0, 5000))
        turn.add_usage(prompt, draw(st.integers(0, 500)), draw(st.integers(0, prompt)))
    return turn


def tool_union(turn: TurnTimeline) -> float:
    """Length of the union of tool run time, by an independent sweep over the endpoints."""
    events = turn.events
    last = events[-1].t_ms
    starts = {e.attrs["call_id"]: e.t_ms for e in events if e.kind == "tool.start"}
    ends = {e.attrs["call_id"]: e.t_ms for e in events if e.kind == "tool.end"}
    edges = sorted([(t, 1) for t in starts.values()] + [(ends.get(c, last), -1) for c in starts])
    total, running, previous = 0.0, 0, 0.0
    for t, step in edges:
        if running > 0:
            total += t - previous
        running, previous = running + step, t
    return total


@settings(max_examples=150, deadline=None)
@given(random_turns())
def test_metrics_are_never_negative_and_hidden_tool_time_fits_in_tool_time(
    turn: TurnTimeline,
) -> None:
    metrics = turn.metrics()
    for key, value in metrics.items():
        if isinstance(value, float):
            assert value >= 0.0, key
    ratio = metrics["cache_hit_ratio"]
    assert ratio is None or 0.0 <= ratio <= 1.0
    if metrics["tool_hidden_ms"] is not None:
        union = tool_union(turn)
        assert metrics["tool_time_ms"] == pytest.approx(union, abs=0.05)
        assert metrics["tool_hidden_ms"] <= union + 0.05


@settings(max_examples=50, deadline=None)
@given(random_turns())
def test_any_turn_renders(turn: TurnTimeline) -> None:
    assert max(len(line) for line in turn.lanes(60).splitlines()) <= 60
    timeline = Timeline(SessionClock(origin=0.0))
    timeline.turns.append(turn)
    parser = StrictParser()
    parser.feed(render_html(timeline.turns))
    assert parser.stack == []


def test_a_listener_sees_every_event_as_it_is_marked() -> None:
    seen: list[tuple[float, str]] = []
    timeline = Timeline(
        SessionClock(), on_event=lambda turn, e: seen.append((turn.start_ms, e.kind))
    )
    turn = timeline.start_turn(start_ms=5.0)
    turn.mark("llm.request", round=1, at_ms=6.0)
    turn.mark("turn.end", reason="completed", at_ms=7.0)
    assert seen == [(5.0, "llm.request"), (5.0, "turn.end")]
