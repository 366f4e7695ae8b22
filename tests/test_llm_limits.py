"""Sharing across a process: the plan limiter, connection reuse, and the prefix cache."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.testing.electron import ElectronServer

FAST = RetryPolicy(scale=0.001)
KEY = "sk-test-DO-NOT-LOG-1234"


async def run(client: ElectronClient, messages: list[dict[str, Any]]) -> str:
    text = []
    async with client.stream(messages) as stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
    return "".join(text)


async def fire(clients: list[ElectronClient], per_client: int) -> list[str]:
    results: list[str] = []

    async def one(client: ElectronClient, i: int) -> None:
        results.append(await run(client, [{"role": "user", "content": f"question {i}"}]))

    async with anyio.create_task_group() as tg:
        for client in clients:
            for i in range(per_client):
                tg.start_soon(one, client, i)
    return results


async def test_fifty_concurrent_requests_never_exceed_the_plan() -> None:
    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        client = ElectronClient(server.base_url, KEY, plan=3, retry=FAST)
        results = await fire([client], 50)
    assert len(results) == 50 and all(results)
    assert server.max_in_flight == 3  # bounded, and the bound was used
    assert [r.status for r in server.requests] == [200] * 50
    assert client.usage.requests == 50


async def test_two_clients_of_one_endpoint_and_key_share_one_limiter() -> None:
    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        first = ElectronClient(server.base_url, KEY, plan=3, retry=FAST)
        second = ElectronClient(server.base_url, KEY, plan=3, retry=FAST)
        results = await fire([first, second], 15)
    assert len(results) == 30
    assert server.max_in_flight == 3


async def test_a_second_client_asking_for_less_lowers_the_shared_limit() -> None:
    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        first = ElectronClient(server.base_url, KEY, plan=3, retry=FAST)
        second = ElectronClient(server.base_url, KEY, plan=1, retry=FAST)
        await fire([first], 1)  # the limiter is made (3) and taken at a first request
        await fire([second], 1)  # lowered to 1 (anyio refused the float this once set)
        results = await fire([first, second], 6)
    assert len(results) == 12 and all(results)
    assert server.max_in_flight == 1  # the tightest plan holds for both


async def test_named_plans_set_the_bound() -> None:
    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        await fire([ElectronClient(server.base_url, KEY, plan="standard", retry=FAST)], 10)
    assert server.max_in_flight == 3


async def test_concurrency_429s_from_the_server_back_off_and_recover() -> None:
    # The server allows 2 in flight; the client believes it is unlimited (another process
    # could be using the key), so the server's "Concurrency limit reached" 429 must be
    # retried after its Retry-After (1 s, scaled to 0.3 s) until every request succeeds.
    async with ElectronServer(concurrency=2, ttft_ms=150) as server:
        client = ElectronClient(server.base_url, KEY, plan=None, retry=RetryPolicy(scale=0.3))
        results = await fire([client], 4)
    assert len(results) == 4 and all(results)
    statuses = [r.status for r in server.requests]
    assert statuses.count(200) == 4 and statuses.count(429) >= 1
    assert server.max_in_flight <= 2


async def test_sequential_requests_reuse_one_connection() -> None:
    async with ElectronServer() as server:
        client = ElectronClient(server.base_url, KEY, retry=FAST)
        for i in range(4):
            await run(client, [{"role": "user", "content": f"turn {i}"}])
        server.faults.fail_next(1, status=503)
        await run(client, [{"role": "user", "content": "after a retry"}])
        await run(
            ElectronClient(server.base_url, KEY, retry=FAST), [{"role": "user", "content": "x"}]
        )
    assert len(server.requests) == 7
    assert server.connections == 1


async def test_cached_tokens_grow_with_a_stable_prefix_and_drop_when_it_changes() -> None:
    system = {"role": "system", "content": "You are a friendly voice assistant. " * 20}
    async with ElectronServer() as server:
        client = ElectronClient(server.base_url, KEY, retry=FAST)
        history: list[dict[str, Any]] = [system]
        cached = []
        for turn in range(3):
            history.append({"role": "user", "content": f"Tell me about topic {turn}."})
            async with client.stream(history) as stream:
                reply = "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )
            assert stream.usage is not None
            cached.append(stream.usage.cached)
            history.append({"role": "assistant", "content": reply})
        changed = [{"role": "system", "content": "Now the time is 10:42. " + system["content"]}]
        async with client.stream([*changed, *history[1:]]) as stream:
            async for _ in stream:
                pass
    assert stream.usage is not None
    assert cached[0] == 0 < cached[1] < cached[2]
    assert stream.usage.cached < cached[2]
    ratio = client.usage.cache_hit_ratio
    assert ratio is not None and 0 < ratio < 1


async def test_leaving_a_stream_early_frees_its_slot() -> None:
    async with ElectronServer(token_ms=1) as server:
        client = ElectronClient(server.base_url, KEY, plan=1, retry=FAST)
        for _ in range(3):
            async with client.stream([{"role": "user", "content": "hello"}]) as stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        break  # the caller stops reading (e.g. a barge-in)
        assert await run(client, [{"role": "user", "content": "still served?"}])
    assert len(server.requests) == 4


async def test_a_request_cancelled_while_waiting_for_a_slot_leaks_nothing() -> None:
    async with ElectronServer(ttft_ms=300) as server:
        client = ElectronClient(server.base_url, KEY, plan=1, retry=FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, client, [{"role": "user", "content": "slow"}])
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.05):  # gives up while the slot is taken
                await run(client, [{"role": "user", "content": "impatient"}])
        assert await run(client, [{"role": "user", "content": "next"}])
    assert len(server.requests) == 2  # the impatient request was never sent
    assert server.max_in_flight == 1


async def test_a_stream_must_be_entered_before_iterating() -> None:
    client = ElectronClient("http://127.0.0.1:9/v1", retry=FAST)
    stream = client.stream([{"role": "user", "content": "hi"}])
    with pytest.raises(RuntimeError, match="async with"):
        await stream.__anext__()


async def test_warm_builds_the_pooled_client_that_the_first_request_then_uses() -> None:
    from voiceagent.llm.pool import _CLIENTS

    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        client = ElectronClient(server.base_url, KEY, retry=FAST)
        assert not _CLIENTS.get(None)  # nothing built yet in this loop
        client.warm()
        (built,) = _CLIENTS.get({}).values()
        await fire([client], 2)
        assert list(_CLIENTS.get({}).values()) == [built]  # used, not built again
    assert len(server.requests) == 2
