"""The shared line clock: one task moves every line on, a failing line fails alone, and the
task is gone once no line plays."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from voiceagent.adapters.line_clock import LineClock


class Counting:
    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def frames_due(self, horizon: float) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the source broke")


def clock_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "line clock"]


async def until(condition: object) -> None:
    assert callable(condition)
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - the clock calls plain methods: polled
            await anyio.sleep(0.005)


async def test_one_task_moves_every_line_and_ends_with_the_last() -> None:
    clock = LineClock.of_running_loop()
    a, b = Counting(), Counting()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run, a)
        tg.start_soon(clock.run, b)
        await until(lambda: a.calls > 3 and b.calls > 3)
        assert len(clock_tasks()) == 1 and clock.lines == 2
        tg.cancel_scope.cancel()
    await until(lambda: not clock_tasks())
    assert clock.lines == 0
    assert LineClock.of_running_loop() is clock


async def test_a_failing_line_raises_in_its_own_player_and_the_others_go_on() -> None:
    clock = LineClock.of_running_loop()
    good, bad = Counting(), Counting(fail_after=2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run, good)
        with pytest.raises(RuntimeError, match="the source broke"):
            await clock.run(bad)
        after = good.calls
        await until(lambda: good.calls > after + 2)
        tg.cancel_scope.cancel()
