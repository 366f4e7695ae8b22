"""The Lightning fake's streaming WebSocket: requests, continuation contexts, cancels,
keepalives, the idle timeout, and the frames it answers with.

Frames name requests the way Smallest AI's SDK documents (``waves/tts/types/
tts_response_message.py``): ``request_id`` is the server's own UUID, the client's id comes back
as ``external_request_id`` (omitted when it gave none). ``response_ids="echo"`` is the older
reading (the client's id in ``request_id``); ``"uuid-only"`` never names the client's id.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections import Counter
from typing import Any

import anyio
from anyio.abc import TaskGroup
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from voiceagent.testing.lightning import voices
from voiceagent.testing.lightning.faults import (
    CONCURRENCY_CODE,
    CONCURRENCY_MESSAGE,
    Faults,
    InjectedError,
)
from voiceagent.testing.lightning.wire import (
    LiveRequest,
    RecordedTTSRequest,
    error_frame,
    idle_timeout_frame,
    is_keepalive,
    parse_message,
    timed_words,
)

logger = logging.getLogger(__name__)

RESPONSE_IDS = ("server", "echo", "uuid-only")


class Connection:
    """One client socket: its requests, served one after another in arrival order."""

    def __init__(self, number: int, ws: ServerConnection, account: str, tg: TaskGroup) -> None:
        self.number = number
        self.ws = ws
        self.account = account
        self.tg = tg
        self.requests: dict[str, LiveRequest] = {}
        self.refused: dict[str, RecordedTTSRequest] = {}
        self.unnamed: str | None = None  # the request of messages that carry no request_id
        self.unnamed_count = 0
        # Audio of one request at a time: a later request's first chunk means every earlier
        # one has sent all of its audio (clients may rely on it).
        self.audio_lock = asyncio.Lock()

    def request_key(self, message: dict[str, Any]) -> str:
        """The request a message belongs to: its request_id, else its context, else the
        socket's current unnamed request."""
        for name in ("request_id", "context_id"):
            given = message.get(name)
            if isinstance(given, str) and given:
                return given
        live = self.requests.get(self.unnamed or "")
        if live is None or live.flushed:
            self.unnamed_count += 1
            self.unnamed = f"srv-{self.number}-{self.unnamed_count}"
        return self.unnamed or ""


class WebSocketSide:
    """The streaming protocol, mixed into ``LightningServer`` (which owns these attributes)."""

    response_ids: str
    close_after_complete: bool
    complete_backoff_default_ms: float
    first_byte_ms: float
    voice: str
    pace: float
    chunk_ms: float
    faults: Faults
    requests: list[RecordedTTSRequest]
    keepalives: int
    last_keepalive: dict[str, Any] | str | None
    idle_closes: int
    active: Counter[str]
    connections_open: set[Connection]

    def _admit(self, record: RecordedTTSRequest) -> InjectedError | None:
        raise NotImplementedError

    def _release(self, live: LiveRequest, status: str) -> None:
        raise NotImplementedError

    # -- frames --------------------------------------------------------------------------

    def _ids(self, record: RecordedTTSRequest, server_id: str) -> dict[str, str]:
        client_id = record.config.get("request_id")
        if self.response_ids == "echo":
            return {"request_id": record.request_id}
        ids = {"request_id": server_id}
        if self.response_ids == "server" and isinstance(client_id, str):
            ids["external_request_id"] = client_id
        return ids

    def _new_server_request(self, live: LiveRequest) -> None:
        live.server_id = str(uuid.uuid4())
        live.record.server_ids.append(live.server_id)
        live.sent_samples = live.words = 0

    # -- one socket ----------------------------------------------------------------------

    async def _receive(self, conn: Connection, idle_s: float) -> None:
        while True:
            with anyio.move_on_after(idle_s) as idle:
                try:
                    message = await conn.ws.recv()
                except ConnectionClosed:
                    self._release_all(conn)  # now, not once this socket's tasks unwind
                    return
            if idle.cancelled_caught:
                self.idle_closes += 1
                try:
                    await _send(conn.ws, idle_timeout_frame(idle_s))
                    await conn.ws.close(1000, "idle timeout")
                except ConnectionClosed:
                    pass
                return
            if isinstance(message, str) and not message.strip():
                self._keepalive(message)  # the bare-space form
                continue
            await self._on_message(conn, message)

    def _sweep_closing(self) -> None:
        """Free the slots held on sockets whose close handshake has begun. websockets'
        ``recv`` raises only once TCP is down, and a client (LiveKit) that closed one socket
        sends its next request on another as soon as the close is answered."""
        for conn in list(self.connections_open):
            if conn.ws.state is not State.OPEN:
                self._release_all(conn)

    def _release_all(self, conn: Connection) -> None:
        for live in conn.requests.values():
            self._release(live, "dropped" if live.dropped else "closed")

    def _keepalive(self, message: dict[str, Any] | str) -> None:
        self.keepalives += 1  # it only resets the idle timer
        self.last_keepalive = message

    async def _on_message(self, conn: Connection, message: str | bytes) -> None:
        parsed, problem = parse_message(message)
        if parsed is None:
            await _send(conn.ws, error_frame(None, problem, "bad_request"))
            return
        if is_keepalive(parsed):
            self._keepalive(parsed)
            return
        key = conn.request_key(parsed)
        if parsed.get("cancel_request") is True:
            self._cancel(conn, key, parsed)
            return
        if key in conn.refused:
            frame = error_frame(None, CONCURRENCY_MESSAGE, CONCURRENCY_CODE)
            await _send(conn.ws, {**frame, **self._ids(conn.refused[key], str(uuid.uuid4()))})
            return
        live = conn.requests.get(key)
        if live is None:
            record = RecordedTTSRequest(key, conn.number, conn.account, "ws", dict(parsed))
            record.config.pop("text", None)
            context = parsed.get("context_id")
            record.context_id = context if isinstance(context, str) and context else None
            self.requests.append(record)
            self._sweep_closing()
            refusal = self._admit(record)
            if refusal is not None:
                record.status, record.error = "refused", refusal.code
                conn.refused[key] = record
                frame = error_frame(None, refusal.message, refusal.code)
                ids = self._ids(record, str(uuid.uuid4())) if refusal.named else {}
                await _send(conn.ws, {**frame, **ids})
                return
            live = LiveRequest(record, self.complete_backoff_default_ms)
            live.drop_after = self.faults.take_drop()
            live.stray = self.faults.take_stray()
            live.failure = self.faults.take_failure()
            live.first_byte_ms = self.first_byte_ms + self.faults.take_delay()
            if not live.context:
                self._new_server_request(live)  # one id for the request's whole life
            conn.requests[key] = live
            conn.tg.start_soon(self._serve_request, conn, live)
        elif live.cancelled or live.failed:
            return  # nothing more for a cancelled or failed request
        live.add(parsed)

    def _cancel(self, conn: Connection, key: str, message: dict[str, Any]) -> None:
        """``cancel_request``: no more audio and no ``complete`` for it; its slot is free."""
        live = conn.requests.get(key)
        if live is None or live.released:
            return  # unknown, or already over: a cancel may cross the request's end
        live.cancelled = True
        live.record.cancel_message = message
        live.scope.cancel()
        self._release(live, "cancelled")

    async def _serve_request(self, conn: Connection, live: LiveRequest) -> None:
        with live.scope:
            try:
                await self._serve_until_complete(conn, live)
            except ConnectionClosed:
                return

    async def _serve_until_complete(self, conn: Connection, live: LiveRequest) -> None:
        while True:
            async with conn.audio_lock:
                await self._speak(conn, live)
            # `complete` comes complete_backoff_ms after the last chunk, unless more text for
            # this request arrives first; the account slot is held until then. A context
            # completes once, after it ended (pipecat: "a single complete for the whole turn").
            with anyio.move_on_after(live.backoff_ms / 1000):
                await live.changed()
                continue
            break
        if not live.server_id:
            self._new_server_request(live)  # a context that never had text to release
        complete = {"status": "complete", **self._ids(live.record, live.server_id)}
        await _send(conn.ws, complete)
        self._release(live, "complete")
        others = [r for r in conn.requests.values() if not r.released]
        if self.close_after_complete and not others:
            await conn.ws.close(1000, "complete")  # the SDK: complete is terminal

    async def _speak(self, conn: Connection, live: LiveRequest) -> None:
        """Send audio for the text as it becomes ready, until the request is flushed."""
        while True:
            piece = live.take()
            if piece:
                if live.context:
                    self._new_server_request(live)  # each release is its own server request
                await self._send_audio(conn, live, piece)
            elif live.flushed:
                return
            else:
                with anyio.move_on_after(_hold_s(live)):
                    await live.changed()
                    continue
                live.force = True  # held long enough: voice the buffer without a flush

    async def _send_audio(self, conn: Connection, live: LiveRequest, text: str) -> None:
        config, record = live.record.config, live.record
        rate = int(config.get("sample_rate", 44100))
        speed = float(config.get("speed", 1.0))
        record.pieces.append(text)
        pcm = await voices.render(self.voice, text, rate, speed, str(config.get("language", "en")))
        total = max(1, len(pcm) // 2)
        offset = live.sent_samples / rate
        words = [
            (word, offset + a * total / rate, offset + b * total / rate)
            for word, a, b in (timed_words(text) if live.word_timestamps else [])
        ]
        step = 2 * max(1, round(rate * self.chunk_ms / 1000))
        for start in range(0, len(pcm), step):
            if record.chunks == 0 and live.first_byte_ms > 0:
                await anyio.sleep(live.first_byte_ms / 1000)
            if live.drop_after is not None and record.chunks >= live.drop_after:
                live.dropped = True
                conn.ws.transport.abort()  # a drop: no close frame, no complete
                await anyio.sleep_forever()
            if live.stray is not None and record.chunks >= live.stray[0]:
                await self._stray_error(conn, live)
            if live.failure is not None and record.chunks >= live.failure[0]:
                await self._fail(conn, live)
            chunk = pcm[start : start + step]
            ids = self._ids(record, live.server_id)
            chunk_end = live.sent_samples + len(chunk) // 2
            while words and words[0][1] * rate < chunk_end:
                word, begin, end = words.pop(0)
                data = {"id": live.words, "word": word, "start": begin, "end": end}
                await _send(conn.ws, {"status": "word_timestamp", **ids, "data": data})
                live.words += 1
            audio = {"audio": base64.b64encode(chunk).decode("ascii")}
            await _send(conn.ws, {"status": "chunk", **ids, "data": audio})
            if record.chunks == 0:
                record.first_chunk_at = time.monotonic()
            record.chunks += 1
            record.samples += len(chunk) // 2
            live.sent_samples = chunk_end
            if self.pace > 0:
                await anyio.sleep(self.pace * len(chunk) / 2 / rate)

    async def _stray_error(self, conn: Connection, live: LiveRequest) -> None:
        """An injected error frame that names no request; with ``close``, then a close."""
        assert live.stray is not None
        _, close, error = live.stray
        live.stray = None
        await _send(conn.ws, error_frame(None, error.message, error.code))
        if close:
            await conn.ws.close(1011, "internal error")
            await anyio.sleep_forever()

    async def _fail(self, conn: Connection, live: LiveRequest) -> None:
        """An injected error frame naming the request, as the server names it in every frame;
        then the request is over: no more audio, no ``complete``, its slot free."""
        assert live.failure is not None
        _, error = live.failure
        live.failure, live.failed = None, True
        live.record.error = error.code
        self._release(live, "failed")
        frame = error_frame(None, error.message, error.code)
        await _send(conn.ws, {**frame, **self._ids(live.record, live.server_id)})
        live.scope.cancel()  # ends the serving task here, and frees the socket's audio
        await anyio.sleep_forever()


def _hold_s(live: LiveRequest) -> float | None:
    """How long unflushed text may wait for more: max_buffer_delay_ms from when the buffered
    text began (a context), max_buffer_flush_ms since the last message (the legacy form)."""
    if live.context:
        if not live.buffer:
            return None
        return max(0.0, live.buffered_at + live.max_buffer_delay_ms / 1000 - time.monotonic())
    return live.max_buffer_flush_ms / 1000 if live.max_buffer_flush_ms else None


async def _send(ws: ServerConnection, payload: dict[str, Any]) -> None:
    await ws.send(json.dumps(payload, separators=(",", ":")))
