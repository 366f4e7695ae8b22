"""Which plan limit a client takes (Electron's host only, unless asked), how a request that
waits for a slot says so (one log line, and llm.slot with waited_ms on the timeline), and
the caller's own headers on every request."""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
import pytest
from turn_rig import turn_rig

from voiceagent import timeline_render
from voiceagent.llm import ElectronClient, ElectronStream, RetryPolicy
from voiceagent.testing.electron import ElectronServer

FAST = RetryPolicy(scale=0.001)
HELLO = [{"role": "user", "content": "hello"}]
REPLY = "One two three four five six seven eight."


async def open_at_once(client: ElectronClient, count: int) -> list[ElectronStream]:
    """Streams entered concurrently and read to their end."""
    streams: list[ElectronStream] = []

    async def one() -> None:
        async with client.stream(HELLO) as stream:
            streams.append(stream)
            async for _ in stream:
                pass

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return streams


async def test_a_client_of_another_endpoint_is_not_capped_by_default() -> None:
    # 127.0.0.1 is not Electron's host: the client a Session builds for it queues nothing
    async with ElectronServer(ttft_ms=300, token_ms=1) as server:
        streams = await open_at_once(ElectronClient(server.base_url, retry=FAST), 10)
    assert server.max_in_flight == 10  # all ten were in flight at once
    assert [s.waited_s for s in streams] == [0.0] * 10


@pytest.mark.parametrize(
    ("url", "limit"),
    [
        ("https://api.smallest.ai/waves/v1", 3),
        ("https://smallest.ai/v1", 3),
        ("https://eu.api.smallest.ai/waves/v1/", 3),
        ("http://127.0.0.1:8765/waves/v1", None),
        ("https://api.openai.com/v1", None),
        ("https://smallest.ai.example.com/v1", None),  # not a smallest.ai host
    ],
)
async def test_without_a_plan_electrons_host_gets_the_standard_limit_and_others_none(
    url: str, limit: int | None
) -> None:
    client = ElectronClient(url, "sk-test-DO-NOT-LOG-1234")
    assert client.max_in_flight == limit
    assert client.plan == ("standard" if limit else None)
    assert client._limiter().total_tokens == (math.inf if limit is None else limit)


@pytest.mark.parametrize(
    ("url", "plan", "limit"),
    [
        ("http://127.0.0.1:8765/waves/v1", "standard", 3),
        ("http://127.0.0.1:8765/waves/v1", 7, 7),
        ("https://api.smallest.ai/waves/v1", "enterprise", 20),
        ("https://api.smallest.ai/waves/v1", 0, None),  # 0: no limit, on any host
    ],
)
def test_an_explicit_plan_applies_to_any_host(url: str, plan: str | int, limit: int | None) -> None:
    assert ElectronClient(url, plan=plan).max_in_flight == limit


async def test_an_explicit_plan_caps_a_local_endpoint() -> None:
    async with ElectronServer(ttft_ms=50, token_ms=1) as server:
        streams = await open_at_once(ElectronClient(server.base_url, plan=2, retry=FAST), 6)
    assert server.max_in_flight == 2
    assert sum(s.waited_s > 0 for s in streams) >= 4  # the rest waited for a slot


async def test_a_turn_that_waits_for_a_slot_logs_it_once_and_marks_it_on_the_timeline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="voiceagent.llm")
    async with turn_rig([{"text": REPLY}] * 3) as rig:
        rig.engine.llm = llm = ElectronClient(rig.server.base_url, plan=1, retry=FAST)
        held = llm.stream(HELLO)
        await held.__aenter__()  # the only slot
        async with anyio.create_task_group() as tg:
            tg.start_soon(rig.engine.run, "Count.")
            limiter = llm._limiter()
            while not limiter.statistics().tasks_waiting:  # noqa: ASYNC110 (it queues)
                await anyio.sleep(0.001)
            await anyio.sleep(0.05)  # a wait long enough to be seen in whole milliseconds
            rig.server.faults.fail_next(status=503, message="busy")  # its first attempt
            await held.__aexit__(None, None, None)
    turn = rig.engine.timeline.turns[-1]
    kinds = [e.kind for e in turn.events]
    assert kinds.index("llm.request") < kinds.index("llm.slot") < kinds.index("llm.first_token")
    assert kinds.count("llm.request") == kinds.count("llm.slot") == kinds.count("llm.end") == 1
    (request,) = [e for e in turn.events if e.kind == "llm.request"]
    (slot,) = [e for e in turn.events if e.kind == "llm.slot"]
    assert request.attrs == {"round": 1}  # as ever: when the turn asked
    assert slot.attrs["round"] == 1 and slot.attrs["waited_ms"] >= 50.0
    assert [r.status for r in rig.server.requests] == [200, 503, 200]  # retried: one request
    waits = [r for r in caplog.records if "concurrency slot" in r.getMessage()]
    assert len(waits) == 1  # once, not per attempt
    message = waits[0].getMessage()
    assert waits[0].levelno == logging.WARNING
    assert "1 in flight" in message and "plan=1" in message and "plan=..." in message
    assert f"{rig.server.base_url}" in message
    # the extra kind is harmless to the metrics, the JSON and the pictures
    assert turn.to_dict()["metrics"]["first_audio_ms"] is not None
    assert turn.lanes() and timeline_render.html([turn])


async def test_a_request_that_finds_a_free_slot_is_marked_as_before() -> None:
    async with turn_rig([{"text": REPLY}]) as rig:
        await rig.engine.run("Count.")
    turn = rig.engine.timeline.turns[-1]
    (request,) = [e for e in turn.events if e.kind == "llm.request"]
    assert request.attrs == {"round": 1}
    assert "llm.slot" not in [e.kind for e in turn.events]


async def test_extra_headers_reach_the_server_on_every_request_and_are_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "tenant-secret-DO-NOT-LOG-5678"
    headers = {"X-Tenant": "acme", "X-Tenant-Token": secret}
    async with ElectronServer() as server:
        client = ElectronClient(server.base_url, headers=headers, retry=FAST)
        server.faults.fail_next(status=503, message="busy")
        for _ in range(2):
            async with client.stream(HELLO) as stream:
                async for _ in stream:
                    pass
    assert len(server.requests) == 3  # a retried attempt and a second request
    for request in server.requests:
        assert request.headers["x-tenant"] == "acme"
        assert request.headers["x-tenant-token"] == secret
        assert request.headers["x-source"] == "voiceagent"
    assert secret not in caplog.text and secret not in repr(client)
    assert "X-Tenant-Token" in repr(client)  # the names, not the values


async def test_clients_with_different_headers_each_send_their_own() -> None:
    async with ElectronServer() as server:
        for tenant in ("a", "b"):
            client = ElectronClient(server.base_url, headers={"X-Tenant": tenant}, retry=FAST)
            async with client.stream(HELLO) as stream:
                async for _ in stream:
                    pass
    assert [r.headers["x-tenant"] for r in server.requests] == ["a", "b"]


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"authorization": "Bearer x"}, ValueError),  # the key goes as api_key
        ({"X-Count": 3}, TypeError),
    ],
)
def test_headers_that_cannot_be_sent_are_refused(headers: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=r"api_key|map str"):
        ElectronClient("http://127.0.0.1:8765/v1", headers=headers)
