"""The turn engine: content spoken at once, each tool started mid-stream, the follow-up sent
the moment the tools finish, bounded rounds, and what was heard committed to history."""

from __future__ import annotations

import json

import anyio
import pytest
from turn_rig import events, longest_silence_ms, turn_rig

from voiceagent.history import validate_messages
from voiceagent.toolkit import tool
from voiceagent.turn import APOLOGY, FollowUp

FILLER = "Let me check the weather for you."
ANSWER = "It is 18 degrees and sunny in Paris."
WEATHER_TURN = [
    {
        "text": FILLER,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "fragments": 4}],
    },
    {"text": ANSWER},
]


def weather_tool(seconds: float = 0.2, calls: list[str] | None = None) -> object:
    @tool
    async def get_weather(city: str) -> dict[str, object]:
        """Current weather for a city."""
        if calls is not None:
            calls.append(city)
        await anyio.sleep(seconds)
        return {"city": city, "temperature_c": 18, "conditions": "sunny"}

    return get_weather


async def test_content_is_spoken_and_committed_to_history() -> None:
    async with turn_rig([{"text": "Hello there. How can I help you today?"}]) as rig:
        result = await rig.engine.run("Hi!")
    assert result.reason == "completed"
    assert result.heard == "Hello there. How can I help you today?"
    messages = rig.history.messages()
    validate_messages(messages)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"] == result.heard
    turn = result.timeline
    assert events(turn, "llm.first_token")[0] <= events(turn, "audio.start")[0]
    assert len(events(turn, "audio.start")) == len(events(turn, "audio.end")) >= 1


async def test_the_first_phrase_is_synthesised_before_the_stream_ends() -> None:
    reply = "Sure, I can help with that, and here is a much longer second part of the answer."
    async with turn_rig([{"text": reply}], token_ms=20) as rig:
        result = await rig.engine.run("Help me.")
    turn = result.timeline
    assert events(turn, "tts.request")[0] < events(turn, "llm.end", round=1)[0]


async def test_the_tool_starts_before_the_llm_stream_ends() -> None:
    async with turn_rig(WEATHER_TURN, tools=[weather_tool()], token_ms=20) as rig:
        result = await rig.engine.run("What's the weather in Paris?")
    turn = result.timeline
    (ready,) = events(turn, "tool.args_ready", name="get_weather")
    (started,) = events(turn, "tool.start", name="get_weather")
    (stream_end,) = events(turn, "llm.end", round=1)
    assert ready <= started < stream_end
    assert result.heard == f"{FILLER} {ANSWER}"


async def test_the_follow_up_is_sent_before_the_filler_finishes_playing() -> None:
    async with turn_rig(WEATHER_TURN, tools=[weather_tool()], ms_per_char=60) as rig:
        result = await rig.engine.run("What's the weather in Paris?")
    turn = result.timeline
    filler_end = events(turn, "audio.end", round=1)[-1]
    follow_up = rig.server.requests[1]
    assert follow_up.body["messages"][-1]["role"] == "tool"
    assert follow_up.received_at < rig.monotonic(turn, filler_end)
    assert events(turn, "llm.request", round=2)[0] < filler_end


async def test_the_answer_follows_the_filler_without_a_gap_in_the_recording() -> None:
    async with turn_rig(WEATHER_TURN, tools=[weather_tool(0.2)], ms_per_char=60) as rig:
        result = await rig.engine.run("What's the weather in Paris?")
    turn = result.timeline
    first = turn.start_ms + events(turn, "audio.start")[0]
    last = turn.start_ms + events(turn, "audio.end")[-1]
    assert longest_silence_ms(rig.speaker.samples, first, last) < 5.0
    assert turn.metrics()["filler_answer_gap_ms"] == 0.0


async def test_the_baseline_waits_for_playback_and_leaves_silence() -> None:
    async with turn_rig(
        WEATHER_TURN,
        tools=[weather_tool(0.2)],
        follow_up=FollowUp.AFTER_PLAYBACK,
        ttft_ms=100,
        ms_per_char=30,
    ) as rig:
        result = await rig.engine.run("What's the weather in Paris?")
    turn = result.timeline
    filler_end = events(turn, "audio.end", round=1)[-1]
    assert rig.server.requests[1].received_at > rig.monotonic(turn, filler_end)
    answer_start = events(turn, "audio.start", round=2)[0]
    silence = longest_silence_ms(
        rig.speaker.samples, turn.start_ms + filler_end, turn.start_ms + answer_start + 1
    )
    assert silence >= 100.0  # at least the follow-up's time to first token


async def test_the_filler_of_a_tool_is_spoken_when_the_model_says_nothing() -> None:
    @tool(filler="One moment, checking.", filler_delay=0.05)
    async def lookup(item: str) -> str:
        """Look an item up."""
        await anyio.sleep(0.3)
        return f"{item} is in stock"

    script = [
        {"tool_calls": [{"name": "lookup", "arguments": {"item": "tea"}}]},
        {"text": "Tea is in stock."},
    ]
    async with turn_rig(script, tools=[lookup]) as rig:
        result = await rig.engine.run("Do you have tea?")
    assert result.heard == "One moment, checking. Tea is in stock."
    assert rig.tts.requests[0] == "One moment, checking."


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({"name": "no_such_tool", "arguments": {}}, "unknown tool"),
        ({"name": "get_weather", "arguments": '{"city": "Par'}, "not valid JSON"),
        ({"name": "get_weather", "arguments": {"city": 42}}, "invalid arguments"),
        ({"name": "explode", "arguments": {}}, "RuntimeError"),
        ({"name": "stall", "arguments": {}}, "timed out"),
    ],
    ids=["unknown", "bad-json", "wrong-type", "raises", "timeout"],
)
async def test_a_bad_tool_call_becomes_a_tool_message_and_a_spoken_answer(
    call: dict[str, object], error: str
) -> None:
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("the database is down")

    @tool(timeout=0.05)
    async def stall() -> str:
        """Never answers in time."""
        await anyio.sleep(10)
        return "late"

    script = [{"tool_calls": [call]}, {"text": "Sorry, I could not do that."}]
    async with turn_rig(script, tools=[weather_tool(0.0), explode, stall]) as rig:
        result = await rig.engine.run("Do it.")
    messages = rig.history.messages()
    validate_messages(messages)
    (tool_message,) = [m for m in messages if m["role"] == "tool"]
    assert error in json.loads(tool_message["content"])["error"]
    assert result.heard == "Sorry, I could not do that."
    assert result.reason == "completed"


async def test_the_extra_round_is_sent_with_tool_choice_none() -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    script = [
        {"tool_calls": [call]},
        {"text": "Here is what I found.", "tool_calls": [call]},
    ]
    ran: list[str] = []
    async with turn_rig(script, tools=[weather_tool(0.0, ran)], max_tool_rounds=1) as rig:
        result = await rig.engine.run("Weather?")
    requests = [r.body for r in rig.server.requests]
    assert len(requests) == 2
    assert "tool_choice" not in requests[0]
    assert requests[1]["tool_choice"] == "none"
    assert ran == ["Paris"]  # the call made against tool_choice="none" never ran
    assert result.heard == "Here is what I found."
    validate_messages(rig.history.messages())


async def test_the_turn_apologises_when_retries_run_out() -> None:
    async with turn_rig([{"text": "Never heard."}]) as rig:
        rig.server.faults.fail_next(5, status=503)
        result = await rig.engine.run("Hello?")
    assert result.reason == "error"
    assert result.heard == APOLOGY
    validate_messages(rig.history.messages())


async def test_tool_calls_run_side_by_side_and_answers_keep_call_order() -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Rome"}},
    ]
    script = [{"text": FILLER, "tool_calls": calls}, {"text": "Both are sunny."}]
    async with turn_rig(script, tools=[weather_tool(0.2)]) as rig:
        result = await rig.engine.run("Weather in Paris and Rome?")
    turn = result.timeline
    starts = events(turn, "tool.start")
    ends = events(turn, "tool.end")
    assert max(starts) < min(ends)  # both ran at once
    follow_up = rig.server.requests[1].body["messages"]
    ids = [c["id"] for c in follow_up[-3]["tool_calls"]]
    assert [m["tool_call_id"] for m in follow_up[-2:]] == ids


async def test_history_stays_valid_and_cached_across_turns() -> None:
    script = [
        {"text": FILLER, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": ANSWER},
        {"text": "You are welcome."},
        {"text": "Goodbye."},
    ]
    async with turn_rig(script, tools=[weather_tool(0.0)]) as rig:
        ratios = []
        for text in ["Weather in Paris?", "Thanks!", "Bye."]:
            result = await rig.engine.run(text)
            validate_messages(rig.history.messages())
            ratios.append(result.timeline.metrics()["cache_hit_ratio"])
    assert [m["role"] for m in rig.history.messages()].count("user") == 3
    assert ratios[0] > 0  # the follow-up shares the first request's prefix
    assert min(ratios[1:]) > 0.5  # later turns keep the whole earlier conversation cached
