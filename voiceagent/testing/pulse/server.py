"""The Pulse-compatible fake STT server: a WebSocket on ``/waves/v1/stt/live`` (the
``websockets`` asyncio server) with limits, faults and a recording of every connection."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WSRequest
from websockets.http11 import Response as WSResponse
from websockets.protocol import State

from voiceagent.testing._serving import RunsInThread
from voiceagent.testing.pulse import wire
from voiceagent.testing.pulse.faults import ConnectionFaults, Faults
from voiceagent.testing.pulse.session import StreamSession
from voiceagent.testing.pulse.transcribe import (
    Transcriber,
    UtteranceTable,
    WhisperTranscriber,
    whisper_available,
)
from voiceagent.testing.pulse.vad import make_vad

logger = logging.getLogger(__name__)


class _RedactBearer(logging.Filter):
    """websockets logs the upgrade's headers at DEBUG level: keep clients' keys out of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                "Bearer [redacted]" if isinstance(a, str) and a.lower().startswith("bearer ") else a
                for a in record.args
            )
        return True


_wire_logger = logging.getLogger(f"{__name__}.wire")
_wire_logger.addFilter(_RedactBearer())


@dataclass
class RecordedConnection:
    """What one client did and was sent (the API key itself is never recorded)."""

    number: int
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names; Authorization reduced to "Bearer [redacted]"
    frames: list[bytes] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)
    control: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # time.perf_counter() of each send
    close_code: int | None = None
    dropped: bool = False
    error: str | None = None

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == kind]


class PulseServer(RunsInThread):
    """A local Pulse-compatible STT server over real sockets (a fake, not a speech model).

    ``transcribe``: ``"whisper"`` (offline extra required), ``"table"`` (``server.table``),
    or ``"auto"`` (whisper when installed, else the table). ``speed`` is seconds of processing
    per second of audio received (0 = as fast as frames arrive). ``record_audio=False`` keeps
    no frame in ``connections`` (a server that runs for hours: the CLI's). ``async with`` on
    asyncio, or ``running_in_thread``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        transcribe: str = "auto",
        table: UtteranceTable | None = None,
        concurrency: int = 0,
        eou_timeout_ms: int = 800,
        partial_every_ms: float = 240.0,
        speed: float = 0.0,
        api_key: str | None = None,
        faults: Faults | None = None,
        record_audio: bool = True,
    ) -> None:
        if transcribe not in ("auto", "whisper", "table"):
            raise ValueError(f"transcribe must be auto, whisper or table, not {transcribe!r}")
        if transcribe == "whisper" and not whisper_available():
            raise RuntimeError(
                "transcribe='whisper' needs voiceagent.adapters.whisper and the offline extra "
                "(pip install 'voiceagent[offline]'); use transcribe='table' without them"
            )
        use_whisper = transcribe == "whisper" or (transcribe == "auto" and whisper_available())
        self.transcriber_name = "whisper" if use_whisper else "table"
        self.host = host
        self.table = table if table is not None else UtteranceTable()
        self.concurrency = concurrency
        self.eou_timeout_ms = eou_timeout_ms
        self.partial_every_ms = partial_every_ms
        self.speed = speed
        self.record_audio = record_audio
        self.faults = faults or Faults()
        self.connections: list[RecordedConnection] = []
        self.active = 0
        self.max_active = 0
        self.vad_name: str | None = None  # "webrtcvad" or "energy", once a stream has opened
        self._api_key = api_key
        self._port = port
        self._server: Server | None = None
        self._whisper: dict[str, WhisperTranscriber] = {}
        self._live: dict[ServerConnection, RecordedConnection] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> PulseServer:
        self._server = await serve(
            self._serve,
            self.host,
            self._port,
            process_request=self._check_upgrade,
            compression=None,
            max_size=2**20,
            logger=_wire_logger,
        )
        logger.info("Pulse fake (%s) listening on %s", self.transcriber_name, self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{wire.WS_PATH}"

    def drop_all(self) -> int:
        """Drop every open connection now (TCP abort, no close frame); how many were open."""
        for ws, record in list(self._live.items()):
            record.dropped = True
            ws.transport.abort()
        return len(self._live)

    # -- connections -------------------------------------------------------------------

    def _check_upgrade(self, connection: ServerConnection, request: WSRequest) -> WSResponse | None:
        """Refusals before the upgrade, each an HTTP status with a JSON ``{"error": …}`` body."""
        if request.path.split("?", 1)[0].rstrip("/") != wire.WS_PATH:
            return _refuse(connection, 404, f"no WebSocket endpoint here; use {wire.WS_PATH}")
        if self._api_key is not None:
            scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(key, self._api_key):
                return _refuse(connection, 401, "invalid or missing API key")
        refusal = self.faults.take_upgrade_refusal()
        if refusal is not None:
            echoed = dict(request.headers.raw_items()) if refusal.echo_headers else None
            return _refuse(connection, refusal.status, "refused (injected)", echoed)
        reason = wire.model_refusal(request.path)
        return None if reason is None else _refuse(connection, 400, reason)

    def _transcriber(self, language: str) -> Transcriber:
        if self.transcriber_name == "whisper":
            if language not in self._whisper:
                self._whisper[language] = WhisperTranscriber(language)
            return self._whisper[language]
        return self.table

    async def _serve(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        if "authorization" in headers:
            headers["authorization"] = "Bearer [redacted]"
        path = ws.request.path
        record = RecordedConnection(len(self.connections) + 1, path, {}, headers)
        self.connections.append(record)
        faults = self.faults.take_connection()
        self.active += 1
        try:
            self.max_active = max(self.max_active, self.active)
            if faults.refuse or (self.concurrency and self.active > self.concurrency):
                record.close_code = wire.CONCURRENCY_CLOSE[0]
                await ws.close(*wire.CONCURRENCY_CLOSE)
                return
            try:
                config = wire.parse_query(path, self.eou_timeout_ms)
            except wire.ConfigError as error:
                record.error, record.close_code = str(error), wire.BAD_CONFIG_CLOSE
                await _send(ws, record, wire.error(str(error), "bad_config"))
                await ws.close(wire.BAD_CONFIG_CLOSE, "bad configuration")
                return
            record.query = config.query
            await self._run_stream(ws, record, config, faults)
        finally:
            self.active -= 1

    async def _run_stream(
        self,
        ws: ServerConnection,
        record: RecordedConnection,
        config: wire.StreamConfig,
        faults: ConnectionFaults,
    ) -> None:
        send, outbox = anyio.create_memory_object_stream[tuple[float, object]](100_000)

        async def emit(message: dict[str, Any], final: bool) -> None:
            delay = self.faults.take_final_delay_ms() if final else 0.0
            await send.send((delay, message))

        vad, self.vad_name = make_vad(16000, config.endpointing_timeout_ms or config.eou_timeout_ms)
        session_id = secrets.token_hex(8)
        transcriber = self._transcriber(config.language)
        # whisper re-transcribes the whole utterance for each partial: at most one a second
        every = (
            self.partial_every_ms
            if transcriber is self.table
            else max(1000.0, self.partial_every_ms)
        )
        session = StreamSession(session_id, config, vad, transcriber, every, emit)
        self._live[ws] = record
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._sender, ws, record, outbox)
                try:
                    await self._receive(ws, record, session, faults, send)
                finally:
                    send.close()
                if ws.state is State.CLOSED:  # nobody left to send to (held finals included)
                    tg.cancel_scope.cancel()
        finally:
            del self._live[ws]
        if record.close_code is None and ws.close_code is not None:
            record.close_code = ws.close_code

    async def _receive(
        self,
        ws: ServerConnection,
        record: RecordedConnection,
        session: StreamSession,
        faults: ConnectionFaults,
        outbox: Any,
    ) -> None:
        received = 0
        try:
            async for message in ws:
                received += 1
                if faults.drop_after is not None and received > faults.drop_after:
                    record.dropped = True
                    ws.transport.abort()  # a drop: no close frame, nothing more answered
                    return
                if faults.error_after is not None and received > faults.error_after:
                    record.error = faults.error_message
                    frame = (
                        wire.bare_error(faults.error_message)
                        if faults.error_bare
                        else wire.error(faults.error_message, "internal")
                    )
                    await outbox.send((0.0, frame))
                    await outbox.send((0.0, (1011, "internal error")))
                    return
                if isinstance(message, bytes):
                    await self._on_audio(record, session, message)
                elif await self._on_control(record, session, message, outbox):
                    return
        except ConnectionClosed:
            return

    async def _on_audio(
        self, record: RecordedConnection, session: StreamSession, frame: bytes
    ) -> None:
        ms = 1000.0 * len(frame) / session.config.bytes_per_second
        if self.record_audio:
            record.frames.append(frame)
            record.frame_ms.append(ms)
        await session.on_frame(frame)
        if self.speed > 0:
            await anyio.sleep(self.speed * ms / 1000.0)

    async def _on_control(
        self, record: RecordedConnection, session: StreamSession, text: str, outbox: Any
    ) -> bool:
        """Handle a text message; True once the stream is over (after ``close_stream``)."""
        try:
            message = json.loads(text)
            kind = message.get("type") if isinstance(message, dict) else None
        except ValueError:
            message, kind = {"raw": text}, None
        record.control.append(message if isinstance(message, dict) else {"raw": text})
        if kind == "keepalive":  # LiveKit's, every 5 s while no audio flows (stt.py:504-514)
            await outbox.send((0.0, wire.PONG))
        elif kind == "finalize":
            await session.on_finalize()
        elif kind == "close_stream":
            await session.on_finalize(last=True)
            await outbox.send((0.0, (1000, "stream closed")))
            return True
        else:
            await outbox.send((0.0, wire.error(f"unknown control message: {text[:100]}")))
        return False

    async def _sender(self, ws: ServerConnection, record: RecordedConnection, outbox: Any) -> None:
        """Send in order; a delayed final holds back everything after it, as a queue would."""
        try:
            async for delay, item in outbox:
                if delay > 0:
                    await anyio.sleep(delay / 1000.0)
                if isinstance(item, tuple):
                    record.close_code = item[0]
                    await ws.close(*item)
                    return
                assert isinstance(item, dict)
                await _send(ws, record, item)
        except ConnectionClosed:
            return


def _refuse(
    connection: ServerConnection, status: int, message: str, echoed: dict[str, str] | None = None
) -> WSResponse:
    body = wire.refusal_body(message)
    if echoed is not None:
        body["request"] = {"headers": echoed}
    response = connection.respond(status, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


async def _send(ws: ServerConnection, record: RecordedConnection, message: dict[str, Any]) -> None:
    record.sent.append(message)
    record.sent_at.append(time.perf_counter())
    await ws.send(json.dumps(message, separators=(",", ":")))
