"""What both Lightning adapters share: options, errors, auth headers, the account limiter,
and the events and bookkeeping of one streamed segment."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
from anyio.lowlevel import RunVar
from anyio.streams.memory import MemoryObjectSendStream
from websockets.asyncio.client import ClientConnection

MODELS = ("lightning_v3.1", "lightning_v3.1_pro")
DEFAULT_VOICES = {"lightning_v3.1": "sophia", "lightning_v3.1_pro": "meher"}
SAMPLE_RATES = (8000, 16000, 24000, 44100)
SOURCE_HEADER = ("X-Source", "voiceagent")


class LightningError(RuntimeError):
    """Lightning refused or failed a request; ``code``/``status`` say which way."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message + (f" (request {request_id})" if request_id else ""))
        self.code = code
        self.request_id = request_id
        self.status = status

    @property
    def concurrency(self) -> bool:
        """The account's concurrent-request limit: wait and try again, never fail for it."""
        text = f"{self.code or ''} {self.args[0] if self.args else ''}".lower()
        return self.status == 429 or "concurren" in text or "rate_limit" in text


def error_from_frame(message: dict[str, Any]) -> LightningError:
    """A LightningError from either documented error-frame shape."""
    nested = message.get("error")
    nested = nested if isinstance(nested, dict) else {}
    text = message.get("message") or nested.get("message") or "Lightning reported an error"
    code = nested.get("code") or message.get("code")
    rid = message.get("request_id")
    return LightningError(
        str(text),
        code=None if code is None else str(code),
        request_id=rid if isinstance(rid, str) else None,
    )


@dataclass(frozen=True)
class LightningOptions:
    """The voice settings every Lightning request repeats."""

    model: str
    voice: str
    sample_rate: int
    speed: float
    language: str

    @classmethod
    def build(
        cls, model: str, voice: str | None, sample_rate: int, speed: float, language: str
    ) -> LightningOptions:
        if sample_rate not in SAMPLE_RATES:
            rates = ", ".join(map(str, SAMPLE_RATES))
            raise ValueError(f"Lightning serves sample rates {rates}, not {sample_rate}")
        if not 0.5 <= speed <= 2.0:
            raise ValueError(f"Lightning's speed is 0.5-2.0, not {speed}")
        chosen = voice or DEFAULT_VOICES.get(model, DEFAULT_VOICES[MODELS[0]])
        return cls(model, chosen, sample_rate, speed, language)

    def config(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice,
            "model": self.model,
            "language": self.language,
            "sample_rate": self.sample_rate,
            "speed": self.speed,
        }


def auth_headers(api_key: str | None) -> dict[str, str]:
    headers = dict([SOURCE_HEADER])
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class _MaskBearer(logging.Filter):
    """websockets logs handshake headers at DEBUG: mask the bearer key in them."""

    _BEARER = re.compile(r"(?i)\b(bearer\s+)\S+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._BEARER.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


wire_logger = logging.getLogger("voiceagent.adapters.lightning.wire")
wire_logger.addFilter(_MaskBearer())


class AccountLimiter:
    """Slots for an account's concurrent requests, shared in a process, granted in the
    order requests joined the queue (so a filler always goes before its answer)."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._queue: deque[anyio.Event] = deque()
        self._released = anyio.Event()

    def join(self) -> anyio.Event:
        """A place in the queue, taken now; the event is set when a slot is ours."""
        ticket = anyio.Event()
        self._queue.append(ticket)
        self._grant()
        return ticket

    def leave(self, ticket: anyio.Event) -> None:
        """Give the slot back (or the place in the queue, if no slot came yet)."""
        if ticket.is_set():
            self._free += 1
            self._released.set()
            self._released = anyio.Event()
        elif ticket in self._queue:
            self._queue.remove(ticket)
        self._grant()

    def _grant(self) -> None:
        while self._free > 0 and self._queue:
            self._free -= 1
            self._queue.popleft().set()

    async def released(self) -> None:
        """Until one of this process's requests on the account ends."""
        await self._released.wait()


_LIMITERS: RunVar[dict[tuple[str, str, int], AccountLimiter]] = RunVar("lightning_limiters")


def account_limiter(url: str, api_key: str | None, slots: int) -> AccountLimiter | None:
    """The limiter every session of this event loop shares for (host, key); None = no limit."""
    if slots <= 0:
        return None
    limiters = _LIMITERS.get(None)
    if limiters is None:
        limiters = {}
        _LIMITERS.set(limiters)
    fingerprint = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    key = (urlsplit(url).netloc, fingerprint, slots)
    if key not in limiters:
        limiters[key] = AccountLimiter(slots)
    return limiters[key]


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

    def __init__(self, inbox: MemoryObjectSendStream[Event]) -> None:
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
