"""A tiny HTTP/1.1 server core (h11 + anyio TCP) for the shipped local fakes.

Generic on purpose: keep-alive, Content-Length bodies, whole or chunked streaming responses,
abrupt connection close for fault injection, clean shutdown. No routing, no protocol knowledge.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any

import anyio
import h11
from anyio.abc import SocketAttribute, SocketStream, TaskGroup

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
_RECEIVE_SIZE = 65536


class AbortConnection(Exception):
    """Raised by a streaming body to drop the TCP connection at once, mid-response."""


@dataclass
class Request:
    """One parsed HTTP request with its whole body read."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection_id: int

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key == lowered:
                return value
        return None


@dataclass
class Response:
    """A whole response (``body``) or a streamed one (``stream``, sent chunked).

    ``finished`` is called exactly once when the response is over: fully sent, aborted,
    failed to send, or cancelled.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    finished: Callable[[], None] | None = None

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, [("content-type", "application/json"), *(headers or [])], body)


Handler = Callable[[Request], Awaitable[Response]]


class HTTPServer:
    """Serve ``handler`` on a real TCP socket inside the caller's event loop.

    Use as an async context manager; leaving it cancels every open connection.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._scope: anyio.CancelScope | None = None
        self._runner: asyncio.Task[None] | None = None
        self._task_group: TaskGroup | None = None
        self.connections = 0  # TCP connections accepted so far

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not running")
        return self._port

    async def __aenter__(self) -> HTTPServer:
        listener = await anyio.create_tcp_listener(
            local_host=self._host, local_port=self._requested_port
        )
        self._port = listener.listeners[0].extra(SocketAttribute.local_port)
        self._scope = anyio.CancelScope()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): enter and exit in one task, as trio requires
            loop = None
        if loop is not None:
            # A task of its own, so that entering and exiting may happen in different tasks
            # (pytest-asyncio runs an async fixture's setup and teardown in different tasks).
            self._runner = loop.create_task(self._run(listener))
        else:
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
            task_group.start_soon(self._run, listener)
            self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._scope is not None:
            self._scope.cancel()
        runner, self._runner = self._runner, None
        if runner is not None:
            with anyio.CancelScope(shield=True):
                await runner
        task_group, self._task_group = self._task_group, None
        if task_group is not None:
            return await task_group.__aexit__(exc_type, exc, tb)
        return None

    async def _run(self, listener: anyio.abc.Listener[SocketStream]) -> None:
        assert self._scope is not None
        with self._scope:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._accept_forever, listener, task_group)

    async def _accept_forever(
        self, listener: anyio.abc.Listener[SocketStream], tg: TaskGroup
    ) -> None:
        async with listener:
            await listener.serve(self._serve_connection, task_group=tg)

    async def _serve_connection(self, stream: SocketStream) -> None:
        self.connections += 1
        connection_id = self.connections
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY_BYTES)
        async with stream:
            try:
                while True:
                    request = await _read_request(conn, stream, connection_id)
                    if request is None:
                        return
                    if not await self._respond(conn, stream, request):
                        return
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return
                    conn.start_next_cycle()
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send_whole(conn, stream, Response(exc.error_status_hint, body=b""))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                return
            except (h11.LocalProtocolError, AbortConnection):
                return

    async def _respond(self, conn: h11.Connection, stream: SocketStream, request: Request) -> bool:
        """Send the handler's response; False when the connection must be dropped."""
        try:
            response = await self._handler(request)
        except Exception:
            logger.exception("handler failed for %s %s", request.method, request.path)
            response = Response(500, [("content-type", "text/plain")], b"internal server error")
        try:
            if response.stream is None:
                await _send_whole(conn, stream, response)
                return True
            return await _send_streamed(conn, stream, response)
        finally:
            if response.finished is not None:
                response.finished()


async def _read_request(
    conn: h11.Connection, stream: SocketStream, connection_id: int
) -> Request | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(_RECEIVE_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                data = b""
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return Request(
                method=head.method.decode("ascii"),
                target=head.target.decode("ascii", "replace"),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers],
                body=bytes(body),
                connection_id=connection_id,
            )
        else:  # ConnectionClosed or PAUSED: nothing more to serve
            return None


def _head(response: Response, extra: list[tuple[str, str]]) -> h11.Response:
    names = {name.lower() for name, _ in response.headers}
    headers = list(response.headers) + [(k, v) for k, v in extra if k not in names]
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    return h11.Response(status_code=response.status, headers=headers, reason=reason)


async def _send_whole(conn: h11.Connection, stream: SocketStream, response: Response) -> None:
    head = _head(response, [("content-length", str(len(response.body)))])
    out = conn.send(head) or b""
    if response.body:
        out += conn.send(h11.Data(data=response.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    await stream.send(out)


async def _send_streamed(conn: h11.Connection, stream: SocketStream, response: Response) -> bool:
    assert response.stream is not None
    body = response.stream
    try:
        await stream.send(conn.send(_head(response, [("transfer-encoding", "chunked")])) or b"")
        async for piece in body:
            if piece:
                await stream.send(conn.send(h11.Data(data=piece)) or b"")
        await stream.send(conn.send(h11.EndOfMessage()) or b"")
    except AbortConnection:
        return False
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
    return True
