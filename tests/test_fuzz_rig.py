"""The barge-in fuzz's rig observes and changes nothing: its LLM client's stream wrapper is the
wrapped ElectronStream in every respect the turn reads. With ``drain_on_interrupt``, a cut
turn asks the stream whether another request waits for its slot (``contended``) and bills
its ``usage`` (``usage_to_bill()``); a wrapper that hid them made every drained case of the
fuzz fail or pass for the wrong reason."""

from __future__ import annotations

from typing import Any

import anyio
from fuzz_rig import CountingClient

from voiceagent.llm import ElectronClient
from voiceagent.testing.electron import ElectronServer

HELLO = [{"role": "user", "content": "Hi"}]


async def test_the_rigs_stream_says_what_the_wrapped_stream_says() -> None:
    counted: list[Any] = []
    async with ElectronServer(script=[{"text": "Hello there."}]) as server:
        # a plan of 1 on this endpoint and key, first: the rig's client shares its one slot
        planned = ElectronClient(server.base_url, plan=1)
        async with planned.stream(HELLO) as first:
            async for _ in first:
                pass
        rig = CountingClient(server.base_url, lambda: "r1", lambda _, tag: counted.append(tag))
        wrapped: Any = rig.stream(HELLO)
        inner = wrapped.inner
        # before it is sent: nothing to bill, no slot held
        assert wrapped.usage is None and wrapped.usage_to_bill() is None
        contended = [wrapped.contended]  # the wrapper's answer at each step
        other = planned.stream(HELLO)  # waits for the slot the rig's stream holds
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                async with wrapped:

                    async def wait_for_the_slot() -> None:
                        async with other:
                            async for _ in other:
                                pass

                    tg.start_soon(wait_for_the_slot)
                    while not inner.contended:  # noqa: ASYNC110 (it queues for the slot)
                        await anyio.sleep(0.001)
                    contended.append(wrapped.contended)  # another request waits: give way
                    async for _ in wrapped:
                        pass
                    contended.append(wrapped.contended)
            contended.append(wrapped.contended)  # closed: the slot was given back
    assert contended == [False, True, True, False]
    assert counted and set(counted) == {"r1"}  # every chunk went through the wrapper
    assert inner.usage is not None and not inner.usage.estimated
    assert wrapped.usage == inner.usage  # the server's usage chunk, not an estimate
    assert wrapped.usage_to_bill() == inner.usage
    assert other.usage is not None  # the waiting request got the slot and its answer
