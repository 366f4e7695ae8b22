"""Lightning (Smallest AI) streaming TTS: one persistent WebSocket per session.

Every segment of a session rides that one socket under its own request_id; see LightningTTS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator

import anyio
import anyio.lowlevel
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from voiceagent.adapters.lightning_segment import (
    Audio,
    Closed,
    Complete,
    Dropped,
    Event,
    Failed,
    Fragment,
    InputEnd,
    InputFailed,
    Request,
    SegmentState,
    SocketRoutes,
    open_socket,
    post,
    pump,
    route,
)
from voiceagent.adapters.lightning_wire import (
    AccountLimiter,
    LightningError,
    LightningOptions,
    Ticket,
    account_limiter,
)
from voiceagent.adapters.mailbox import Mailbox

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.smallest.ai/waves/v1/tts/live"
MAX_DROPS = 3  # consecutive drops of one segment without new audio before giving up
QUEUE_TIMEOUT_S = 60.0  # how long a segment keeps retrying the account's concurrency limit
MAX_COMPLETE_BACKOFF_MS = 10000  # the SDK's tts_request_message.py: "Maximum is 10000ms"
CANCEL_SEND_S = 1.0  # a cut segment's cancel message is best effort (as LiveKit's)


class LightningTTS:
    """``ports.TTS`` over Lightning's streaming WebSocket (asyncio only).

    One instance = one session = one socket, opened lazily and reopened transparently when
    the server closes it. Fragments go out as they arrive (``continue: true``), the phrase
    ends with ``flush: true``, audio is decoded as it arrives. A segment ends at its
    ``complete`` or when a later segment's first chunk arrives on the socket; frames are
    routed by ``external_request_id``, then ``request_id``, then the socket's one live
    request, and a cut segment sends ``cancel_request`` for its request. A small task
    group owned by the instance (started lazily, ended by ``aclose``) reads the socket,
    sends keepalives and pumps each phrase's fragments.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        model: str = "lightning_v3.1",
        voice: str | None = None,
        sample_rate: int = 24000,
        speed: float = 1.0,
        language: str = "en",
        complete_backoff_ms: int = 100,
        keepalive_s: float = 30.0,
        max_concurrent: int = 1,
    ) -> None:
        self.url = url
        self.options = LightningOptions.build(model, voice, sample_rate, speed, language)
        if not 0 <= complete_backoff_ms <= MAX_COMPLETE_BACKOFF_MS:
            raise ValueError(
                f"Lightning's complete_backoff_ms is 0-{MAX_COMPLETE_BACKOFF_MS}, "
                f"not {complete_backoff_ms}"
            )
        self.complete_backoff_ms = complete_backoff_ms
        self.keepalive_s = keepalive_s
        self.max_concurrent = max_concurrent
        self._api_key = api_key
        self._ws: ClientConnection | None = None
        self._sockets: dict[ClientConnection, SocketRoutes] = {}
        self._requests: dict[str, Request] = {}
        self._inboxes: set[Mailbox[Event]] = set()
        self._connect_lock = anyio.Lock(fast_acquire=True)  # taken per message sent: no yield
        self._count = 0
        self._last_sent = time.monotonic()
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._scope: anyio.CancelScope | None = None  # made in the loop: not at construction
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self.connections = 0  # sockets opened so far

    def __repr__(self) -> str:
        key = "***" if self._api_key else None
        return f"LightningTTS(url={self.url!r}, options={self.options!r}, api_key={key})"

    @property
    def sample_rate(self) -> int:
        return self.options.sample_rate

    async def __aenter__(self) -> LightningTTS:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- one segment ---------------------------------------------------------------------

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        limiter = account_limiter(self.url, self._api_key, self.max_concurrent)
        # The place in the account's queue is taken at the call, before any await: segments
        # get the account's slot in the order the engine opened them.
        ticket = limiter.join() if limiter is not None else None
        try:
            tg = await self._start()
        except BaseException:
            if limiter is not None and ticket is not None:
                limiter.leave(ticket)
            raise
        inbox = Mailbox[Event]()
        self._inboxes.add(inbox)
        stop_pump = anyio.CancelScope()
        tg.start_soon(pump, fragments, inbox, stop_pump)
        seg = SegmentState(inbox)
        try:
            while True:
                event = await inbox.get()
                pcm = await self._handle(seg, event, ticket, limiter)
                if pcm:
                    yield pcm
                if seg.finished:
                    return
        finally:
            stop_pump.cancel()
            self._inboxes.discard(inbox)
            self._forget(seg.request_id)
            if seg.request_id is not None and not seg.finished and seg.ws is not None:
                await self._cancel(seg.ws, seg.request_id)  # barge-in, before the slot is freed
            if limiter is not None and ticket is not None:
                limiter.leave(ticket)
            inbox.close()

    async def _handle(
        self,
        seg: SegmentState,
        event: Event,
        ticket: Ticket | None,
        limiter: AccountLimiter | None,
    ) -> bytes:
        """Advance a segment by one event; the audio to yield, if any."""
        if isinstance(event, Fragment):
            seg.text += event.text
            if seg.request_id is None and seg.text.strip():
                if ticket is not None:
                    await ticket.wait()  # the account's slot (and the fleet's lease)
                await self._open_request(seg)
            elif seg.request_id is not None and event.text:
                await self._send(seg, event.text, more=True)
        elif isinstance(event, InputEnd):
            seg.input_done = True
            if seg.request_id is None:
                seg.finished = True  # nothing speakable was said
            else:
                await self._send(seg, "", more=False)
        elif isinstance(event, (InputFailed, Closed)):
            # a segment cancelled (barge-in) as the news came is cancelled, not failed: the
            # inbox hands over an item without a checkpoint
            await anyio.lowlevel.checkpoint_if_cancelled()
            raise event.error
        elif event.request_id != seg.request_id:
            return b""  # late news of an earlier attempt
        elif isinstance(event, Audio):
            return seg.take(event.pcm)
        elif isinstance(event, Complete):
            seg.finished = seg.sent_flush
        elif isinstance(event, Dropped):
            seg.drops = seg.drops + 1 if seg.delivered == seg.progress_mark else 1
            seg.progress_mark = seg.delivered
            if seg.drops > MAX_DROPS:
                raise LightningError(f"the Lightning socket dropped {MAX_DROPS} times in a row")
            logger.info("Lightning socket lost mid-segment; re-sending as a new request")
            await self._open_request(seg)
        elif isinstance(event, Failed):
            await self._retry_or_raise(seg, event.error, limiter)
        return b""

    async def _retry_or_raise(
        self, seg: SegmentState, error: LightningError, limiter: AccountLimiter | None
    ) -> None:
        if not error.concurrency or time.monotonic() - seg.started_at > QUEUE_TIMEOUT_S:
            seg.finished = True  # the server ended this request
            raise error
        # Another request holds the account's slot: try again when one of ours ends, or
        # after a growing pause when the holder is elsewhere (another process or client).
        self._forget(seg.request_id)
        seg.request_id = None
        seg.concurrency_retries += 1
        with anyio.move_on_after(min(1.0, 0.05 * 2 ** min(seg.concurrency_retries, 5))):
            if limiter is not None:
                await limiter.released()
        await self._open_request(seg)

    async def _open_request(self, seg: SegmentState) -> None:
        """Send the segment's text so far as a new request (a fresh request_id each time)."""
        self._forget(seg.request_id)
        for _ in range(MAX_DROPS + 1):
            ws = await self._socket()
            self._count += 1
            rid = f"seg-{self._count}-{secrets.token_hex(4)}"
            self._requests[rid] = Request(seg.inbox, ws, self._count)
            seg.restart(rid, ws)
            try:
                await self._write(ws, self._message(rid, seg.text, more=True))
                if seg.input_done:
                    await self._write(ws, self._message(rid, "", more=False))
                    self._requests[rid].flushed = seg.sent_flush = True
                return
            except ConnectionClosed:
                self._forget(rid)
                self._abandon(ws)
        raise LightningError("could not send to Lightning: the socket keeps closing")

    async def _send(self, seg: SegmentState, text: str, *, more: bool) -> None:
        assert seg.request_id is not None and seg.ws is not None
        try:
            await self._write(seg.ws, self._message(seg.request_id, text, more=more))
        except ConnectionClosed:
            # The socket closed under us: the whole segment goes again on a new one.
            await self._open_request(seg)
            return
        if not more:
            seg.sent_flush = True
            request = self._requests.get(seg.request_id)
            if request is not None:
                request.flushed = True

    async def _cancel(self, ws: ClientConnection, rid: str) -> None:
        """Stop a cut segment's request: LiveKit's ``{…config, "cancel_request": true}``
        (``_try_cancel_context``), under our request_id. Sent before the account slot is
        given back, so on this socket the server reads it before the next request.

        The socket is kept when its frames name our ids: the cut request's late frames are
        then told apart and dropped, and the answer to the barge-in does not wait for a new
        handshake. (LiveKit and pipecat drop the socket after a cut because they route by
        "the current context", not by id.) A socket that never named our ids is closed, as
        before: there a late frame could not be told from the next segment's.
        """
        payload = {**self.options.config(), "request_id": rid, "cancel_request": True}
        with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_SEND_S):
            try:
                await self._write(ws, json.dumps(payload, separators=(",", ":")))
            except ConnectionClosed:
                return
        routes = self._sockets.get(ws)
        if routes is None or not routes.names_ours:
            self._abandon(ws)

    def _message(self, rid: str, text: str, *, more: bool) -> str:
        payload = {
            **self.options.config(),
            "text": text,
            "continue": more,
            "flush": not more,
            "request_id": rid,
            "complete_backoff_ms": self.complete_backoff_ms,
        }
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    async def _write(self, ws: ClientConnection, message: str) -> None:
        await ws.send(message)
        self._last_sent = time.monotonic()

    def _forget(self, rid: str | None) -> None:
        if rid is not None:
            self._requests.pop(rid, None)

    # -- the socket ----------------------------------------------------------------------

    async def _start(self) -> anyio.abc.TaskGroup:
        """The instance's task group, started on first use."""
        if self._closed:
            raise LightningError("this LightningTTS was closed")
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())
        await self._ready.wait()
        assert self._tg is not None
        return self._tg

    async def _run(self) -> None:
        if self._closed:
            return
        self._scope = anyio.CancelScope()
        with self._scope:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._ready.set()
                await anyio.sleep_forever()

    async def _socket(self) -> ClientConnection:
        async with self._connect_lock:
            ws = self._ws
            if ws is not None and ws.state is State.OPEN:
                return ws
            ws = self._ws = await open_socket(self.url, self._api_key)
            self.connections += 1
            routes = self._sockets[ws] = SocketRoutes()
            assert self._tg is not None
            self._tg.start_soon(self._serve_socket, ws, routes)
            return ws

    def _abandon(self, ws: ClientConnection) -> None:
        """Stop using a socket and close it; the next request opens a new one."""
        if self._ws is ws:
            self._ws = None
        if self._tg is not None and ws.state is State.OPEN:
            self._tg.start_soon(ws.close)

    async def _serve_socket(self, ws: ClientConnection, routes: SocketRoutes) -> None:
        """Read one socket until it closes; keep it alive meanwhile."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keepalive, ws)
                try:
                    async for raw in ws:
                        route(self._requests, ws, routes, raw)
                except ConnectionClosed:
                    pass
                tg.cancel_scope.cancel()
        finally:
            self._sockets.pop(ws, None)
            if self._ws is ws:
                self._ws = None
            for rid, request in list(self._requests.items()):
                # A close after `complete` is the documented end of a request, no drop.
                if request.ws is ws and not request.done:
                    post(request.inbox, Dropped(rid))

    async def _keepalive(self, ws: ClientConnection) -> None:
        # Any client message resets the server's idle timer. pipecat's form (`_send_keepalive`):
        # JSON with the voice settings and a space, which no server takes for a request.
        keepalive = json.dumps({**self.options.keepalive(), "text": " "}, separators=(",", ":"))
        while True:
            wait = self._last_sent + self.keepalive_s - time.monotonic()
            if wait > 0:
                await anyio.sleep(wait)
                continue
            try:
                await self._write(ws, keepalive)
            except ConnectionClosed:
                return

    async def aclose(self) -> None:
        """Close the socket and end the instance's tasks; running segments fail."""
        self._closed = True
        for inbox in list(self._inboxes):
            post(inbox, Closed(LightningError("this LightningTTS was closed")))
        # Taken before the cancel: each cancelled _serve_socket drops its socket from the set,
        # and an unclosed one kept its connection (and websockets' keepalive task) alive,
        # one per phone call (bench/phone_load.py: tasks after the calls grew by N).
        sockets = list(self._sockets)
        if self._scope is not None:
            self._scope.cancel()
        if self._runner is not None:
            with anyio.CancelScope(shield=True):
                await asyncio.wait([self._runner])
        with anyio.CancelScope(shield=True):
            for ws in sockets:
                await ws.close()
        self._sockets.clear()
        self._ws = None


__all__ = ["DEFAULT_URL", "LightningError", "LightningTTS"]
