"""ToolContext: injected into the tools that ask for it, with the session's behaviours."""

from __future__ import annotations

from typing import Any

import pytest

from voiceagent.toolkit import ToolCall, ToolContext, ToolExecutor, ToolRegistry, tool


async def test_the_context_is_injected_with_this_calls_id_and_the_metadata() -> None:
    spoken: list[str] = []
    seen: dict[str, Any] = {}

    async def say(text: str) -> None:
        spoken.append(text)

    @tool
    async def book(ctx: ToolContext, people: int) -> str:
        """Book."""
        await ctx.say("Just a second.")
        seen.update(call_id=ctx.call_id, caller=ctx.metadata["caller"], session=ctx.session)
        return f"booked for {people}"

    session = object()
    shared = ToolContext(session=session, metadata={"caller": "+911234"}, say=say)
    call = ToolCall("call_7", "book", '{"people": 2}')
    await ToolExecutor(ToolRegistry([book])).run(call, shared)
    assert call.content == "booked for 2"
    assert spoken == ["Just a second."]
    assert seen == {"call_id": "call_7", "caller": "+911234", "session": session}


async def test_a_sync_tool_gets_the_context_too() -> None:
    @tool
    def whoami(ctx: ToolContext) -> str:
        """Who am I."""
        return ctx.call_id

    call = ToolCall("call_3", "whoami")
    await ToolExecutor(ToolRegistry([whoami])).run(call)
    assert call.content == "call_3"


async def test_say_without_a_speaker_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"say\(\) is not available here"):
        await ToolContext("c1").say("hello")


async def test_end_call_without_a_session_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"end_call\(\) is not available here"):
        await ToolContext("c1").end_call()


async def test_end_call_uses_the_given_behaviour() -> None:
    ended: list[bool] = []

    async def end_call() -> None:
        ended.append(True)

    await ToolContext("c1", end_call=end_call).end_call()
    assert ended == [True]


async def test_a_tool_using_an_unavailable_behaviour_fails_readably() -> None:
    @tool
    async def greet(ctx: ToolContext) -> str:
        """Greet."""
        await ctx.say("hi")
        return "ok"

    call = ToolCall("c1", "greet")
    await ToolExecutor(ToolRegistry([greet])).run(call)
    assert call.error is not None
    assert call.error.startswith("RuntimeError: say() is not available here")


def test_metadata_is_read_only_and_a_copy() -> None:
    source = {"caller": "+911234"}
    ctx = ToolContext("c1", metadata=source)
    source["caller"] = "changed"
    assert ctx.metadata["caller"] == "+911234"
    with pytest.raises(TypeError):
        ctx.metadata["caller"] = "x"  # type: ignore[index]


def test_a_tool_can_be_unit_tested_by_calling_it_with_a_context() -> None:
    @tool
    def whoami(ctx: ToolContext, greeting: str) -> str:
        """Who am I."""
        return f"{greeting} from {ctx.call_id}"

    assert whoami(ToolContext("test"), "hi") == "hi from test"
