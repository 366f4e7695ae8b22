"""One streamed Lightning segment: the events in its inbox, its progress across attempts,
and the routing of the socket's frames to the segment they belong to."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from voiceagent.adapters.lightning_wire import (
    LightningError,
    auth_headers,
    error_from_frame,
    wire_logger,
)
from voiceagent.adapters.mailbox import Mailbox

logger = logging.getLogger(__name__)

# -- a segment's inbox: everything that happens to it, in order -----------------------------


@dataclass(frozen=True)
class Fragment:
    text: str


@dataclass(frozen=True)
class InputEnd:
    pass


@dataclass(frozen=True)
class InputFailed:
    error: Exception


@dataclass(frozen=True)
class Closed:
    error: LightningError


@dataclass(frozen=True)
class Audio:
    request_id: str
    pcm: bytes


@dataclass(frozen=True)
class Complete:
    request_id: str


@dataclass(frozen=True)
class Dropped:
    request_id: str


@dataclass(frozen=True)
class Failed:
    request_id: str
    error: LightningError


Event = Fragment | InputEnd | InputFailed | Closed | Audio | Complete | Dropped | Failed


class SegmentState:
    """One phrase's progress across attempts: its text, and the audio already handed on.

    A re-sent segment starts its audio from the beginning again: ``take`` discards as
    many bytes as were already delivered, so nothing is heard twice.
    """

    def __init__(self, inbox: Mailbox[Event]) -> None:
        self.inbox = inbox
        self.text = ""
        self.input_done = False
        self.finished = False
        self.request_id: str | None = None
        self.ws: ClientConnection | None = None
        self.sent_flush = False
        self.delivered = 0  # bytes handed on (or held in carry)
        self.attempt_bytes = 0  # bytes the current attempt has produced
        self._carry = b""  # an odd trailing byte, until its sample is complete
        self.drops = 0
        self.progress_mark = 0
        self.concurrency_retries = 0
        self.started_at = time.monotonic()

    def restart(self, request_id: str, ws: ClientConnection) -> None:
        self.request_id, self.ws = request_id, ws
        self.attempt_bytes = 0
        self.sent_flush = False
        self.delivered -= len(self._carry)
        self._carry = b""

    def take(self, pcm: bytes) -> bytes:
        """The new part of a chunk of the current attempt, in whole samples."""
        start = self.attempt_bytes
        self.attempt_bytes += len(pcm)
        if self.attempt_bytes <= self.delivered:
            return b""
        data = self._carry + pcm[max(0, self.delivered - start) :]
        self.delivered = self.attempt_bytes
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return data[:whole]


class Request:
    """One attempt of a segment on one socket: where its events go.

    ``done``: its ``complete`` came (a close after it is no drop); ``heard``: it has sent
    audio; ``server_ids``: the server's own ids seen for it (its frames' ``request_id``).
    """

    def __init__(self, inbox: Mailbox[Event], ws: ClientConnection, seq: int):
        self.inbox, self.ws, self.seq, self.flushed = inbox, ws, seq, False
        self.done = False
        self.heard = False
        self.server_ids: set[str] = set()


class SocketRoutes:
    """What routing has learnt of one socket: whether its frames name our ids."""

    def __init__(self) -> None:
        self.names_ours = False


def route(
    requests: dict[str, Request], ws: ClientConnection, routes: SocketRoutes, raw: str | bytes
) -> None:
    """Hand one server frame to the segment it concerns; late or unknown frames are dropped.

    Smallest AI's SDK (``waves/tts/types/tts_response_message.py``): ``request_id`` is the
    server's own UUID, the client's id comes back as ``external_request_id``. So: by
    ``external_request_id``, else by ``request_id`` (older servers echo ours there), else
    the one live request on this socket — never on a socket that has named our ids, where
    an unknown id is late news of a request we dropped.
    """
    try:
        message: Any = json.loads(raw)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    status = message.get("status")
    if status == "error":
        _route_error(requests, ws, routes, message)
        return
    if status not in ("chunk", "complete"):
        return  # word_timestamp frames and anything newer: not used
    key = _named(requests, ws, routes, message) or _the_live_one(requests, ws, routes, message)
    request = requests.get(key) if key is not None else None
    if key is None or request is None:
        return  # late news of a cancelled or replaced request: dropped
    if status == "complete":
        request.done = True
        post(request.inbox, Complete(key))
        return
    data = message.get("data")
    if not isinstance(data, dict):
        return
    try:
        pcm = base64.b64decode(str(data.get("audio", "")), validate=True)
    except (binascii.Error, ValueError):
        return
    request.heard = True
    for other_id, other in list(requests.items()):
        # The server speaks one request at a time: an earlier one is done.
        if other.ws is ws and other.seq < request.seq and other.flushed:
            post(other.inbox, Complete(other_id))
    post(request.inbox, Audio(key, pcm))


def _named(
    requests: dict[str, Request],
    ws: ClientConnection,
    routes: SocketRoutes,
    message: dict[str, Any],
) -> str | None:
    """Our id for the request a frame names, or None when it names none we know."""
    external, rid = message.get("external_request_id"), message.get("request_id")
    for ours in (external, rid):
        if isinstance(ours, str) and ours in requests and requests[ours].ws is ws:
            routes.names_ours = True
            return ours
    if isinstance(rid, str):
        for key, request in requests.items():
            if request.ws is ws and rid in request.server_ids:
                return key
    return None


def _the_live_one(
    requests: dict[str, Request],
    ws: ClientConnection,
    routes: SocketRoutes,
    message: dict[str, Any],
) -> str | None:
    """A frame that names none of our requests: the socket's live request it must be."""
    if routes.names_ours or isinstance(message.get("external_request_id"), str):
        return None  # this server names our ids: an unknown one is a request we let go
    live = sorted(((r.seq, k) for k, r in requests.items() if r.ws is ws and not r.done))
    rid = message.get("request_id")
    if isinstance(rid, str):
        # A new server id: the oldest live request without one (the server speaks them in
        # order), else the only live request (a server may use several ids for one).
        fresh = [key for _, key in live if not requests[key].server_ids]
        key = fresh[0] if fresh else (live[0][1] if len(live) == 1 else None)
        if key is not None:
            requests[key].server_ids.add(rid)
        return key
    return live[0][1] if len(live) == 1 else None


def _route_error(
    requests: dict[str, Request],
    ws: ClientConnection,
    routes: SocketRoutes,
    message: dict[str, Any],
) -> None:
    """An error frame fails the request it names. One that names no request fails the
    socket's only live request that has not sent audio yet (a refusal comes before any
    audio); else it is logged and left: a request mid-speech was accepted, and an error
    that ends the socket is followed by its close, which re-sends what was cut (a drop)."""
    error = error_from_frame(message)
    key = _named(requests, ws, routes, message)
    external = isinstance(message.get("external_request_id"), str)
    echoed = isinstance(message.get("request_id"), str) and routes.names_ours
    if key is None and not external and not echoed:
        # Not one of ours by name: the only request here that is live and still silent.
        # (An unknown server id on a socket that never names ours could be its refusal.)
        silent = [
            k
            for k, r in requests.items()
            if r.ws is ws and not r.done and not r.heard and not r.server_ids
        ]
        key = silent[0] if len(silent) == 1 else None
    request = requests.get(key) if key is not None else None
    if key is None or request is None:
        logger.warning("Lightning error for no live request of ours: %s", error)
        return
    post(request.inbox, Failed(key, error))


async def open_socket(url: str, api_key: str | None) -> ClientConnection:
    """A connected socket, after up to three tries; a refused key fails at once."""
    for attempt in range(3):
        try:
            return await connect(
                url,
                additional_headers=auth_headers(api_key),
                compression=None,  # base64 PCM hardly compresses; deflate only adds latency
                max_size=2**24,
                logger=wire_logger,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403) or attempt == 2:
                raise LightningError(
                    f"Lightning refused the connection (HTTP {status})", status=status
                ) from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            if attempt == 2:
                raise LightningError(f"cannot connect to Lightning: {exc}") from None
        await anyio.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


async def pump(
    fragments: AsyncIterable[str], inbox: Mailbox[Event], scope: anyio.CancelScope
) -> None:
    """Feed a phrase's fragments into its segment's inbox as they arrive."""
    with scope:
        try:
            async for text in fragments:
                post(inbox, Fragment(text))
            post(inbox, InputEnd())
        except Exception as exc:
            post(inbox, InputFailed(exc))


def post(inbox: Mailbox[Event], event: Event) -> None:
    """Tell a segment ``event``; nothing when it has ended. A mailbox, not an anyio memory
    stream: a segment's inbox takes an event per chunk of audio (25 a second of speech at
    40 ms chunks), and a memory stream's ``receive`` yields to the loop for each."""
    inbox.put(event)
