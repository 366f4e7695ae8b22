"""The Electron simulator's plan limits and injected faults, seen from a real client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
import openai
import pytest
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk

from voiceagent.testing.electron import ElectronServer

USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def server() -> AsyncIterator[ElectronServer]:
    async with ElectronServer() as running:
        yield running


_clients: list[openai.AsyncOpenAI] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _clients:
        await _clients.pop().close()


def client_for(server: ElectronServer, **kwargs: Any) -> openai.AsyncOpenAI:
    """A real OpenAI client on the server's base URL, closed after the test."""
    kwargs = {"base_url": server.base_url, "api_key": "test-key", "max_retries": 0, **kwargs}
    client = openai.AsyncOpenAI(**kwargs)
    _clients.append(client)
    return client


async def open_stream(client: openai.AsyncOpenAI) -> AsyncStream[ChatCompletionChunk]:
    """A stream held open after its first (role) chunk: in flight on the server."""
    stream = await client.chat.completions.create(model="electron", messages=USER, stream=True)
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"
    return stream


async def drain(stream: AsyncStream[ChatCompletionChunk]) -> None:
    async for _ in stream:
        pass


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait for a server-side condition that follows the last bytes a client read."""
    for _ in range(1000):
        if condition():
            return
        await anyio.sleep(0.005)
    raise AssertionError("the condition never became true")


async def post(server: ElectronServer) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(server.base_url + "/chat/completions", json={"messages": USER})


async def test_request_beyond_the_concurrency_limit_gets_429_with_retry_after() -> None:
    async with ElectronServer(concurrency=2, token_ms=1) as server:
        client = client_for(server)
        held = [await open_stream(client), await open_stream(client)]
        assert server.in_flight == 2
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="electron", messages=USER)
        response = caught.value.response
        assert response.headers["retry-after"] == "1"
        assert "Concurrency limit reached" in response.text
        assert caught.value.request_id == server.requests[-1].request_id
        for stream in held:
            await drain(stream)
        await eventually(lambda: server.in_flight == 0)
        await client.chat.completions.create(model="electron", messages=USER)
    assert server.max_in_flight == 2
    assert [r.status for r in server.requests] == [200, 200, 429, 200]


async def test_max_in_flight_is_the_peak_of_admitted_requests() -> None:
    async with ElectronServer(concurrency=3, token_ms=2) as server:
        client = client_for(server)
        statuses: list[int] = []

        async def one() -> None:
            try:
                await drain(
                    await client.chat.completions.create(
                        model="electron", messages=USER, stream=True
                    )
                )
                statuses.append(200)
            except openai.RateLimitError:
                statuses.append(429)

        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(one)
    assert len(statuses) == 12 and 200 in statuses
    assert 1 <= server.max_in_flight <= 3
    assert server.in_flight == 0


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 502, 503])
async def test_fail_next_returns_the_status_in_the_envelope_once(
    server: ElectronServer, status: int
) -> None:
    server.faults.fail_next(1, status=status)
    failed = await post(server)
    recovered = await post(server)
    assert failed.status_code == status
    error = failed.json()["error"]
    assert error["request_id"] == failed.headers["x-request-id"]
    assert error["message"] and error["type"]
    assert recovered.status_code == 200


async def test_fail_next_counts_requests_and_sets_retry_after_and_message(
    server: ElectronServer,
) -> None:
    server.faults.fail_next(2, status=429, retry_after=3, message="Rate limit exceeded")
    first, second, third = [await post(server) for _ in range(3)]
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "3"
    assert first.json()["error"]["message"] == "Rate limit exceeded"
    assert first.json()["error"]["type"] == "rate_limit_error"


async def test_default_429_message_is_concurrency_limit_reached(server: ElectronServer) -> None:
    server.faults.fail_next(1, status=429)
    failed = await post(server)
    assert "retry-after" not in failed.headers
    assert failed.json()["error"]["message"] == "Concurrency limit reached"


async def test_injected_failures_are_served_in_order(server: ElectronServer) -> None:
    for status in (502, 503):
        server.faults.fail_next(1, status=status)
    assert [(await post(server)).status_code for _ in range(3)] == [502, 503, 200]


async def test_cut_drops_the_connection_after_m_events_without_the_final_chunk(
    server: ElectronServer,
) -> None:
    server.faults.cut_after(chunks=3)
    received = b""
    async with httpx2.AsyncClient() as http:
        body = {"messages": USER, "stream": True}
        with pytest.raises(httpx2.RemoteProtocolError):
            async with http.stream("POST", server.base_url + "/chat/completions", json=body) as r:
                assert r.status_code == 200
                async for piece in r.aiter_raw():
                    received += piece
    events = [e for e in received.split(b"\n\n") if e]
    assert len(events) == 3
    assert b"[DONE]" not in received
    assert server.requests[-1].cut


async def test_openai_client_sees_a_cut_stream_as_a_connection_error(
    server: ElectronServer,
) -> None:
    server.faults.cut_after(chunks=2, times=2)
    client = client_for(server)
    for _ in range(2):
        with pytest.raises((openai.APIConnectionError, httpx2.TransportError)):
            await drain(
                await client.chat.completions.create(model="electron", messages=USER, stream=True)
            )
    await drain(await client.chat.completions.create(model="electron", messages=USER, stream=True))
    assert [r.cut for r in server.requests] == [True, True, False]
    await eventually(lambda: server.in_flight == 0)


async def test_stall_delays_the_headers_past_a_first_byte_timeout(
    server: ElectronServer,
) -> None:
    server.faults.stall_next(1, seconds=30)
    client = client_for(server, timeout=httpx2.Timeout(5, read=0.3))
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="electron", messages=USER, stream=True)
    assert server.in_flight == 1  # the stalled request is still held by the server
    await drain(await client.chat.completions.create(model="electron", messages=USER, stream=True))
    assert [r.status for r in server.requests] == [None, 200]


async def test_ttft_delay_comes_after_the_role_chunk(server: ElectronServer) -> None:
    server.ttft_ms = 30_000
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(timeout=httpx2.Timeout(5, read=0.3))
        )
        body = {"messages": USER, "stream": True}
        response = await stack.enter_async_context(
            http.stream("POST", server.base_url + "/chat/completions", json=body)
        )
        pieces = response.aiter_raw()
        first = await pieces.__anext__()
        assert b'"role":"assistant"' in first
        with pytest.raises(httpx2.ReadTimeout):
            await pieces.__anext__()


async def test_token_delay_is_settable_at_run_time(server: ElectronServer) -> None:
    server.token_ms = 1
    client = client_for(server)
    reply = await client.chat.completions.create(model="electron", messages=USER)
    assert reply.choices[0].message.content == "Hello! How can I help you today?"


async def test_pause_after_goes_quiet_mid_stream_for_the_next_stream_only(
    server: ElectronServer,
) -> None:
    server.faults.pause_after(chunks=2, seconds=30)  # role chunk, first word, then quiet
    client = client_for(server, timeout=httpx2.Timeout(5, read=0.3))
    stream = await client.chat.completions.create(model="electron", messages=USER, stream=True)
    role = await stream.__anext__()
    word = await stream.__anext__()
    assert role.choices[0].delta.role == "assistant" and word.choices[0].delta.content
    with pytest.raises(openai.APITimeoutError):
        await stream.__anext__()
    await stream.close()
    assert server.faults.pending["pauses"] == 0
    await drain(await client.chat.completions.create(model="electron", messages=USER, stream=True))
