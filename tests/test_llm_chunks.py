"""Chunks as servers really send them: off-schema ones still read, a non-object is a clear
stream error (retried while nothing was used). A raw SSE server over a real socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from voiceagent.llm import ElectronClient, ElectronError, RetryPolicy, StreamInterruptedError

DONE = "data: [DONE]\n\n"


def event(data: object) -> str:
    return f"data: {json.dumps(data)}\n\n"


def content(text: str, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}], **extra}


FINISH = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


class RawSSEServer:
    """Answers each POST with the next body of ``bodies`` (an SSE stream), then closes."""

    def __init__(self, bodies: list[str]) -> None:
        self.bodies = bodies
        self.requests = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawSSEServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        body = self.bodies[min(self.requests, len(self.bodies) - 1)]
        self.requests += 1
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            + body.encode()
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def off_schema() -> AsyncIterator[RawSSEServer]:
    # no id, created, model or object; an extra field; a finish without index
    body = (
        event(content("Sunny ", vendor_note="x"))
        + event(content("today."))
        + event({"choices": [{"delta": {}, "finish_reason": "stop"}]})
        + DONE
    )
    async with RawSSEServer([body]) as server:
        yield server


async def read_all(url: str, retry: RetryPolicy | None = None) -> str:
    client = ElectronClient(url, "sk-test", retry=retry or RetryPolicy(scale=0.001))
    text = ""
    async with client.stream([{"role": "user", "content": "weather?"}]) as stream:
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
    return text


async def test_chunks_that_stray_from_the_schema_still_read(off_schema: RawSSEServer) -> None:
    assert await read_all(off_schema.url) == "Sunny today."
    assert off_schema.requests == 1


async def test_a_chunk_that_is_not_an_object_is_retried_before_use() -> None:
    bad = event(["not", "a", "chunk"]) + DONE
    good = event(content("Sunny.")) + event(FINISH) + DONE
    async with RawSSEServer([bad, good]) as server:
        assert await read_all(server.url) == "Sunny."
    assert server.requests == 2


async def test_a_chunk_that_is_not_an_object_after_content_interrupts_the_stream() -> None:
    body = event(content("Sunny ")) + event("garbage") + DONE
    async with RawSSEServer([body]) as server:
        with pytest.raises(StreamInterruptedError) as caught:
            await read_all(server.url)
    assert "not a JSON object" in str(caught.value)
    assert caught.value.content_chars == len("Sunny ") and server.requests == 1


GARBLED = 'data: {"choices": [{"index": 0, "delta": {"content": "Sun\n\n'  # cut mid-JSON


async def test_a_garbled_data_line_before_content_is_retried() -> None:
    good = event(content("Sunny.")) + event(FINISH) + DONE
    async with RawSSEServer([GARBLED + DONE, good]) as server:
        assert await read_all(server.url) == "Sunny."
    assert server.requests == 2


async def test_a_garbled_data_line_after_the_role_chunk_is_still_retried() -> None:
    role = event({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
    good = event(content("Sunny.")) + event(FINISH) + DONE
    async with RawSSEServer([role + GARBLED + DONE, good]) as server:
        assert await read_all(server.url) == "Sunny."
    assert server.requests == 2


async def test_a_garbled_data_line_after_content_interrupts_the_stream_typed() -> None:
    body = event(content("Sunny ")) + GARBLED + DONE
    async with RawSSEServer([body]) as server:
        with pytest.raises(StreamInterruptedError) as caught:
            await read_all(server.url)
    assert "not valid JSON" in str(caught.value)
    assert caught.value.content_chars == len("Sunny ") and server.requests == 1


async def test_garbled_data_lines_every_time_end_in_a_typed_error_after_the_budget() -> None:
    async with RawSSEServer([GARBLED + DONE]) as server:
        with pytest.raises(ElectronError) as caught:
            await read_all(server.url, RetryPolicy(max_attempts=3, scale=0.001))
    assert server.requests == 3 and caught.value.attempts == 3
    assert "not valid JSON" in str(caught.value)


async def test_a_garbled_data_line_after_content_ends_the_turn_in_its_apology() -> None:
    from voiceagent.agent import Agent
    from voiceagent.history import History
    from voiceagent.timeline import SessionClock, Timeline
    from voiceagent.turn import APOLOGY, TurnEngine

    body = event(content("Sunny ")) + GARBLED + DONE
    async with RawSSEServer([body]) as server:
        agent = Agent(instructions="You are a test agent.")
        engine = TurnEngine(
            agent,
            ElectronClient(server.url, retry=RetryPolicy(scale=0.001)),
            History(agent.instructions),
            Timeline(SessionClock()),
        )
        result = await engine.run("Weather?")
    assert result.reason == "error" and result.said == f"Sunny {APOLOGY}"
    assert server.requests == 1
