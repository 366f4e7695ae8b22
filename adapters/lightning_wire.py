"""What both Lightning adapters share: options, errors, auth headers, the account limiter
(process-wide, and fleet-wide in Redis with ``VOICEAGENT_REDIS_URL``)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
from anyio.lowlevel import RunVar

from voiceagent.fleet import FleetLimiter, Lease, fleet_limiter

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

    def keepalive(self) -> dict[str, Any]:
        """The settings pipecat's keepalive carries (no rate or speed: nothing is spoken)."""
        return {"voice_id": self.voice, "model": self.model, "language": self.language}

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


class Ticket:
    """A request's place in its account's queue: ``await wait()`` until the slot is ours.

    The process's slot comes first, in the order tickets were taken; with a fleet
    (``VOICEAGENT_REDIS_URL``) the wait goes on for the account's lease in Redis."""

    def __init__(self, fleet: FleetLimiter | None) -> None:
        self._granted = anyio.Event()
        self._fleet = fleet
        self.lease: Lease | None = None
        self._leased = fleet is None

    def is_set(self) -> bool:
        """The process's slot is ours (the fleet's lease may still be coming)."""
        return self._granted.is_set()

    def set(self) -> None:
        self._granted.set()

    async def wait(self) -> None:
        await self._granted.wait()
        if not self._leased and self._fleet is not None:
            self.lease = await self._fleet.acquire()  # None when Redis is down: local only
            self._leased = True


class AccountLimiter:
    """Slots for an account's concurrent requests, shared in a process, granted in the
    order requests joined the queue (so a filler always goes before its answer); with a
    fleet, each slot also holds a lease in Redis (see `voiceagent.fleet`)."""

    def __init__(self, slots: int, fleet: FleetLimiter | None = None) -> None:
        self._free = slots
        self._queue: deque[Ticket] = deque()
        self._released = anyio.Event()
        self.fleet = fleet

    def join(self) -> Ticket:
        """A place in the queue, taken now; ``await ticket.wait()`` until a slot is ours."""
        ticket = Ticket(self.fleet)
        self._queue.append(ticket)
        self._grant()
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """Give the slot back (or the place in the queue, if no slot came yet)."""
        if ticket.lease is not None:
            ticket.lease.release_soon()
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
    netloc = urlsplit(url).netloc.rpartition("@")[2]  # never a user:password part
    key = (netloc, fingerprint, slots)
    fleet = fleet_limiter("tts", netloc, fingerprint, slots)
    limiter = limiters.get(key)
    if limiter is None:
        limiter = limiters[key] = AccountLimiter(slots, fleet)
    else:
        limiter.fleet = fleet  # the fleet's URL is read at each request, as the LLM's
    return limiter
