"""The websocket server a carrier's media stream dials: one ``PhoneTransport`` per call, the
carrier by path or detected, ``GET /health``, each carrier's upgrade check (``phone_auth``) and
a graceful drain."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import anyio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from voiceagent.adapters import carriers, twilio
from voiceagent.adapters.carriers import Serializer, base
from voiceagent.adapters.peer_socket import close_and_drop, converse
from voiceagent.adapters.phone_auth import PhoneAuth, SignatureConfigError, twilio_signature
from voiceagent.adapters.phone_transport import PhoneTransport
from voiceagent.wire_text import printable

logger = logging.getLogger(__name__)

# Each carrier's path forces it; on "/" the carrier is detected from the first messages
# (``carriers.detect``), or is the server's ``carrier`` when one is given (--carrier).
CALL_PATHS: dict[str, str | None] = {f"/{name}": name for name in carriers.CARRIERS} | {"/": None}
DETECT_MESSAGES = 4  # undetected messages on "/" before Twilio (the historic default) is assumed
MAX_MESSAGE_BYTES = 64 * 1024  # a Twilio message is well under 2 KB; larger ones are dropped
HARD_MAX_BYTES = 1024 * 1024  # beyond this the socket itself is closed (1009)
LOGGED_PER_CALL = 5  # malformed messages logged per call; all of them are counted
# Carriers send connected and start right after the upgrade: 5 s is many round trips, and
# a socket that never starts holds a place among the pending ones for no longer than that.
START_TIMEOUT_S = 5.0
MIN_PENDING = 16  # with --max-calls N, sockets not started yet: at most max(16, 2 N)
CLOSE_TIMEOUT_S = 2.0  # aclose(): how long peers have to answer our close, all at once
ABORT_GRACE_S = 0.5  # then their sockets are dropped; handlers still running are cancelled

RunCall = Callable[[PhoneTransport], Awaitable[None]]
__all__ = ["PhoneAuth", "PhoneServer", "SignatureConfigError", "twilio_signature"]


class PhoneServer:
    """Serves calls on ``host:port``: each connection's ``start`` makes a ``PhoneTransport``
    that ``run_call`` runs (a ``Session`` of the agent); the socket closes when it returns.

    With ``auth`` (or just ``auth_token``, Twilio's) configured, every upgrade must pass its
    carrier's check (403 otherwise; a carrier with no check is closed); on "/" the carrier
    detected must be one whose check the upgrade passed (else close 1008). With
    ``max_calls``, an upgrade beyond that many calls in progress gets 503 (``Retry-After:
    1``): the calls up already keep their voice, and the carrier goes on to the call's next
    instruction (another server, a message). Malformed or unknown messages are counted in
    ``malformed`` and logged, never fatal. ``drain()`` stops accepting and lets the calls in
    progress end. ``reuse_port`` binds with SO_REUSEPORT (one of several processes on the
    port); ``health`` is added to what ``GET /health`` answers.
    """

    def __init__(
        self,
        run_call: RunCall,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        public_url: str | None = None,
        auth_token: str | None = None,
        auth: PhoneAuth | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        start_timeout_s: float = START_TIMEOUT_S,
        dtmf_text: bool = False,
        carrier: str | None = None,
        max_calls: int | None = None,
        max_pending: int | None = None,
        reuse_port: bool = False,
        health: Mapping[str, object] | None = None,
    ) -> None:
        if max_calls is not None and max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, not {max_calls}")
        if max_pending is not None and max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        if not start_timeout_s > 0:
            raise ValueError(f"start_timeout_s must be positive, not {start_timeout_s}")
        if carrier is not None and carrier not in carriers.SERIALIZERS:
            raise ValueError(f"unknown carrier {carrier!r} (one of {', '.join(carriers.CARRIERS)})")
        self.auth = auth or PhoneAuth(public_url, twilio_auth_token=auth_token)
        self.run_call = run_call
        self.host, self.port = host, port
        self.public_url = public_url.rstrip("/") if public_url else None
        # behind a reverse proxy that keeps it, calls arrive under the public URL's path
        self.prefix = urlsplit(self.public_url).path if self.public_url else ""
        self.max_message_bytes = max_message_bytes
        self.start_timeout_s = start_timeout_s
        self.dtmf_text = dtmf_text
        self.carrier = carrier  # what "/" speaks instead of detecting
        self.max_calls = max_calls
        if max_pending is None and max_calls is not None:
            max_pending = max(MIN_PENDING, 2 * max_calls)
        self.max_pending = max_pending  # sockets let in whose start has not come yet
        # SO_REUSEPORT: one of several processes on one port (``voiceagent phone --workers``)
        self.reuse_port = reuse_port
        self.health = dict(health or {})  # added to /health's answer, e.g. the worker's number
        self.calls = 0  # in progress: started, not ended
        self.calls_served = 0
        self.malformed: Counter[str] = Counter()  # reason -> messages
        # HTTP status -> upgrades refused; a start refused (close 1013 busy, 1003 a rate no
        # carrier uses) counts under the status it stands for (503, 415)
        self.refused: Counter[int] = Counter()
        self._server: Server | None = None
        # each handler's scope: what aclose cancels when the deadline has passed
        self._connections: dict[ServerConnection, anyio.CancelScope] = {}
        self._pending: set[ServerConnection] = set()  # upgrades let through, not started
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def url(self) -> str:
        """The call URL to dial locally, e.g. ``ws://127.0.0.1:8080/twilio``."""
        return f"ws://{self.host}:{self.port}/{self.carrier or 'twilio'}"

    @property
    def pending(self) -> int:
        """Connections let in whose ``start`` has not come yet."""
        return len(self._pending)

    def carrier_for(self, path: str) -> str | None:
        """The carrier a call path forces (None: detect it from the first messages)."""
        return CALL_PATHS.get(self.route(path).split("?", 1)[0]) or self.carrier

    def route(self, path: str) -> str:
        """``path`` (query kept) without the public URL's path prefix when it starts with it:
        ``/voice/twilio`` and ``/twilio`` are one call path, whether a proxy strips it or not."""
        prefix = self.prefix
        if prefix and path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in "/?":
            rest = path[len(prefix) :]
            return rest if rest.startswith("/") else "/" + rest
        return path

    async def __aenter__(self) -> PhoneServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        # passed on to loop.create_server: SO_REUSEPORT, to share the port with other workers
        listening: dict[str, Any] = {"reuse_port": True} if self.reuse_port else {}
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=HARD_MAX_BYTES,
            **listening,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if not self.auth.enabled:
            logger.warning("%s: anyone who finds this server can call it", self.auth.describe())

    async def idle(self) -> None:
        """Until no call is in progress."""
        await self._idle.wait()

    async def drain(self, timeout_s: float) -> None:
        """Stop accepting (new connections are refused), let calls finish, then end the rest
        (``aclose``): all within ``timeout_s``, whose last part (``CLOSE_TIMEOUT_S``, at most
        half) is kept for the closes."""
        if self._server is None:
            return
        deadline = anyio.current_time() + timeout_s
        self._server.close(close_connections=False)
        with anyio.move_on_after(timeout_s - min(CLOSE_TIMEOUT_S, timeout_s / 2)):
            await self._idle.wait()
        await self.aclose(max(0.0, deadline - anyio.current_time()))

    async def aclose(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop accepting and end every connection within about ``timeout_s``: all are sent a
        close (1001, "going away") at once; the sockets of peers that have not answered near
        the deadline are dropped, and handlers still running after that are cancelled."""
        if self._server is None:
            return
        server = self._server
        server.close(close_connections=False)
        grace = min(ABORT_GRACE_S, timeout_s / 4)
        with anyio.move_on_after(timeout_s - grace):
            async with anyio.create_task_group() as closing:
                for connection in list(self._connections):
                    closing.start_soon(connection.close, 1001, "server shutting down")
            await server.wait_closed()
        stuck = [c for c in self._connections if c.state is not State.CLOSED]
        for connection in stuck:
            connection.transport.abort()  # never answered the close: no more waiting on it
        with anyio.move_on_after(grace):
            await server.wait_closed()
        handlers = list(self._connections.values())
        if stuck or handlers:
            logger.warning("shutdown: dropped %d connection(s) that did not answer the close, "
                           "cancelled %d handler(s)", len(stuck), len(handlers))  # fmt: skip
        for scope in handlers:
            scope.cancel()
        with anyio.move_on_after(ABORT_GRACE_S):
            await server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        routed = self.route(request.path)  # signed in full: public URL (its prefix) + this
        path = routed.split("?", 1)[0]
        if path == "/health":  # calls: started ones; pending: let in, no start yet
            health = {"status": "ok", "calls": self.calls, "pending": self.pending}
            return _json(connection, health | self.health)
        if path not in CALL_PATHS:
            paths = ", ".join(CALL_PATHS)
            return self._refuse(connection, 404, f"no calls on {path}: dial one of {paths}")
        self._pending = {c for c in self._pending if c.state is not State.CLOSED}  # failed upgrades
        if (busy := self._busy()) is not None:
            logger.warning("refused a call: %s", busy)
            response = self._refuse(connection, 503, f"busy: {busy}")
            response.headers["Retry-After"] = "1"
            return response
        refusal = self.auth.refusal(self.carrier_for(path), routed, request.headers)
        if refusal is not None:  # on "/" the carrier detected is checked again (_first_start)
            logger.warning("refused %s: %s", printable(path), refusal)
            return self._refuse(connection, 403, refusal)
        self._pending.add(connection)
        return None

    def _busy(self) -> str | None:
        """Why an upgrade now gets 503: ``max_calls`` calls started, or ``max_pending``
        sockets let in that have not started (they cannot spend the calls' places)."""
        if self.max_calls is not None and self.calls >= self.max_calls:
            return f"{self.calls} calls in progress (--max-calls)"
        if self.max_pending is not None and self.pending >= self.max_pending:
            return f"{self.pending} connections not started yet (--max-pending)"
        return None

    def _refuse(self, connection: ServerConnection, status: int, text: str) -> Response:
        self.refused[status] += 1
        return connection.respond(status, text + "\n")

    async def _handle(self, connection: ServerConnection) -> None:
        with anyio.CancelScope() as scope:
            self._connections[connection] = scope
            await self._serve(connection)

    async def _serve(self, connection: ServerConnection) -> None:
        self._pending.add(connection)
        started = False
        try:
            found = await self._first_start(connection)
            self._pending.discard(connection)
            if found is not None and self.max_calls is not None and self.calls >= self.max_calls:
                busy = f"busy: {self.calls} calls in progress"  # let in while a place was free
                await self._close_refused(connection, 1013, busy, status=503)
            elif found is not None:
                serializer, start = found
                started = True
                self.calls += 1
                self._idle = anyio.Event() if self.calls == 1 else self._idle
                self.calls_served += 1
                await self._call(connection, PhoneTransport(start, origin=time.monotonic(),
                                 dtmf_text=self.dtmf_text, serializer=serializer))  # fmt: skip
        finally:
            self._pending.discard(connection)
            self._connections.pop(connection, None)
            if started:
                self.calls -= 1
                if self.calls == 0:
                    self._idle.set()
            await connection.close()

    async def _first_start(
        self, connection: ServerConnection
    ) -> tuple[Serializer, twilio.Start] | None:
        """The carrier and its ``start`` (frames before it are dropped); None if the caller
        never starts. Without a carrier by path, messages wait until one says which it is."""
        carrier = self.carrier_for(connection.request.path if connection.request else "/")
        serializer = carriers.serializer(carrier) if carrier is not None else None
        waiting: list[str | bytes] = []
        with anyio.move_on_after(self.start_timeout_s):
            try:
                async for message in connection:
                    if serializer is None:
                        waiting.append(message)
                        serializer = _detect(message, len(waiting))
                        if serializer is None:
                            continue
                        if not self._authenticated(connection, serializer.name):
                            await self._refuse_unsigned(connection, serializer.name)
                            return None
                    messages, waiting = waiting or [message], []
                    for frame in (f for m in messages for f in self._parse(serializer, m)):
                        if isinstance(frame, twilio.Start):
                            return serializer, frame
                        if isinstance(frame, twilio.Stop):
                            return None
            except ConnectionClosed:
                return None
            except twilio.UnsupportedStart as error:
                await self._close_refused(connection, 1003, str(error), status=415)
                return None
        await self._close_refused(
            connection, 1008, f"no start message within {self.start_timeout_s:g} s", status=408
        )
        return None

    async def _close_refused(
        self, connection: ServerConnection, code: int, reason: str, *, status: int
    ) -> None:
        """A socket let in but refused as a call: closed with ``code``, counted in
        ``refused`` under the HTTP ``status`` it stands for, logged."""
        logger.warning("refused a call after its upgrade: %s (close %d)", printable(reason), code)
        self.refused[status] += 1
        await connection.close(code, reason.encode()[:123].decode(errors="ignore"))

    def _authenticated(self, connection: ServerConnection, carrier: str) -> bool:
        """Whether the upgrade of a call on "/" passes the check of the carrier detected."""
        request = connection.request
        return request is not None and self.auth.allows(
            carrier, self.route(request.path), request.headers
        )

    async def _refuse_unsigned(self, connection: ServerConnection, carrier: str) -> None:
        methods = self.auth.methods(carrier)
        reason = f"missing or wrong {' or '.join(methods)}" if methods else f"{carrier}: closed"
        logger.warning("refused a %s call on /: %s", carrier, reason)
        self.refused[403] += 1
        await connection.close(1008, reason)

    async def _call(self, connection: ServerConnection, transport: PhoneTransport) -> None:
        start = transport.start
        carrier = transport.speaker.serializer.name
        sid = printable(start.call_sid)  # ids from the wire: escaped on every log line
        logger.info("%s call %s started (stream %s)", carrier, sid, printable(start.stream_sid))

        async def run() -> None:
            try:
                await self.run_call(transport)
            except Exception:
                logger.exception("call %s failed", sid)

        await converse(connection, transport, partial(self._read, connection, transport), run)
        logger.info("call %s ended", sid)

    async def _read(self, connection: ServerConnection, transport: PhoneTransport) -> None:
        serializer = transport.speaker.serializer
        try:
            async for message in connection:
                for frame in self._parse(serializer, message):
                    try:
                        transport.receive(frame)
                    except Exception:  # one bad frame must not end the call
                        logger.exception("a %s frame could not be handled", type(frame).__name__)
                    if isinstance(frame, twilio.Stop):
                        return
                if transport.refusal is not None:  # flooding: closed, with the reason why
                    await close_and_drop(connection, transport.refusal)
                    return
        except ConnectionClosed:
            pass
        finally:
            transport.hang_up()

    def _parse(self, serializer: Serializer, message: str | bytes) -> list[twilio.Frame]:
        """The frames of a message; none for one we cannot use (counted, logged, skipped)."""
        if len(message) > self.max_message_bytes:
            self._malformed("too_large", f"a message of {len(message)} bytes")
            return []
        ignored = serializer.ignored_starts
        try:
            frames = serializer.parse(message)
        except twilio.UnsupportedStart:
            raise  # the call's own start: refused (_first_start)
        except twilio.UnknownEvent as error:
            self._malformed("unknown_event", str(error))
            return []
        except twilio.FrameError as error:
            self._malformed("binary" if isinstance(message, bytes) else "invalid", str(error))
            return []
        if serializer.ignored_starts > ignored:  # it would switch the stream id we send
            self.malformed["second_start"] += serializer.ignored_starts - ignored
            if ignored == 0 and serializer.start is not None:  # once per call
                sid = printable(serializer.start.call_sid)
                logger.warning("call %s: a second start ignored (its stream stays)", sid)
        return frames

    def _malformed(self, reason: str, detail: str) -> None:
        self.malformed[reason] += 1
        if sum(self.malformed.values()) <= LOGGED_PER_CALL * max(1, self.calls_served):
            logger.warning("skipped an inbound message (%s): %s", reason, printable(detail))


def _detect(message: str | bytes, seen: int) -> Serializer | None:
    """The serializer for the carrier ``message`` reveals; Twilio once a ``start`` (or
    ``DETECT_MESSAGES`` messages) said nothing; None to read on."""
    try:
        data = base.loads(message) if isinstance(message, str) else None
    except ValueError:
        data = None
    carrier = carriers.detect(data) if isinstance(data, dict) else None
    if carrier is None:
        started = isinstance(data, dict) and data.get("event") == "start"
        if not started and seen < DETECT_MESSAGES:
            return None
        logger.warning("the first messages do not say which carrier this is: Twilio assumed")
        carrier = "twilio"
    return carriers.serializer(carrier)


def _json(connection: ServerConnection, body: dict[str, object]) -> Response:
    response = connection.respond(200, json.dumps(body))
    headers = Headers((k, v) for k, v in response.headers.raw_items() if k != "Content-Type")
    headers["Content-Type"] = "application/json"
    response.headers = headers
    return response
