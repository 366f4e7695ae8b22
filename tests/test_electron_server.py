"""The Electron simulator speaks Electron's wire format over a real socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import pytest

from voiceagent.testing.electron import ElectronServer, key_fingerprint_of

USER = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


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


async def raw_events(server: ElectronServer, body: dict[str, Any]) -> tuple[httpx2.Response, bytes]:
    async with (
        httpx2.AsyncClient() as http,
        http.stream("POST", server.base_url + "/chat/completions", json=body) as response,
    ):
        raw = b"".join([piece async for piece in response.aiter_raw()])
    return response, raw


def sse_payloads(raw: bytes) -> list[str]:
    events = raw.split(b"\n\n")
    assert events[-1] == b"", "the body ends with a blank line"
    assert all(e.startswith(b"data: ") for e in events[:-1])
    return [e[len(b"data: ") :].decode() for e in events[:-1]]


async def test_stream_is_chunked_sse_with_role_content_finish_usage_and_done(
    server: ElectronServer,
) -> None:
    body = {
        "model": "electron",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response, raw = await raw_events(server, body)
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "electron" for c in chunks)
    role, *deltas, finish, usage = chunks
    assert role["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "finish_reason": None,
            "logprobs": None,
        }
    ]
    words = [d["choices"][0]["delta"]["content"] for d in deltas]
    assert len(words) > 1 and all(w.startswith(" ") for w in words[1:])
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == len(words)
    assert usage["usage"]["total_tokens"] == (
        usage["usage"]["prompt_tokens"] + usage["usage"]["completion_tokens"]
    )
    assert usage["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


async def test_no_usage_chunk_without_include_usage(server: ElectronServer) -> None:
    _, raw = await raw_events(server, {"messages": USER, "stream": True})
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_model_is_echoed(server: ElectronServer) -> None:
    reply = await client_for(server).chat.completions.create(
        model="electron-custom",
        messages=USER,
    )
    assert reply.model == "electron-custom"


async def test_tool_call_fragments_reassemble_into_json_with_distinct_indexes() -> None:
    script = [
        {
            "text": "Checking both.",
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}},
                {"name": "get_weather", "arguments": {"city": "New York"}},
            ],
        }
    ]
    async with ElectronServer(script=script) as server:
        stream = await client_for(server).chat.completions.create(
            model="electron",
            messages=USER,
            tools=[WEATHER_TOOL],
            stream=True,
        )
        calls: dict[int, dict[str, str]] = {}
        fragments: dict[int, int] = {}
        finish = None
        async for chunk in stream:
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                if call.index not in calls:
                    assert call.id and call.type == "function" and call.function
                    assert call.function.arguments == ""
                    calls[call.index] = {
                        "id": call.id,
                        "name": call.function.name or "",
                        "args": "",
                    }
                    fragments[call.index] = 0
                else:
                    assert call.id is None and call.function and call.function.name is None
                    calls[call.index]["args"] += call.function.arguments or ""
                    fragments[call.index] += 1
    assert sorted(calls) == [0, 1]
    assert calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[0]["args"]) == {"city": "Paris", "days": 2}
    assert json.loads(calls[1]["args"]) == {"city": "New York"}
    assert all(n > 2 for n in fragments.values())
    assert finish == "tool_calls"


@pytest.mark.parametrize("prefix", ["/waves/v1", "/v1"])
async def test_both_paths_serve_chat_completions(server: ElectronServer, prefix: str) -> None:
    client = client_for(server, base_url=server.root_url + prefix)
    reply = await client.chat.completions.create(model="electron", messages=USER)
    assert reply.choices[0].message.content
    assert server.requests[-1].path == prefix + "/chat/completions"


async def test_non_streamed_completion_has_message_and_usage(server: ElectronServer) -> None:
    reply = await client_for(server).chat.completions.create(
        model="electron",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    assert reply.object == "chat.completion"
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check the weather for you."
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert reply.usage and reply.usage.prompt_tokens > 0


async def test_success_carries_x_request_id_that_is_recorded(server: ElectronServer) -> None:
    raw = await client_for(server).chat.completions.with_raw_response.create(
        model="electron",
        messages=USER,
        stream=True,
    )
    request_id = raw.headers.get("x-request-id")
    async for _ in raw.parse():
        pass
    assert request_id and request_id.startswith("req_")
    assert server.requests[-1].request_id == request_id
    assert server.requests[-1].status == 200


BAD_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "n above 1": ({"messages": USER, "n": 2}, "n"),
    "empty tools": ({"messages": USER, "tools": []}, "tools"),
    "too many messages": ({"messages": USER * 201}, "messages"),
    "too many tools": ({"messages": USER, "tools": [WEATHER_TOOL] * 65}, "tools"),
    "too many stop strings": ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    "missing messages": ({"model": "electron"}, "messages"),
    "messages not a list": ({"messages": "hi"}, "messages"),
    "message without role": ({"messages": [{"content": "hi"}]}, "messages.0.role"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_invalid_requests_get_400_in_the_error_envelope(
    server: ElectronServer, case: str
) -> None:
    body, path = BAD_BODIES[case]
    async with httpx2.AsyncClient() as http:
        response = await http.post(server.base_url + "/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["details"][0]["path"] == path
    assert error["details"][0]["message"] == error["message"]


async def test_bad_json_gets_400(server: ElectronServer) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            server.base_url + "/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_openai_client_sees_400_with_the_request_id(server: ElectronServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client_for(server).chat.completions.create(model="electron", messages=USER, n=2)
    assert caught.value.request_id == server.requests[-1].request_id


async def test_api_key_is_required_when_set_and_never_recorded() -> None:
    async with ElectronServer(api_key="right-key") as server:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client_for(server).chat.completions.create(model="electron", messages=USER)
        assert caught.value.body["type"] == "authentication_error"
        async with httpx2.AsyncClient() as http:
            missing = await http.post(
                server.base_url + "/chat/completions", json={"messages": USER}
            )
        good = client_for(server, api_key="right-key")
        await good.chat.completions.create(model="electron", messages=USER)
    assert missing.status_code == 401
    wrong, absent, right = server.requests
    assert [wrong.status, absent.status, right.status] == [401, 401, 200]
    assert wrong.headers["authorization"] == right.headers["authorization"] == "Bearer ***"
    assert not absent.key_sent and right.key_sent
    assert right.key_fingerprint == key_fingerprint_of("right-key") != wrong.key_fingerprint
    assert "right-key" not in repr(server.requests) and "test-key" not in repr(server.requests)


async def test_unknown_path_is_404_with_request_id(server: ElectronServer) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(server.root_url + "/waves/v1/embeddings", json={})
    assert response.status_code == 404
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


async def test_health_and_models(server: ElectronServer) -> None:
    async with httpx2.AsyncClient() as http:
        health = await http.get(server.root_url + "/health")
        models = await http.get(server.root_url + "/v1/models")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert "x-request-id" in health.headers
    listed = await client_for(server).models.list()
    assert [m.id for m in listed.data] == ["electron"]
    assert models.json()["data"][0]["id"] == "electron"


async def test_requests_are_recorded_with_parsed_body(server: ElectronServer) -> None:
    await client_for(server).chat.completions.create(
        model="electron",
        messages=USER,
        temperature=0,
        seed=7,
    )
    (entry,) = server.requests
    assert (entry.method, entry.path) == ("POST", "/waves/v1/chat/completions")
    assert entry.body["messages"] == USER and entry.body["seed"] == 7
    assert entry.usage is not None and entry.usage["prompt_tokens"] > 0


async def test_one_client_reuses_one_connection(server: ElectronServer) -> None:
    client = client_for(server)
    for _ in range(3):
        stream = await client.chat.completions.create(model="electron", messages=USER, stream=True)
        async for _chunk in stream:
            pass
    assert len(server.requests) == 3
    assert server.connections == 1


async def test_max_tokens_cuts_with_finish_reason_length(server: ElectronServer) -> None:
    reply = await client_for(server).chat.completions.create(
        model="electron",
        messages=USER,
        max_tokens=2,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "Hello! How"
    assert reply.usage and reply.usage.completion_tokens == 2


async def test_stop_string_ends_the_reply_before_it(server: ElectronServer) -> None:
    reply = await client_for(server).chat.completions.create(
        model="electron",
        messages=USER,
        stop=[" help"],
    )
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == "Hello! How can I"


def test_runs_in_a_thread_for_synchronous_code() -> None:
    with ElectronServer.running_in_thread() as server:
        with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as client:
            reply = client.chat.completions.create(model="electron", messages=USER)
        assert reply.choices[0].message.content
        assert server.base_url.endswith("/waves/v1")
