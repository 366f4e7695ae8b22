"""``drain_on_interrupt``: a cut turn's stream is read to its end for its exact usage, but
it gives its concurrency slot up to anyone waiting, never sends a request the turn no
longer needs, keeps usage that had already arrived, and estimates when the drain fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from turn_rig import Rig, turn_rig

from voiceagent.llm import ElectronClient
from voiceagent.reading import read_stream
from voiceagent.testing.electron import ElectronServer
from voiceagent.timeline import SessionClock, Timeline, TimelineEvent, TurnTimeline

REPLY = "One two three four five six seven eight nine ten eleven twelve."
HELLO = [{"role": "user", "content": "hello"}]


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        await anyio.sleep(0.005)
    raise AssertionError("the condition never became true")


async def read_all(llm: ElectronClient, done: list[str]) -> None:
    async with llm.stream(HELLO) as stream:
        async for _ in stream:
            pass
    done.append("waiter")


async def cut_at(rig: Rig, background: Any, kind: str, then: Callable[[], None]) -> TurnTimeline:
    """Run a turn with drain_on_interrupt, cut at its first ``kind`` event."""
    engine = rig.engine
    engine.drain_on_interrupt, engine.background = True, background
    with anyio.CancelScope() as scope:

        def on_event(turn: TurnTimeline, event: TimelineEvent) -> None:
            if event.kind == kind:
                scope.cancel()
                then()

        engine.timeline.on_event = on_event
        await engine.run("Count for me.")
    return engine.timeline.turns[-1]


async def test_a_drain_gives_its_slot_to_a_request_that_starts_waiting_after_the_cut() -> None:
    done: list[str] = []
    async with turn_rig([{"text": REPLY}, {"text": "Hi."}], token_ms=10) as rig:
        rig.engine.llm = llm = ElectronClient(rig.server.base_url, plan=1, stall_timeout=60)
        rig.server.faults.pause_after(chunks=3, seconds=30)  # the drained reply stalls
        async with anyio.create_task_group() as background:
            turn = await cut_at(rig, background, "llm.first_token", lambda: None)
            background.start_soon(read_all, llm, done)  # waits for the drained stream's slot
            with anyio.fail_after(10):  # a guard against the bug, not a timing assertion
                await eventually(lambda: done == ["waiter"])
    assert turn.metrics()["usage"]["estimated"] is True
    assert turn.metrics()["usage"]["prompt"] > 0


async def test_a_cut_before_the_reader_entered_the_stream_sends_nothing() -> None:
    async with turn_rig([{"text": REPLY}]) as rig:
        async with anyio.create_task_group() as background:
            turn = await cut_at(rig, background, "llm.request", lambda: None)
        # the background group has ended: the reader is gone, and sent nothing
        assert rig.server.requests == []
    assert turn.metrics()["usage"] is None


async def test_a_cut_while_the_reader_waits_for_a_slot_sends_nothing() -> None:
    async with turn_rig([{"text": REPLY}] * 2) as rig:
        rig.engine.llm = llm = ElectronClient(rig.server.base_url, plan=1)
        held = llm.stream(HELLO)
        await held.__aenter__()  # the only slot: the turn's reader waits for it
        limiter = llm._limiter()

        async def cut_when_waiting(scope: anyio.CancelScope) -> None:
            await eventually(lambda: limiter.statistics().tasks_waiting == 1)
            scope.cancel()

        async with anyio.create_task_group() as background:
            rig.engine.drain_on_interrupt, rig.engine.background = True, background
            with anyio.CancelScope() as scope:
                background.start_soon(cut_when_waiting, scope)
                await rig.engine.run("Count for me.")
            await held.__aexit__(None, None, None)  # the slot is free again
        assert len(rig.server.requests) == 1  # the held one only
    assert rig.engine.timeline.turns[-1].metrics()["usage"] is None


async def test_usage_already_received_at_the_cut_is_kept_exact() -> None:
    async with ElectronServer(script=[{"text": REPLY}]) as server:
        llm = ElectronClient(server.base_url)
        turn = Timeline(SessionClock()).start_turn()
        async with anyio.create_task_group() as background:
            stream = llm.stream(HELLO)
            async with read_stream(stream, turn, background) as (_chunks, drain):
                await eventually(lambda: stream.usage is not None)  # queued, never read
                drained = drain()
        assert drained is True
        usage = turn.metrics()["usage"]
        assert usage is not None and usage["estimated"] is False
        assert usage["completion"] == server.requests[0].usage["completion_tokens"]


async def test_a_failed_drain_records_an_estimate_not_zeros() -> None:
    async with turn_rig([{"text": REPLY}], token_ms=10) as rig:
        rig.server.faults.cut_after(chunks=5)  # the drained stream breaks
        async with anyio.create_task_group() as background:
            turn = await cut_at(rig, background, "llm.first_token", lambda: None)
    usage = turn.metrics()["usage"]
    assert usage is not None and usage["estimated"] is True
    assert usage["prompt"] > 0 and usage["completion"] > 0
