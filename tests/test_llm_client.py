"""ElectronClient against the local Electron-compatible server, over real HTTP and openai."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

from voiceagent.llm import (
    AuthenticationError,
    BadRequestError,
    ElectronClient,
    ElectronConnectionError,
    ElectronError,
    ElectronStream,
    ElectronTimeoutError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamInterruptedError,
    Usage,
)
from voiceagent.testing.electron import ElectronServer, key_fingerprint_of

KEY = "sk-test-DO-NOT-LOG-1234"
REPLY = "Hello there, it is sunny today."
FAST = RetryPolicy(scale=0.001)
HELLO = [{"role": "user", "content": "hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
async def server() -> AsyncIterator[ElectronServer]:
    async with ElectronServer(script=[{"text": REPLY}]) as server:
        yield server


def client_for(server: ElectronServer, **kwargs: Any) -> ElectronClient:
    kwargs.setdefault("retry", FAST)
    return ElectronClient(server.base_url, kwargs.pop("api_key", None), **kwargs)


async def collect(
    client: ElectronClient, messages: list[dict[str, Any]] = HELLO, **kwargs: Any
) -> tuple[list[ChatCompletionChunk], ElectronStream]:
    chunks = []
    async with client.stream(messages, **kwargs) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks, stream


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def role_chunks(chunks: list[ChatCompletionChunk]) -> int:
    return sum(1 for c in chunks if c.choices and c.choices[0].delta.role == "assistant")


async def test_a_request_streams_content_then_the_usage_chunk(server: ElectronServer) -> None:
    client = client_for(server)
    chunks, stream = await collect(client)
    assert text_of(chunks) == REPLY
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert stream.attempts == 1
    assert stream.request_id == server.requests[0].request_id
    recorded = server.requests[0].usage
    assert recorded is not None
    assert stream.usage == Usage(recorded["prompt_tokens"], recorded["completion_tokens"], 0)
    assert client.usage.requests == 1 and client.usage.completion == stream.usage.completion


async def test_every_request_streams_with_usage_and_names_its_source(
    server: ElectronServer,
) -> None:
    client = client_for(server, api_key=KEY)
    server.faults.fail_next(1, status=503)
    await collect(client)
    await collect(client, tools=[WEATHER_TOOL])
    assert len(server.requests) == 3
    for request in server.requests:
        assert request.body["stream"] is True
        assert request.body["stream_options"] == {"include_usage": True}
        assert request.headers["x-source"] == "voiceagent"
        assert request.key_fingerprint == key_fingerprint_of(KEY)


async def test_tools_are_omitted_when_empty_and_tool_choice_with_them(
    server: ElectronServer,
) -> None:
    client = client_for(server)
    await collect(client, tools=[], tool_choice="auto")
    await collect(client, tools=[WEATHER_TOOL], tool_choice="auto")
    empty, given = server.requests[0].body, server.requests[1].body
    assert "tools" not in empty and "tool_choice" not in empty
    assert given["tools"] == [WEATHER_TOOL] and given["tool_choice"] == "auto"


async def test_sampling_options_pass_through_and_unset_ones_are_absent(
    server: ElectronServer,
) -> None:
    client = client_for(server)
    await collect(client, temperature=0, seed=7, max_tokens=50, stop=["\n\n"], model="electron-x")
    await collect(client)
    given, plain = server.requests[0].body, server.requests[1].body
    assert (given["temperature"], given["seed"], given["max_tokens"]) == (0, 7, 50)
    assert given["stop"] == ["\n\n"] and given["model"] == "electron-x"
    assert not {"temperature", "seed", "max_tokens", "stop"} & set(plain)
    assert plain["model"] == "electron"


async def test_without_a_key_no_authorization_header_is_sent(server: ElectronServer) -> None:
    await collect(client_for(server))
    assert not server.requests[0].key_sent
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("status", "error_cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (500, ServerError),
    ],
)
async def test_these_statuses_are_never_retried(
    server: ElectronServer, status: int, error_cls: type[ElectronError]
) -> None:
    server.faults.fail_next(3, status=status, message="nope")
    with pytest.raises(error_cls) as caught:
        await collect(client_for(server))
    assert len(server.requests) == 1
    assert caught.value.attempts == 1 and caught.value.status == status
    assert caught.value.request_id == server.requests[0].request_id
    assert "nope" in str(caught.value)


async def test_a_wrong_key_is_an_authentication_error_with_a_hint() -> None:
    async with ElectronServer(api_key="sk-right-key-000000") as server:
        with pytest.raises(AuthenticationError) as caught:
            await collect(client_for(server, api_key=KEY))
    assert caught.value.request_id == server.requests[0].request_id
    assert "SMALLEST_API_KEY" in str(caught.value) and KEY not in str(caught.value)


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},
        {"status": 502},
        {"status": 429},
        {"status": 429, "retry_after": 1},
        {"status": 429, "message": "Concurrency limit reached"},
    ],
    ids=["503", "502", "429", "429-retry-after", "429-concurrency"],
)
async def test_these_failures_are_retried_until_success(
    server: ElectronServer, fault: dict[str, Any]
) -> None:
    server.faults.fail_next(2, **fault)
    chunks, stream = await collect(client_for(server))
    assert text_of(chunks) == REPLY
    assert stream.attempts == 3
    assert [r.status for r in server.requests] == [fault["status"]] * 2 + [200]
    assert stream.request_id == server.requests[-1].request_id


async def test_retry_after_beyond_the_cap_fails_at_once(server: ElectronServer) -> None:
    server.faults.fail_next(1, status=429, retry_after=30)
    with pytest.raises(RateLimitError) as caught:
        await collect(client_for(server))
    assert len(server.requests) == 1
    assert caught.value.retry_after == 30 and "retry after 30 s" in str(caught.value)


async def test_at_most_five_attempts_then_a_typed_error(server: ElectronServer) -> None:
    server.faults.fail_next(9, status=503)
    with pytest.raises(ServerError) as caught:
        await collect(client_for(server))
    assert len(server.requests) == 5
    assert caught.value.attempts == 5
    assert caught.value.request_id == server.requests[-1].request_id


async def test_nothing_listening_is_a_connection_error_after_five_attempts() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ElectronClient(f"http://127.0.0.1:{port}/waves/v1", retry=FAST)
    with pytest.raises(ElectronConnectionError) as caught:
        await collect(client)
    assert caught.value.attempts == 5


@pytest.mark.parametrize("cut", [0, 1], ids=["before-any-chunk", "after-the-role-chunk"])
async def test_a_stream_cut_before_its_first_delta_is_retried_transparently(
    server: ElectronServer, cut: int
) -> None:
    server.faults.cut_after(chunks=cut)
    chunks, stream = await collect(client_for(server))
    assert stream.attempts == 2 and len(server.requests) == 2
    assert text_of(chunks) == REPLY
    assert role_chunks(chunks) == 1  # the retry's role chunk is not handed on again
    assert stream.request_id == server.requests[1].request_id


async def test_a_stream_cut_after_its_first_content_is_not_retried(
    server: ElectronServer,
) -> None:
    server.faults.cut_after(chunks=3)  # role, then two content deltas
    received: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with client_for(server).stream(HELLO) as stream:
            async for chunk in stream:
                received.append(chunk)
    error = caught.value
    assert len(server.requests) == 1 and error.attempts == 1
    assert error.chunks == len(received) == 3
    assert error.content_chars == len(text_of(received)) > 0
    assert error.tool_call_fragments == 0
    assert error.request_id == server.requests[0].request_id


async def test_a_stall_beyond_the_first_byte_timeout_is_retried(server: ElectronServer) -> None:
    server.faults.stall_next(1, seconds=30)
    chunks, stream = await collect(client_for(server, first_byte_timeout=1.0))
    assert stream.attempts == 2 and text_of(chunks) == REPLY
    assert stream.request_id == server.requests[1].request_id


async def test_stalls_on_every_attempt_end_in_a_timeout_error(server: ElectronServer) -> None:
    server.faults.stall_next(3, seconds=30)
    policy = RetryPolicy(max_attempts=3, scale=0.001)
    with pytest.raises(ElectronTimeoutError) as caught:
        await collect(client_for(server, first_byte_timeout=0.2, retry=policy))
    assert caught.value.attempts == 3 and len(server.requests) == 3


async def test_a_tool_call_stream_counts_fragments_when_cut() -> None:
    async with ElectronServer(
        script=[{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Pune"}}]}]
    ) as tool_server:
        tool_server.faults.cut_after(chunks=3)
        with pytest.raises(StreamInterruptedError) as caught:
            await collect(client_for(tool_server), tools=[WEATHER_TOOL])
    assert caught.value.tool_call_fragments == 2 and caught.value.attempts == 1
