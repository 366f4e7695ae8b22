"""The Electron-compatible simulator server: routes, limits, faults, recording, SSE streaming.

A simulator, not a model: replies come from a script or a small rule-based brain.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from voiceagent.testing._http import AbortConnection, HTTPServer, Request, Response
from voiceagent.testing._serving import RunsInThread
from voiceagent.testing.electron import brain, chunks
from voiceagent.testing.electron.faults import Faults
from voiceagent.testing.electron.prefix_cache import PrefixCache, request_tokens
from voiceagent.testing.electron.recording import RecordedRequest, bearer_key, record
from voiceagent.testing.electron.reply import Rendered, render
from voiceagent.testing.electron.script import Script
from voiceagent.testing.electron.validation import (
    CONTEXT_TOKENS,
    RequestError,
    error_response,
    parse_body,
    validate_chat,
)

logger = logging.getLogger(__name__)

CHAT_PATHS = ("/waves/v1/chat/completions", "/v1/chat/completions")
MODEL_PATHS = ("/waves/v1/models", "/v1/models")
MODEL = "electron"

ScriptLike = Script | Sequence[Mapping[str, Any]] | str | Path | None


class ElectronServer(RunsInThread):
    """A local Electron-compatible chat-completions server over a real TCP socket.

    Runs in the caller's event loop (``async with``), or in a thread (``running_in_thread``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        concurrency: int = 0,
        script: ScriptLike = None,
        ttft_ms: float = 0.0,
        token_ms: float = 0.0,
        cache_ttl_s: float = 300.0,
        api_key: str | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.script = _load_script(script)
        self.ttft_ms = ttft_ms
        self.token_ms = token_ms
        self.cache = PrefixCache(ttl_s=cache_ttl_s)
        self.faults = faults or Faults()
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._api_key = api_key
        self._http = HTTPServer(self._handle, host, port)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> ElectronServer:
        await self._http.__aenter__()
        logger.info("Electron simulator listening on %s", self.base_url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._http.__aexit__(exc_type, exc, tb)

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        async with self:
            await anyio.sleep_forever()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def root_url(self) -> str:
        return f"http://{self._http.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/waves/v1"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._http.connections

    @property
    def cache_ttl_s(self) -> float:
        return self.cache.ttl_s

    @cache_ttl_s.setter
    def cache_ttl_s(self, value: float) -> None:
        self.cache.ttl_s = value

    # -- routing -----------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        request_id = "req_" + secrets.token_hex(12)
        entry = record(request, request_id)
        self.requests.append(entry)
        response = await self._route(request, entry)
        if not any(name.lower() == "x-request-id" for name, _ in response.headers):
            response.headers.append(("x-request-id", request_id))
        entry.status = response.status
        logger.info("%s %s -> %d (%s)", request.method, request.path, response.status, request_id)
        return response

    async def _route(self, request: Request, entry: RecordedRequest) -> Response:
        path, rid = request.path.rstrip("/") or "/", entry.request_id
        if path in CHAT_PATHS:
            if request.method != "POST":
                return error_response(405, f"Use POST for {path}", rid, code="method_not_allowed")
            return await self._admit(request, entry)
        if path == "/health" and request.method == "GET":
            return Response.json(200, {"status": "ok"})
        if path in MODEL_PATHS and request.method == "GET":
            if not self._authorised(request):
                return error_response(401, None, rid)
            models = [{"id": MODEL, "object": "model", "created": 0, "owned_by": "simulator"}]
            return Response.json(200, {"object": "list", "data": models})
        return error_response(404, f"No route for {request.method} {path}", rid, code="not_found")

    def _authorised(self, request: Request) -> bool:
        if self._api_key is None:
            return True
        key = bearer_key(request)
        return key is not None and hmac.compare_digest(key.encode(), self._api_key.encode())

    # -- chat completions --------------------------------------------------------------

    async def _admit(self, request: Request, entry: RecordedRequest) -> Response:
        """Count the request in flight from here until its response has been sent."""
        if self.concurrency and self.in_flight >= self.concurrency:
            return error_response(
                429,
                "Concurrency limit reached",
                entry.request_id,
                code="concurrency_limit",
                headers=[("retry-after", "1")],
            )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1

        try:
            response = await self._chat(request, entry)
        except BaseException:
            release()
            raise
        response.finished = release
        return response

    async def _chat(self, request: Request, entry: RecordedRequest) -> Response:
        rid = entry.request_id
        stall = self.faults.take_stall()
        if stall:
            await anyio.sleep(stall)
        failure = self.faults.take_failure()
        if failure is not None:
            extra = [("retry-after", failure.retry_after)] if failure.retry_after else []
            return error_response(
                failure.status, failure.message, rid, code="injected_fault", headers=extra
            )
        if not self._authorised(request):
            return error_response(401, None, rid, code="invalid_api_key")
        try:
            body = parse_body(request.body)
            validate_chat(body)
        except RequestError as exc:
            return error_response(exc.status, exc.message, rid, code=exc.code, path=exc.path)
        tokens = request_tokens(body["messages"], body.get("tools"))
        max_tokens = body.get("max_tokens")
        if len(tokens) + (max_tokens or 0) > CONTEXT_TOKENS:
            return error_response(
                400,
                f"This request needs {len(tokens)} prompt tokens (plus max_tokens); "
                f"the context window is {CONTEXT_TOKENS}",
                rid,
                code="context_length_exceeded",
                path="messages",
            )
        cached = self.cache.lookup_and_remember(tokens)
        rendered = self._render(body)
        usage = chunks.usage(len(tokens), rendered.completion_tokens, cached)
        entry.usage = usage
        model = body.get("model") or MODEL
        completion = chunks.Completion("chatcmpl-" + secrets.token_hex(12), int(time.time()), model)
        if not body.get("stream"):
            await anyio.sleep((self.ttft_ms + self.token_ms * len(rendered.deltas)) / 1000)
            return Response.json(200, chunks.completion_body(completion, rendered, usage))
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        cut = self.faults.take_cut()
        entry.cut = cut is not None
        pause = self.faults.take_pause()
        events = self._events(completion, rendered, usage if include_usage else None, cut, pause)
        headers = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        return Response(200, headers, stream=events)

    def _render(self, body: Mapping[str, Any]) -> Rendered:
        messages, tools = body["messages"], body.get("tools")
        reply = self.script.round_for(messages) if self.script is not None else None
        if reply is None:
            reply = brain.think(messages, tools, body.get("tool_choice"))
        stop = body.get("stop")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        return render(reply, max_tokens=body.get("max_tokens"), stop=stops)

    async def _events(
        self,
        completion: chunks.Completion,
        rendered: Rendered,
        usage: dict[str, Any] | None,
        cut: int | None,
        pause: tuple[int, float] | None = None,
    ) -> AsyncIterator[bytes]:
        sent = 0

        async def allowed() -> bool:
            if pause is not None and sent == pause[0]:
                await anyio.sleep(pause[1])  # the injected pause: the model goes quiet
            return cut is None or sent < cut

        if not await allowed():
            raise AbortConnection
        yield chunks.sse(chunks.role_chunk(completion))
        sent += 1
        for i, delta in enumerate(rendered.deltas):
            delay = self.ttft_ms if i == 0 else self.token_ms
            if delay > 0:
                await anyio.sleep(delay / 1000)
            if not await allowed():
                raise AbortConnection
            yield chunks.sse(chunks.delta_chunk(completion, delta))
            sent += 1
        if self.token_ms > 0 and rendered.deltas:  # the finish token takes its time too
            await anyio.sleep(self.token_ms / 1000)
        tail = [chunks.sse(chunks.finish_chunk(completion, rendered.finish_reason))]
        if usage is not None:
            tail.append(chunks.sse(chunks.usage_chunk(completion, usage)))
        tail.append(chunks.DONE)
        for event in tail:
            if not await allowed():
                raise AbortConnection
            yield event
            sent += 1


def _load_script(script: ScriptLike) -> Script | None:
    if script is None or isinstance(script, Script):
        return script
    if isinstance(script, (str, Path)):
        return Script.from_file(script)
    return Script.from_data(list(script))
