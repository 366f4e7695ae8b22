"""Script features the turn-engine tests rely on: raw argument text, a fragment count, and
content after the tool calls."""

from __future__ import annotations

import openai
import pytest

from voiceagent.testing.electron import ElectronServer, ScriptError
from voiceagent.testing.electron.reply import ContentDelta, ToolCallStart, render
from voiceagent.testing.electron.script import Script

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]


async def argument_fragments(script: list[dict[str, object]]) -> list[str]:
    async with ElectronServer(script=script) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        stream = await client.chat.completions.create(
            model="electron",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS,  # type: ignore[list-item]
            stream=True,
        )
        fragments = [
            call.function.arguments
            async for chunk in stream
            for choice in chunk.choices
            for call in choice.delta.tool_calls or []
            if call.function and call.function.arguments
        ]
        await client.close()
    return fragments


async def test_a_call_can_be_split_into_an_exact_number_of_fragments() -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}, "fragments": 4}
    fragments = await argument_fragments([{"tool_calls": [call]}])
    assert len(fragments) == 4
    assert "".join(fragments) == '{"city": "Paris"}'


async def test_raw_argument_text_is_sent_as_is_even_when_invalid() -> None:
    call = {"name": "get_weather", "arguments": '{"city": "Par'}
    fragments = await argument_fragments([{"tool_calls": [call]}])
    assert "".join(fragments) == '{"city": "Par'


def test_fragments_must_be_a_positive_integer() -> None:
    bad = {"name": "get_weather", "arguments": {}, "fragments": 0}
    with pytest.raises(ScriptError, match="fragments"):
        Script.from_data([{"tool_calls": [bad]}])


def test_text_after_is_streamed_after_the_tool_calls() -> None:
    script = Script.from_data(
        [{"text": "One moment.", "tool_calls": [{"name": "end_call"}], "text_after": " Bye!"}]
    )
    (reply,) = script.rounds
    rendered = render(reply)
    kinds = [type(d) for d in rendered.deltas]
    start = kinds.index(ToolCallStart)
    assert [d.text for d in rendered.deltas[start:] if isinstance(d, ContentDelta)] == [" Bye!"]
    assert rendered.content == "One moment. Bye!"
    assert rendered.finish_reason == "tool_calls"


def test_a_stop_string_in_the_text_drops_the_calls_and_the_text_after() -> None:
    reply = Script.from_data(
        [{"text": "Hi. STOP", "tool_calls": [{"name": "end_call"}], "text_after": "Bye"}]
    ).rounds[0]
    rendered = render(reply, stop=["STOP"])
    assert rendered.content == "Hi." and not rendered.tool_calls()
    cut_after = render(reply, stop=["ye"])
    assert cut_after.content == "Hi. STOPB" and cut_after.tool_calls()


def test_text_after_must_be_a_string() -> None:
    with pytest.raises(ScriptError, match="text_after"):
        Script.from_data([{"text_after": 3}])
