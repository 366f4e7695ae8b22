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

#####EVENTS
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
    """One attempt of a segment on one socket: where its events go."""

    def __init__(self, inbox: Mailbox[Event], ws: ClientConnection, seq: int):
        self.inbox, self.ws, self.seq, self.flushed = inbox, ws, seq, False


def route(requests: dict[str, Request], ws: ClientConnection, raw: str | bytes) -> None:
    """Hand one server frame to the segment it concerns; late or unknown frames are dropped."""
    try:
        message: Any = json.loads(raw)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    status, rid = message.get("status"), message.get("request_id")
    request = requests.get(rid) if isinstance(rid, str) else None
    if status == "chunk":
        data = message.get("data")
        if request is None or not isinstance(data, dict):
            return  # late audio of a cancelled or replaced request: dropped
        try:
            pcm = base64.b64decode(str(data.get("audio", "")), validate=True)
        except (binascii.Error, ValueError):
            return
        for other_id, other in list(requests.items()):
            # The server speaks one request at a time: an earlier one is done.
            if other.ws is ws and other.seq < request.seq and other.flushed:
                post(other.inbox, Complete(other_id))
        post(request.inbox, Audio(str(rid), pcm))
    elif status == "complete" and request is not None:
        post(request.inbox, Complete(str(rid)))
    elif status == "error":
        _route_error(requests, ws, message)


def _route_error(
    requests: dict[str, Request], ws: ClientConnection, message: dict[str, Any]
) -> None:
    error = error_from_frame(message)
    rid = message.get("request_id")
    if rid is None:
        # No request_id: blame the oldest request on this socket.
        mine = sorted((r.seq, key) for key, r in requests.items() if r.ws is ws)
        rid = mine[0][1] if mine else None
    request = requests.get(rid) if isinstance(rid, str) else None
    if request is None or not isinstance(rid, str):
        logger.debug("Lightning error for a request no longer live: %s", error)
        return
    post(request.inbox, Failed(rid, error))


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
