"""A turn over a server that sends a tool call's id late, empty or never (as some
OpenAI-compatible servers do): the call still runs, and history stays valid."""

from __future__ import annotations

from typing import Any

import pytest
from test_llm_chunks import DONE, FINISH, RawSSEServer, content, event

from voiceagent.agent import Agent
from voiceagent.history import History, validate_messages
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.timeline import SessionClock, Timeline
from voiceagent.toolkit import ToolCall, tool
from voiceagent.turn import TurnEngine


def call_fragment(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **fields}]}}]}


def tool_round(first_id: str | None, late_id: str | None) -> str:
    head: dict[str, Any] = {"type": "function", "function": {"name": "lookup", "arguments": ""}}
    if first_id is not None:
        head["id"] = first_id
    rest: dict[str, Any] = {"function": {"arguments": '{"city": "Pune"}'}}
    if late_id is not None:
        rest["id"] = late_id
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    return event(call_fragment(**head)) + event(call_fragment(**rest)) + event(finish) + DONE


@pytest.mark.parametrize(
    ("first_id", "late_id"), [(None, "call_late"), (None, None), ("", None), ("", "")]
)
async def test_a_call_whose_id_is_late_empty_or_missing_still_runs(
    first_id: str | None, late_id: str | None
) -> None:
    cities: list[str] = []

    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        cities.append(city)
        return "sunny"

    answer = event(content("Sunny in Pune.")) + event(FINISH) + DONE
    async with RawSSEServer([tool_round(first_id, late_id), answer]) as server:
        agent = Agent(instructions="You are a test agent.", tools=[lookup])
        history = History(agent.instructions)
        engine = TurnEngine(
            agent,
            ElectronClient(server.url, retry=RetryPolicy(scale=0.001)),
            history,
            Timeline(SessionClock()),
        )
        result = await engine.run("Weather in Pune?")
    assert cities == ["Pune"] and server.requests == 2
    assert result.reason == "completed" and result.heard == "Sunny in Pune."
    messages = history.messages()
    validate_messages(messages)
    (call,) = messages[2]["tool_calls"]
    assert call["id"] == (late_id or call["id"]) and call["id"].startswith("call_")
    assert messages[3] == {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}


def test_a_tool_call_made_with_an_empty_id_gets_one_made_up() -> None:
    call = ToolCall("", "lookup")
    assert call.id.startswith("call_")
    assert ToolCall("", "lookup").id != call.id
