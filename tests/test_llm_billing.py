"""What a turn bills: the server's usage when it came, an estimate (marked) for a request
the server answered but whose usage never came, and nothing for a request never sent."""

from __future__ import annotations

import socket

import anyio
from turn_rig import turn_rig

from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.timeline import TimelineEvent, TurnTimeline

REPLY = "One two three four five six seven eight."


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_request_that_never_connected_is_not_billed() -> None:
    async with turn_rig([{"text": REPLY}]) as rig:
        rig.engine.llm = ElectronClient(
            f"http://127.0.0.1:{closed_port()}/v1", retry=RetryPolicy(max_attempts=2, scale=0.001)
        )
        result = await rig.engine.run("Count.")
    assert result.reason == "error"
    assert result.timeline.metrics()["usage"] is None


async def test_a_refused_request_is_not_billed() -> None:
    async with turn_rig([{"text": REPLY}]) as rig:
        rig.server.faults.fail_next(status=400, message="bad request")
        result = await rig.engine.run("Count.")
    assert result.reason == "error" and len(rig.server.requests) == 1
    assert result.timeline.metrics()["usage"] is None


async def test_a_turn_cut_while_waiting_for_a_concurrency_slot_is_not_billed() -> None:
    async with turn_rig([{"text": REPLY}] * 2, ttft_ms=60_000) as rig:
        rig.engine.llm = ElectronClient(rig.server.base_url, plan=1)
        async with anyio.create_task_group() as tg:
            held = rig.engine.llm.stream([{"role": "user", "content": "hold the slot"}])
            await held.__aenter__()  # the only slot, held for the whole test
            try:
                with anyio.CancelScope() as scope:

                    def on_event(turn: TurnTimeline, event: TimelineEvent) -> None:
                        if event.kind == "llm.request":
                            tg.start_soon(cancel_when_waiting, rig.engine.llm, scope)

                    rig.engine.timeline.on_event = on_event
                    await rig.engine.run("Count.")
            finally:
                await held.__aexit__(None, None, None)
    turn = rig.engine.timeline.turns[-1]
    assert len(rig.server.requests) == 1  # only the one holding the slot
    assert turn.metrics()["usage"] is None


async def cancel_when_waiting(llm: ElectronClient, scope: anyio.CancelScope) -> None:
    limiter = llm._limiter()
    for _ in range(5000):  # the turn's request queues behind the held slot
        if limiter.statistics().tasks_waiting:
            break
        await anyio.sleep(0.001)
    scope.cancel()


async def test_a_request_cut_after_the_server_answered_is_billed_an_estimate() -> None:
    async with turn_rig([{"text": REPLY}], token_ms=15) as rig:
        with anyio.CancelScope() as scope:

            def on_event(turn: TurnTimeline, event: TimelineEvent) -> None:
                if event.kind == "llm.first_token":
                    scope.cancel()

            rig.engine.timeline.on_event = on_event
            await rig.engine.run("Count.")
    usage = rig.engine.timeline.turns[-1].metrics()["usage"]
    assert usage is not None and usage["estimated"] is True and usage["prompt"] > 0
