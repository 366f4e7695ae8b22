"""Cancelling a turn at any event leaves history as DESIGN.md's "What was heard" says:
heard text only, finished results kept, a side-effecting call finished and answered, an
interruptible one cancelled and answered, no unanswered call, nothing that never started."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from turn_rig import turn_rig

from voiceagent.history import validate_messages
from voiceagent.timeline import TimelineEvent, TurnTimeline
from voiceagent.toolkit import tool

FILLER = "Let me check the weather for you."
ANSWER = "It is 18 degrees and sunny in Paris."
SCRIPT = [
    {
        "text": FILLER,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "fragments": 4}],
    },
    {"text": ANSWER},
]


def make_tool(interruptible: bool, ran: list[str], finished: list[str]) -> Any:
    @tool(interruptible=interruptible)
    async def get_weather(city: str) -> dict[str, object]:
        """Current weather for a city."""
        ran.append(city)
        await anyio.sleep(0.05)
        finished.append(city)
        return {"city": city, "conditions": "sunny"}

    return get_weather


async def run_turn(interruptible: bool, cancel_at: int | None) -> dict[str, Any]:
    ran: list[str] = []
    finished: list[str] = []
    weather = make_tool(interruptible, ran, finished)
    async with turn_rig(SCRIPT, tools=[weather], token_ms=2, ms_per_char=2) as rig:
        seen: list[str] = []
        with anyio.CancelScope() as scope:

            def on_event(turn: TurnTimeline, event: TimelineEvent) -> None:
                seen.append(event.kind)
                if len(seen) == cancel_at:
                    scope.cancel()

            rig.engine.timeline.on_event = on_event
            await rig.engine.run("What's the weather in Paris?")
        return {
            "messages": rig.history.messages(),
            "events": seen,
            "ran": ran,
            "finished": finished,
            "cancelled": scope.cancelled_caught,
        }


def check_history(outcome: dict[str, Any], interruptible: bool) -> None:
    messages = outcome["messages"]
    validate_messages(messages)  # in particular: every tool call is answered
    assert messages[1] == {"role": "user", "content": "What's the weather in Paris?"}
    said = [m for m in messages if m["role"] == "assistant"]
    for message in said:
        content = message["content"] or ""
        assert FILLER.startswith(content) or ANSWER.startswith(content), content
    calls = [c for m in said for c in m.get("tool_calls", [])]
    answers = {m["tool_call_id"]: json.loads(m["content"]) for m in messages if m["role"] == "tool"}
    assert len(calls) == len(outcome["ran"])  # a call that never started never runs
    for call in calls:
        result = answers[call["id"]]
        if not interruptible:
            assert result["conditions"] == "sunny"  # side-effecting: finished, result kept
        elif result != {"error": "cancelled"}:
            assert result["conditions"] == "sunny"  # it had finished before the cancel
    if not interruptible:
        assert outcome["finished"] == outcome["ran"]


@pytest.mark.parametrize("interruptible", [False, True], ids=["side-effecting", "interruptible"])
async def test_a_cancel_at_every_event_leaves_a_valid_history(interruptible: bool) -> None:
    full = await run_turn(interruptible, cancel_at=None)
    check_history(full, interruptible)
    assert len(full["events"]) > 10
    for k in range(1, len(full["events"])):
        outcome = await run_turn(interruptible, cancel_at=k)
        assert outcome["cancelled"] or k >= len(outcome["events"]) - 1, k
        check_history(outcome, interruptible)


async def test_a_turn_cancelled_while_its_audio_plays_ends_as_cancelled() -> None:
    async with turn_rig([{"text": "A fairly long reply that takes a while to play."}]) as rig:
        with anyio.CancelScope() as scope:

            def on_event(turn: TurnTimeline, event: TimelineEvent) -> None:
                if event.kind == "audio.start":
                    scope.cancel()

            rig.engine.timeline.on_event = on_event
            await rig.engine.run("Talk to me.")
        (turn,) = rig.engine.timeline.turns
    (end,) = [e for e in turn.events if e.kind == "turn.end"]
    assert end.attrs["reason"] == "cancelled"


async def run_cut_after_first_token(drain: bool, *, contended: bool = False) -> TurnTimeline:
    """A reply cut at its first token; returns the turn's timeline once all has settled."""
    from voiceagent.llm import ElectronClient

    reply = "One two three four five six seven eight nine ten eleven twelve."
    async with turn_rig([{"text": reply}], token_ms=15) as rig:
        engine = rig.engine
        if contended:  # one slot for this key, and another request queued for it
            engine.llm = ElectronClient(rig.server.base_url, plan=1)
        async with anyio.create_task_group() as background:
            engine.drain_on_interrupt, engine.background = drain, background
            with anyio.CancelScope() as scope:

                def on_event(turn: TurnTimeline, event: TimelineEvent) -> None:
                    if event.kind == "llm.first_token":
                        scope.cancel()
                        if contended:
                            background.start_soon(waiting_request, engine.llm)

                engine.timeline.on_event = on_event
                await engine.run("Count for me.")
        return engine.timeline.turns[-1]


async def waiting_request(llm: Any) -> None:
    async with llm.stream([{"role": "user", "content": "hello"}]) as stream:
        async for _ in stream:
            pass


async def test_a_cut_stream_is_closed_and_its_usage_estimated_by_default() -> None:
    turn = await run_cut_after_first_token(drain=False)
    usage = turn.metrics()["usage"]
    assert usage["estimated"] is True


async def test_with_drain_on_interrupt_the_cut_stream_is_read_for_its_exact_usage() -> None:
    turn = await run_cut_after_first_token(drain=True)
    usage = turn.metrics()["usage"]
    assert usage["estimated"] is False
    assert usage["completion"] >= 12  # every token of the reply, though none was spoken after
    assert "One two three" not in " ".join(
        e.attrs.get("text", "") for e in turn.events if e.kind == "audio.end"
    )


async def test_drain_on_interrupt_does_not_hold_a_slot_another_request_waits_for() -> None:
    turn = await run_cut_after_first_token(drain=True, contended=True)
    assert turn.metrics()["usage"]["estimated"] is True
