"""The Lightning-compatible fake: the streaming WebSocket protocol and the HTTP endpoint.

WebSocket on ``ws_url`` (the ``websockets`` asyncio server); HTTP on a second port
(``http_url``), because the ``websockets`` handshake parser refuses any request body.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import Counter
from types import TracebackType
from typing import Any

import anyio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request as WSRequest
from websockets.http11 import Response as WSResponse

from voiceagent.testing._http import HTTPServer, Request, Response
from voiceagent.testing._serving import RunsInThread
from voiceagent.testing.lightning import voices
from voiceagent.testing.lightning.faults import (
    CONCURRENCY_CODE,
    CONCURRENCY_MESSAGE,
    Faults,
    InjectedError,
)
from voiceagent.testing.lightning.websocket import RESPONSE_IDS, Connection, WebSocketSide
from voiceagent.testing.lightning.wire import (
    LiveRequest,
    RecordedTTSRequest,
    http_error,
    idle_timeout_from,
    parse_http_body,
    wav_bytes,
    wire_logger,
)

logger = logging.getLogger(__name__)

WS_PATH = "/waves/v1/tts/live"
HTTP_PATH = "/waves/v1/tts"


class LightningServer(WebSocketSide, RunsInThread):
    """A local Lightning-compatible TTS server over real sockets (a fake, not a voice model).

    Runs in the caller's event loop (``async with``, asyncio only), or in a thread
    (``running_in_thread``). ``pace`` is seconds spent sending per second of audio
    (0 = as fast as possible). ``response_ids``: ``"server"`` (the documented shape: a
    server UUID in ``request_id``, the client's id in ``external_request_id``), ``"echo"``
    (the client's id in ``request_id``) or ``"uuid-only"`` (the client's id never named).
    ``close_after_complete=False`` keeps a socket open after ``complete``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        http_port: int = 0,
        account_limit: int = 1,
        complete_backoff_default_ms: float = 4000.0,
        idle_timeout_s: float = 60.0,
        first_byte_ms: float = 0.0,
        close_after_complete: bool = True,
        response_ids: str = "server",
        voice: str = "espeak",
        api_key: str | None = None,
        pace: float = 0.0,
        chunk_ms: float = 40.0,
        faults: Faults | None = None,
    ) -> None:
        self.host = host
        self.account_limit = account_limit
        self.complete_backoff_default_ms = complete_backoff_default_ms
        self.idle_timeout_s = idle_timeout_s
        self.first_byte_ms = first_byte_ms
        self.close_after_complete = close_after_complete
        if response_ids not in RESPONSE_IDS:
            raise ValueError(f"response_ids must be one of {', '.join(RESPONSE_IDS)}")
        self.response_ids = response_ids
        self.voice = voices.resolve_voice(voice)
        self.pace = pace
        self.chunk_ms = chunk_ms
        self.faults = faults or Faults()
        self.requests: list[RecordedTTSRequest] = []
        self.connections = 0
        self.keepalives = 0
        self.last_keepalive: dict[str, Any] | str | None = None
        self.idle_closes = 0
        self.active: Counter[str] = Counter()
        self.connections_open: set[Connection] = set()
        self.peak_active: Counter[str] = Counter()  # per account
        self._api_key = api_key
        self._port = port
        self._ws_server: Server | None = None
        self._http = HTTPServer(self._serve_http, host, http_port)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> LightningServer:
        self._ws_server = await serve(
            self._serve_socket,
            self.host,
            self._port,
            process_request=self._check_upgrade,
            compression=None,
            max_size=2**20,
            logger=wire_logger,
        )
        await self._http.__aenter__()
        logger.info("Lightning fake listening on %s and %s", self.ws_url, self.http_url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._ws_server = self._ws_server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        await self._http.__aexit__(exc_type, exc, tb)

    @property
    def port(self) -> int:
        if self._ws_server is None:
            raise RuntimeError("the server is not running")
        return int(self._ws_server.sockets[0].getsockname()[1])

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self._http.port}{HTTP_PATH}"

    @property
    def max_active(self) -> int:
        """The most requests ever active at once on one account."""
        return max(self.peak_active.values(), default=0)

    # -- accounts ----------------------------------------------------------------------

    def _account(self, authorization: str | None) -> str | None:
        """The account a bearer key names ('' without a key); None when refused."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
        if self._api_key is not None and not hmac.compare_digest(key, self._api_key):
            return None
        return key

    def _admit(self, record: RecordedTTSRequest) -> InjectedError | None:
        """Take an account slot, or say why not."""
        injected = self.faults.take_error()
        if injected is not None:
            return injected
        if self.account_limit and self.active[record.account] >= self.account_limit:
            return InjectedError(CONCURRENCY_MESSAGE, CONCURRENCY_CODE)
        self.active[record.account] += 1
        peak = max(self.peak_active[record.account], self.active[record.account])
        self.peak_active[record.account] = peak
        return None

    def _release(self, live: LiveRequest, status: str) -> None:
        if live.released:
            return
        live.released = True
        live.record.status = status
        live.record.ended_at = time.monotonic()
        self.active[live.record.account] -= 1

    # -- WebSocket ---------------------------------------------------------------------

    def _check_upgrade(self, connection: ServerConnection, request: WSRequest) -> WSResponse | None:
        if request.path.split("?", 1)[0].rstrip("/") != WS_PATH:
            return connection.respond(404, f"no WebSocket endpoint at this path; use {WS_PATH}\n")
        if self._account(request.headers.get("Authorization")) is None:
            return connection.respond(401, "invalid or missing API key\n")
        return None

    async def _serve_socket(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        headers: Headers = ws.request.headers
        account = self._account(headers.get("Authorization")) or ""
        timeout = idle_timeout_from(ws.request.path, self.idle_timeout_s)
        conn: Connection | None = None
        try:
            async with anyio.create_task_group() as tg:
                conn = Connection(self.connections, ws, account, tg)
                self.connections_open.add(conn)
                await self._receive(conn, timeout)
                tg.cancel_scope.cancel()
        finally:
            if conn is not None:
                self.connections_open.discard(conn)
                self._release_all(conn)

    # -- HTTP --------------------------------------------------------------------------

    async def _serve_http(self, request: Request) -> Response:
        if request.path.rstrip("/") != HTTP_PATH:
            return http_error(404, f"no route for {request.method} {request.path}", "not_found")
        if request.method != "POST":
            return http_error(405, f"use POST for {HTTP_PATH}", "method_not_allowed")
        account = self._account(request.header("authorization"))
        if account is None:
            return http_error(401, "invalid or missing API key", "unauthorized")
        body, problem = parse_http_body(request.body)
        if body is None:
            return http_error(400, problem, "bad_request")
        rid = f"http-{len(self.requests) + 1}"
        record = RecordedTTSRequest(rid, 0, account, "http", {k: v for k, v in body.items()})
        record.fragments.append(str(record.config.pop("text")))
        record.accept = request.header("accept")
        self.requests.append(record)
        refusal = self._admit(record)
        if refusal is not None:
            record.status, record.error = "refused", refusal.code
            status = refusal.http_status
            return http_error(status, refusal.message, refusal.code, retry_after=status == 429)
        live = LiveRequest(record, 0.0)
        try:
            delay = self.first_byte_ms + self.faults.take_delay()
            if delay > 0:
                await anyio.sleep(delay / 1000)
            rate, speed = int(body["sample_rate"]), float(body["speed"])
            pcm = await voices.render(self.voice, record.text, rate, speed, str(body["language"]))
        finally:
            self._release(live, "complete")
        record.samples = len(pcm) // 2
        if body["output_format"] == "wav":
            return Response(200, [("content-type", "audio/wav")], wav_bytes(pcm, rate))
        return Response(200, [("content-type", "audio/pcm")], pcm)
