"""The stream's deadlines: no first token within ``first_token_timeout`` is a timeout before
use (retried); a gap longer than ``stall_timeout`` once the reply began breaks the stream
(typed, never retried). The local Electron server goes quiet on cue over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from openai.types.chat import ChatCompletionChunk

from voiceagent.llm import (
    ElectronClient,
    ElectronStream,
    ElectronTimeoutError,
    RetryPolicy,
    StreamInterruptedError,
)
from voiceagent.testing.electron import ElectronServer

REPLY = "Hello there, it is sunny today."
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def server() -> AsyncIterator[ElectronServer]:
    async with ElectronServer(script=[{"text": REPLY}]) as server:
        yield server


def client_for(server: ElectronServer, **kwargs: Any) -> ElectronClient:
    kwargs.setdefault("retry", RetryPolicy(scale=0.001))
    return ElectronClient(server.base_url, **kwargs)


async def collect(client: ElectronClient) -> tuple[str, ElectronStream]:
    text = ""
    async with client.stream(HELLO) as stream:
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    return text, stream


def test_the_deadlines_have_voice_friendly_defaults() -> None:
    client = ElectronClient("http://127.0.0.1:1/v1")
    assert client.first_token_timeout == 8.0
    assert client.stall_timeout == 4.0


async def test_no_first_token_after_the_role_chunk_is_retried(server: ElectronServer) -> None:
    server.faults.pause_after(chunks=1, seconds=30)  # the role chunk, then nothing
    text, stream = await collect(client_for(server, first_token_timeout=0.5))
    assert text == REPLY
    assert stream.attempts == 2 and len(server.requests) == 2


async def test_no_first_token_on_any_attempt_ends_in_a_timeout_error(
    server: ElectronServer,
) -> None:
    server.faults.pause_after(chunks=1, seconds=30, times=3)
    client = client_for(
        server, first_token_timeout=0.2, retry=RetryPolicy(max_attempts=3, scale=0.001)
    )
    with pytest.raises(ElectronTimeoutError) as caught:
        await collect(client)
    assert caught.value.attempts == 3 and len(server.requests) == 3
    assert "first_token_timeout" in str(caught.value)


async def test_a_stall_after_the_first_token_breaks_the_stream_unretried(
    server: ElectronServer,
) -> None:
    server.faults.pause_after(chunks=2, seconds=30)  # role, one word, then nothing
    received: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with client_for(server, stall_timeout=0.2).stream(HELLO) as stream:
            async for chunk in stream:
                received.append(chunk)
    assert len(server.requests) == 1 and caught.value.attempts == 1
    assert caught.value.content_chars > 0 and "stall_timeout" in str(caught.value)
    assert caught.value.request_id == server.requests[0].request_id


async def test_tokens_slower_than_the_stall_timeout_break_the_stream() -> None:
    async with ElectronServer(script=[{"text": REPLY}], token_ms=1000) as slow:
        with pytest.raises(StreamInterruptedError):
            await collect(client_for(slow, stall_timeout=0.2))
        assert len(slow.requests) == 1


async def test_a_slow_reader_is_not_a_stall(server: ElectronServer) -> None:
    text = ""
    async with client_for(server, stall_timeout=0.2).stream(HELLO) as stream:
        async for chunk in stream:
            if not text:
                await anyio.sleep(0.3)  # the reader is busy, the server is not late
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == REPLY and len(server.requests) == 1


async def test_a_stall_after_the_finish_ends_the_stream_without_usage(
    server: ElectronServer,
) -> None:
    words = len(REPLY.split())
    server.faults.pause_after(chunks=2 + words, seconds=30)  # after role, words and finish
    text, stream = await collect(client_for(server, stall_timeout=0.2))
    assert text == REPLY and stream.usage is None and len(server.requests) == 1
