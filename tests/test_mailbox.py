"""The phone line's mailbox: order, the end after close, a cancelled wait, one reader woken."""

from __future__ import annotations

import anyio
import pytest

from voiceagent.adapters.mailbox import Mailbox


async def test_items_come_out_in_order_then_the_end_after_close() -> None:
    box = Mailbox[int]()
    for i in range(3):
        assert box.put(i)
    box.close()
    assert not box.put(99)  # nothing is queued after close
    assert [item async for item in box] == [0, 1, 2]
    with pytest.raises(anyio.EndOfStream):
        await box.get()


async def test_a_waiting_reader_is_woken_by_put_and_by_close() -> None:
    box = Mailbox[str]()
    got: list[str] = []

    async def read() -> None:
        async for item in box:
            got.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        box.put("a")
        await anyio.wait_all_tasks_blocked()
        assert got == ["a"]
        box.put("b")
        box.close()
    assert got == ["a", "b"]


async def test_a_cancelled_wait_loses_nothing() -> None:
    box = Mailbox[int]()
    with anyio.move_on_after(0.01):
        await box.get()
    box.put(7)  # after the cancelled wait: still delivered to the next reader
    assert await box.get() == 7
    assert len(box) == 0
