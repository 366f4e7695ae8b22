"""The simulator's replies: scripted rounds and the rule-based demo brain."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voiceagent.testing.electron import ElectronServer, Script, ScriptError
from voiceagent.testing.electron.brain import think


def function_tool(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
            },
        },
    }


WEATHER = function_tool("get_weather", "Current weather for a city.", {"city": {"type": "string"}})
TIME = function_tool("get_time", "Current local time in a timezone.", {"tz": {"type": "string"}})
CALCULATE = function_tool(
    "calculate", "Evaluate an arithmetic expression.", {"expression": {"type": "string"}}
)
CALCULATOR = function_tool(
    "calculator",
    "Do arithmetic on two numbers.",
    {
        "a": {"type": "number"},
        "b": {"type": "number"},
        "operation": {"type": "string", "enum": ["add", "subtract", "multiply", "divide"]},
    },
)
ALL_TOOLS = [WEATHER, TIME, CALCULATE, CALCULATOR]


def user(text: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a voice agent."},
        {"role": "user", "content": text},
    ]


def calls_of(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(call.name, call.arguments) for call in reply.tool_calls]


def test_weather_question_speaks_a_filler_then_calls_the_weather_tool() -> None:
    reply = think(user("What's the weather in Paris?"), ALL_TOOLS)
    assert reply.text == "Let me check the weather for you."
    assert calls_of(reply) == [("get_weather", {"city": "Paris"})]


def test_two_places_make_parallel_calls() -> None:
    reply = think(user("What's the weather in Paris and in London today?"), [WEATHER])
    assert calls_of(reply) == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "London"}),
    ]


def test_time_question_fills_the_first_required_string_with_the_place() -> None:
    reply = think(user("what time is it in tokyo"), ALL_TOOLS)
    assert calls_of(reply) == [("get_time", {"tz": "Tokyo"})]


def test_arithmetic_fills_an_expression_parameter() -> None:
    reply = think(user("What is 12 times 7?"), [CALCULATE, WEATHER])
    assert calls_of(reply) == [("calculate", {"expression": "12 * 7"})]


def test_arithmetic_fills_numbers_and_an_enum_operation() -> None:
    reply = think(user("what is 12 divided by 4"), [CALCULATOR])
    assert calls_of(reply) == [("calculator", {"a": 12, "b": 4, "operation": "divide"})]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("what is 12 times 7", "12 times 7 is 84."),
        ("what is 2 plus 3", "2 plus 3 is 5."),
        ("what's 10 minus 15", "10 minus 15 is -5."),
        ("what is 10 divided by 4", "10 divided by 4 is 2.5."),
    ],
)
def test_arithmetic_without_a_tool_is_answered_directly(question: str, answer: str) -> None:
    reply = think(user(question), None)
    assert reply.text == answer and not reply.tool_calls


def test_time_without_a_tool_is_read_from_the_server_clock() -> None:
    reply = think(user("What time is it?"), None, clock=lambda: datetime(2025, 1, 1, 15, 4))
    assert reply.text == "It's 3:04 PM."


def test_weather_without_a_weather_tool_never_calls_another_tool() -> None:
    reply = think(user("What's the weather in Rome?"), [TIME, CALCULATE])
    assert not reply.tool_calls
    assert reply.text and "weather" in reply.text


def test_unknown_requests_get_a_brief_polite_reply() -> None:
    reply = think(user("Tell me a joke about penguins"), ALL_TOOLS)
    assert not reply.tool_calls
    assert reply.text and reply.text.startswith("Sorry")


def test_tool_choice_none_answers_without_tools() -> None:
    reply = think(user("What is 6 times 7?"), ALL_TOOLS, "none")
    assert not reply.tool_calls and reply.text == "6 times 7 is 42."


def test_tool_choice_required_calls_a_tool_even_without_an_intent() -> None:
    reply = think(user("hello"), [WEATHER], "required")
    assert [name for name, _ in calls_of(reply)] == ["get_weather"]


def test_tool_choice_naming_a_function_calls_that_function() -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    reply = think(user("What's the weather in Oslo?"), ALL_TOOLS, choice)
    assert [name for name, _ in calls_of(reply)] == ["get_time"]


def test_tool_results_are_answered_in_short_spoken_sentences() -> None:
    messages = [
        *user("What's the weather in Paris?"),
        {
            "role": "assistant",
            "content": "Let me check the weather for you.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": json.dumps({"city": "Paris", "temperature": 18, "conditions": "Sunny"}),
        },
    ]
    reply = think(messages, [WEATHER])
    assert reply.text == "It's 18 degrees and sunny in Paris."
    assert not reply.tool_calls


def test_a_tool_error_is_reported_politely() -> None:
    messages = [
        *user("weather in Atlantis"),
        {"role": "tool", "tool_call_id": "c1", "content": '{"error": "unknown city"}'},
    ]
    assert think(messages, [WEATHER]).text == "Sorry, I couldn't get that: unknown city."


def test_replies_are_deterministic() -> None:
    messages = user("What's the weather in Paris?")
    assert think(messages, ALL_TOOLS) == think(messages, ALL_TOOLS)


TOOL_NAMES = ["get_weather", "get_time", "calculate", "lookup_order", "send_email"]
TEXTS = [
    "What's the weather in Paris?",
    "what time is it in Tokyo",
    "what is 3 plus 4",
    "hello",
    "book me a table",
]


@given(
    st.lists(st.sampled_from(TOOL_NAMES), unique=True, max_size=4),
    st.sampled_from(TEXTS),
    st.sampled_from([None, "auto", "none", "required"]),
)
def test_never_calls_a_tool_that_was_not_offered(
    names: list[str], text: str, tool_choice: str | None
) -> None:
    tools = [function_tool(n, f"{n.replace('_', ' ')}.", {"q": {"type": "string"}}) for n in names]
    reply = think(user(text), tools or None, tool_choice)
    assert {call.name for call in reply.tool_calls} <= set(names)
    if tool_choice == "none":
        assert not reply.tool_calls
    if tool_choice == "required" and names:
        assert reply.tool_calls


# -- scripted replies -------------------------------------------------------------------


def client_for(server: ElectronServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


SCRIPT = [
    {
        "text": "Let me look.",
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
    },
    {"text": "It's cold in Oslo."},
]


def assistant_turns(n: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
    for i in range(n):
        messages += [
            {"role": "assistant", "content": f"turn {i}"},
            {"role": "user", "content": "ok"},
        ]
    return messages


def test_script_round_is_the_number_of_assistant_messages() -> None:
    script = Script.from_data(SCRIPT)
    assert script.round_for(assistant_turns(0)) == script.rounds[0]
    assert script.round_for(assistant_turns(1)) == script.rounds[1]
    assert script.round_for(assistant_turns(2)) is None


def test_script_loads_from_a_file_and_rejects_bad_shapes(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"rounds": SCRIPT}))
    assert len(Script.from_file(path)) == 2
    with pytest.raises(ScriptError):
        Script.from_data([{"tool_calls": [{"arguments": {}}]}])
    with pytest.raises(ScriptError):
        Script.from_data({"text": "not a list"})


async def test_concurrent_sessions_each_walk_their_own_script() -> None:
    async with AsyncExitStack() as stack, ElectronServer(script=SCRIPT) as server:
        client = await stack.enter_async_context(client_for(server))
        texts: dict[tuple[int, int], str | None] = {}

        async def session(sid: int) -> None:
            for turn in (0, 1):
                reply = await client.chat.completions.create(
                    model="electron",
                    messages=assistant_turns(turn),
                )
                texts[(sid, turn)] = reply.choices[0].message.content

        async with anyio.create_task_group() as tg:
            for sid in range(5):
                tg.start_soon(session, sid)
    assert {texts[(s, 0)] for s in range(5)} == {"Let me look."}
    assert {texts[(s, 1)] for s in range(5)} == {"It's cold in Oslo."}


async def test_beyond_the_script_the_brain_answers() -> None:
    async with AsyncExitStack() as stack, ElectronServer(script=SCRIPT[:1]) as server:
        client = await stack.enter_async_context(client_for(server))
        messages = [*assistant_turns(1)[:-1], {"role": "user", "content": "what is 2 plus 2"}]
        reply = await client.chat.completions.create(model="electron", messages=messages)
    assert reply.choices[0].message.content == "2 plus 2 is 4."


async def test_script_finish_reason_override_is_streamed() -> None:
    async with (
        AsyncExitStack() as stack,
        ElectronServer(script=[{"text": "Cut short", "finish_reason": "length"}]) as server,
    ):
        client = await stack.enter_async_context(client_for(server))
        reply = await client.chat.completions.create(model="electron", messages=assistant_turns(0))
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "Cut short"


def test_arithmetic_in_spoken_number_words_is_understood() -> None:
    from voiceagent.testing.electron.intents import detect_intent

    intent = detect_intent("What is twelve times seven?")
    assert intent is not None and intent.result == 84
    mixed = detect_intent("what is 12 times seven")
    assert mixed is not None and mixed.result == 84
    assert detect_intent("someone is here") is None
