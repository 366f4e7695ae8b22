"""ToolExecutor: sync and async tools, the in-flight cap, cancellation, abandonment and shields.

No timings: every wait is on an event or on "all tasks blocked".
"""

from __future__ import annotations

import threading

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from voiceagent.toolkit import ToolCall, ToolCallState, ToolExecutor, ToolRegistry, tool
from voiceagent.toolkit.inflight import InFlightSlot

CANCELLED = '{"error": "cancelled"}'


async def test_sync_tools_run_in_a_worker_thread_and_async_ones_on_the_loop() -> None:
    threads: dict[str, int] = {}

    @tool
    def blocking() -> str:
        """Sync."""
        threads["sync"] = threading.get_ident()
        return "s"

    @tool
    async def awaiting() -> str:
        """Async."""
        threads["async"] = threading.get_ident()
        return "a"

    executor = ToolExecutor(ToolRegistry([blocking, awaiting]))
    calls = [ToolCall("c1", "blocking"), ToolCall("c2", "awaiting")]
    async with anyio.create_task_group() as tg:
        for call in calls:
            executor.start(call, tg)
    assert [call.content for call in calls] == ["s", "a"]
    assert threads["async"] == threading.get_ident()
    assert threads["sync"] != threading.get_ident()


async def test_no_more_than_max_in_flight_calls_run_at_once() -> None:
    gate = anyio.Event()
    running = 0
    peak = 0

    @tool
    async def work(n: int) -> int:
        """Work."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return n

    executor = ToolExecutor(ToolRegistry([work]), max_in_flight=2)
    calls = [ToolCall(f"c{i}", "work", f'{{"n": {i}}}') for i in range(5)]
    async with anyio.create_task_group() as tg:
        for call in calls:
            executor.start(call, tg)
        await wait_all_tasks_blocked()
        assert running == 2
        assert executor.in_flight == 2
        assert [c.state for c in calls].count(ToolCallState.PENDING) == 3
        gate.set()
    assert peak == 2
    assert [c.content for c in calls] == ["0", "1", "2", "3", "4"]
    assert executor.in_flight == 0


async def test_an_interruptible_async_call_is_cancelled_with_a_message() -> None:
    saw_cancel = False

    @tool(interruptible=True)
    async def lookup() -> str:
        """Look up."""
        nonlocal saw_cancel
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            saw_cancel = True
            raise
        return ""

    executor = ToolExecutor(ToolRegistry([lookup]))
    call = ToolCall("c1", "lookup")
    async with anyio.create_task_group() as tg:
        executor.start(call, tg)
        await wait_all_tasks_blocked()
        assert call.state is ToolCallState.RUNNING
        tg.cancel_scope.cancel()
    assert saw_cancel
    assert call.state is ToolCallState.CANCELLED
    assert call.tool_message()["content"] == CANCELLED
    assert executor.in_flight == 0


async def test_a_call_still_waiting_for_a_slot_is_cancelled_and_never_runs() -> None:
    ran: list[str] = []

    @tool(interruptible=True)
    async def work(tag: str) -> str:
        """Work."""
        ran.append(tag)
        await anyio.sleep_forever()
        return tag

    executor = ToolExecutor(ToolRegistry([work]), max_in_flight=1)
    first = ToolCall("c1", "work", '{"tag": "first"}')
    second = ToolCall("c2", "work", '{"tag": "second"}')
    async with anyio.create_task_group() as tg:
        executor.start(first, tg)
        executor.start(second, tg)
        await wait_all_tasks_blocked()
        assert second.state is ToolCallState.PENDING
        tg.cancel_scope.cancel()
    assert ran == ["first"]
    assert second.state is ToolCallState.CANCELLED
    assert second.started_at is None
    assert second.tool_message()["content"] == CANCELLED


async def test_an_abandoned_sync_call_keeps_its_slot_until_its_thread_ends() -> None:
    entered = threading.Event()
    release = threading.Event()

    @tool(interruptible=True)
    def slow() -> str:
        """Blocks until released."""
        entered.set()
        release.wait(timeout=30)  # bounded: a failing test must not hang the interpreter
        return "late result"

    @tool
    async def quick() -> str:
        """Quick."""
        return "quick"

    executor = ToolExecutor(ToolRegistry([slow, quick]), max_in_flight=1)
    abandoned = ToolCall("c1", "slow")
    async with anyio.create_task_group() as tg:
        executor.start(abandoned, tg)
        await anyio.to_thread.run_sync(entered.wait)
        tg.cancel_scope.cancel()
    assert abandoned.state is ToolCallState.CANCELLED
    assert executor.in_flight == 1  # the thread still runs, and still counts

    waiting = ToolCall("c2", "quick")
    async with anyio.create_task_group() as tg:
        executor.start(waiting, tg)
        await wait_all_tasks_blocked()
        assert waiting.state is ToolCallState.PENDING  # no slot while the thread runs
        release.set()
    assert waiting.content == "quick"
    assert abandoned.tool_message()["content"] == CANCELLED  # its late result was dropped
    assert executor.in_flight == 0


async def test_a_timed_out_sync_call_keeps_its_slot_until_its_thread_ends() -> None:
    release = threading.Event()

    @tool(timeout=0.01)
    def stuck() -> str:
        """Blocks until released."""
        release.wait(timeout=30)  # bounded: a failing test must not hang the interpreter
        return "late"

    @tool
    async def quick() -> str:
        """Quick."""
        return "quick"

    executor = ToolExecutor(ToolRegistry([stuck, quick]), max_in_flight=1)
    call = ToolCall("c1", "stuck")
    try:
        await executor.run(call)
        assert call.error == "timed out after 0.01 s"
        assert executor.in_flight == 1
    finally:
        release.set()
    second = ToolCall("c2", "quick")
    await executor.run(second)  # gets the slot once the first thread has ended
    assert second.content == "quick"
    assert call.error == "timed out after 0.01 s"  # the late result was dropped
    assert executor.in_flight == 0


def test_a_sync_call_abandoned_before_its_thread_began_never_runs() -> None:
    async def main() -> None:
        limiter = anyio.CapacityLimiter(1)
        slot = InFlightSlot(limiter)
        await slot.acquire()
        slot.lend_to_thread()
        slot.task_leaves()  # cancelled while the function was still queued
        assert limiter.borrowed_tokens == 0
        assert slot.thread_begins() is False

    anyio.run(main)


async def _set_when_all_blocked(event: anyio.Event) -> None:
    await wait_all_tasks_blocked()
    event.set()


async def test_a_non_interruptible_call_finishes_despite_the_cancel_and_keeps_its_result() -> None:
    proceed = anyio.Event()

    @tool  # side-effecting by default
    async def book() -> str:
        """Book."""
        await proceed.wait()
        return "booked"

    executor = ToolExecutor(ToolRegistry([book]))
    call = ToolCall("c1", "book")
    async with anyio.create_task_group() as helpers:
        with anyio.CancelScope() as turn:
            async with anyio.create_task_group() as tg:
                executor.start(call, tg)
                await wait_all_tasks_blocked()
                helpers.start_soon(_set_when_all_blocked, proceed)
                turn.cancel()  # barge-in
    assert turn.cancel_called
    assert call.state is ToolCallState.DONE
    assert call.tool_message()["content"] == "booked"


async def test_a_shielded_sync_call_finishes_despite_the_cancel() -> None:
    entered = threading.Event()
    release = threading.Event()

    @tool
    def charge() -> str:
        """Charge a card."""
        entered.set()
        release.wait(timeout=30)  # bounded: a failing test must not hang the interpreter
        return "charged"

    async def release_when_blocked() -> None:
        await wait_all_tasks_blocked()
        release.set()

    executor = ToolExecutor(ToolRegistry([charge]))
    call = ToolCall("c1", "charge")
    async with anyio.create_task_group() as helpers:
        with anyio.CancelScope() as turn:
            async with anyio.create_task_group() as tg:
                executor.start(call, tg)
                await anyio.to_thread.run_sync(entered.wait)
                helpers.start_soon(release_when_blocked)
                turn.cancel()
    assert call.content == "charged"
    assert executor.in_flight == 0


async def test_a_shielded_call_is_still_bounded_by_its_timeout() -> None:
    cancel_seen_at_timeout: list[bool] = []
    turn = anyio.CancelScope()

    @tool(timeout=0.5)  # long enough for the barge-in to come first
    async def forever() -> str:
        """Never ends."""
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancel_seen_at_timeout.append(turn.cancel_called)
            raise
        return ""

    executor = ToolExecutor(ToolRegistry([forever]))
    call = ToolCall("c1", "forever")
    with turn:
        async with anyio.create_task_group() as tg:
            executor.start(call, tg)
            await wait_all_tasks_blocked()
            turn.cancel()
    assert cancel_seen_at_timeout == [True]  # the barge-in came first, and did not stop it
    assert call.error == "timed out after 0.5 s"


@pytest.mark.parametrize(
    ("interruptible", "shield", "expected"),
    [
        (False, False, ToolCallState.CANCELLED),  # the caller overrides the tool's policy
        (True, True, ToolCallState.DONE),
    ],
)
async def test_shield_given_by_the_caller_overrides_the_tool_policy(
    interruptible: bool, shield: bool, expected: ToolCallState
) -> None:
    proceed = anyio.Event()

    async def wait() -> str:
        """Wait."""
        await proceed.wait()
        return "done"

    executor = ToolExecutor(ToolRegistry([tool(interruptible=interruptible)(wait)]))
    call = ToolCall("c1", "wait")
    async with anyio.create_task_group() as helpers:
        with anyio.CancelScope() as turn:
            async with anyio.create_task_group() as tg:
                executor.start(call, tg, shield=shield)
                await wait_all_tasks_blocked()
                helpers.start_soon(_set_when_all_blocked, proceed)
                turn.cancel()
    assert call.state is expected


def test_executor_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        ToolExecutor(ToolRegistry([]), max_in_flight=0)
    with pytest.raises(ValueError, match="result_cap"):
        ToolExecutor(ToolRegistry([]), result_cap=0)


async def test_a_call_that_cannot_get_a_slot_within_its_timeout_fails_with_a_message() -> None:
    release = threading.Event()

    @tool(timeout=0.05)
    def stuck() -> str:
        """Blocks until released."""
        release.wait(timeout=30)  # bounded: a failing test must not hang the interpreter
        return "late"

    @tool(timeout=0.2)
    async def quick() -> str:
        """Quick."""
        return "quick"

    executor = ToolExecutor(ToolRegistry([stuck, quick]), max_in_flight=1)
    abandoned = ToolCall("c1", "stuck")
    waiting = ToolCall("c2", "quick")
    try:
        await executor.run(abandoned)  # times out; its thread hangs on, holding the slot
        assert executor.in_flight == 1
        with anyio.fail_after(10):  # a guard against the bug, not a timing assertion
            await executor.run(waiting)
    finally:
        release.set()
    assert waiting.state is ToolCallState.FAILED
    assert waiting.error is not None and "timed out after 0.2 s" in waiting.error
    assert "waiting for a free tool slot" in waiting.error
    assert waiting.tool_message()["tool_call_id"] == "c2"  # answered: nothing is lost
    later = ToolCall("c3", "quick")
    await executor.run(later)  # the slot came back when the hung thread ended
    assert later.content == "quick" and executor.in_flight == 0


async def test_a_result_that_cannot_be_encoded_is_logged_and_answered_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool
    def loops() -> dict[str, object]:
        """A result that refers to itself."""
        result: dict[str, object] = {}
        result["self"] = result
        return result

    call = ToolCall("call_7", "loops")
    with caplog.at_level("WARNING", logger="voiceagent.toolkit"):
        await ToolExecutor(ToolRegistry([loops])).run(call)
    assert call.state is ToolCallState.FAILED
    assert call.content is not None and "could not be encoded" in call.content
    (record,) = [r for r in caplog.records if "encoded" in r.getMessage()]
    assert "call_7" in record.getMessage() and "loops" in record.getMessage()
