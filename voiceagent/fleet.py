"""Plan limits across a fleet: leases in Redis when ``VOICEAGENT_REDIS_URL`` is set.

Smallest AI's plan limits (Electron's requests in flight, Lightning's account concurrency)
hold for the whole account, whatever the number of processes and machines. Each process
keeps its own limiter (``voiceagent.llm.limiter``, ``lightning_wire.AccountLimiter``), and a
request first takes its slot there, in the process's FIFO order; with a Redis URL it then
takes a lease here before it is sent, and gives it back when it ends.

The design, one set of keys per (kind, endpoint, key fingerprint) — never the key itself —
under one hash tag, so a Redis Cluster keeps them on one node:

- ``…:holders``, a sorted set: ticket -> expiry of its lease (ms, Redis's own clock, so
  machines need not agree on the time). A lease lives ``ttl`` seconds and is renewed every
  ``ttl / 3`` while its request runs (one renewal call per limiter, not per request); a
  process that dies stops renewing, and its slots come back within ``ttl``.
- ``…:queue``, a sorted set: ticket -> sequence number (``…:seq``, INCR) taken at the
  first try: the fleet's FIFO queue.
- ``…:waiting``, a sorted set: ticket -> heartbeat expiry. A waiter refreshes it at every
  try; a waiter whose process died drops out of the queue within ``ttl``.

One Lua script does a try atomically: drop expired leases and dead waiters, join the
queue if new, and grant a lease when fewer than ``limit`` are held and the ticket is among
the first ``limit - held`` of the queue (strict FIFO across processes). A waiter tries
again every ``poll`` seconds, or at once when a lease of its own process ends. Releasing
removes the ticket from all three sets. Every key expires after a day without use. A
request joins Redis's queue only once it holds its process's slot, so a busy process has
at most ``limit`` requests in the fleet's queue and cannot crowd out a quiet one. Redis
also says how many wait, at each try and renewal: a stream that holds a lease is
``contended`` (a barge-in's drain gives its slot up) when others of the fleet queue.

When Redis is down or unreachable — refused, timed out (each call is bounded by
``OP_TIMEOUT_S``), or refusing our password — requests keep their process-local slot only:
one warning names the (password-redacted) URL, and one request at most every
``RETRY_S`` seconds tries Redis again; when it answers, a second line says the limits are
fleet-wide again. A request waiting in Redis's queue when Redis dies goes ahead on its
local slot. The choice is availability: a dead Redis must not silence every call of the
fleet. Meanwhile the account may see up to (processes x plan) requests; Electron answers
the excess with 429 "Concurrency limit reached" and Lightning with its concurrency error,
which both clients already back off and retry. A lease lost with Redis's data (a restart)
is not re-created: the count is low until the requests that held it end.

The ``redis`` package (the ``fleet`` extra) is imported only when the URL is set. Leases
need an asyncio event loop (uvloop included), as redis's asyncio client does.
``VOICEAGENT_REDIS_LEASE_TTL`` (seconds, default 15) sets ``ttl``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio
from anyio.lowlevel import RunVar

from voiceagent.fleet_redis import (
    HEALTH,
    INSTALL_HINT,
    OP_TIMEOUT_S,
    RELEASE,
    RENEW,
    TRY,
    URL_ENV,
    Health,
    RedisDown,
    lease_ttl,
    redact_url,
    redis_url,
    url_password,
)
from voiceagent.fleet_redis import TTL_ENV as TTL_ENV
from voiceagent.fleet_redis import FleetError as FleetError  # the public error, here too
from voiceagent.redact import redact

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

logger = logging.getLogger(__name__)

MAX_POLL_S = 0.1  # a waiter's tries, at most this far apart (less for a short ttl)
IDLE_MS = 86_400_000  # the keys of a limiter nobody used for a day expire


class _Connection:
    """One Redis client per URL and event loop, its scripts, and its limiters."""

    def __init__(self, url: str) -> None:
        shown = redact_url(url)
        try:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError:
            raise FleetError(
                f"{URL_ENV} is set ({shown}) but the redis package is not installed: {INSTALL_HINT}"
            ) from None
        self.shown = shown
        self._password = url_password(url)
        self.ttl_s = lease_ttl()
        self.health = HEALTH.setdefault(url, Health(shown))
        try:
            self.client: Redis = redis.asyncio.Redis.from_url(
                url,
                socket_timeout=OP_TIMEOUT_S,
                socket_connect_timeout=OP_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            problem = self._clean(exc)
            raise FleetError(f"{URL_ENV} is not a usable Redis URL ({shown}): {problem}") from None
        self.try_script: AsyncScript = self.client.register_script(TRY)
        self.renew_script: AsyncScript = self.client.register_script(RENEW)
        self.release_script: AsyncScript = self.client.register_script(RELEASE)
        self.limiters: dict[str, FleetLimiter] = {}
        logger.info("plan limits are shared by the fleet through Redis at %s", shown)

    def _clean(self, exc: BaseException) -> str:
        return redact(str(exc), (self._password,)) or type(exc).__name__

    async def run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """One script call, bounded; RedisDown (logged once per outage) when it fails."""
        from redis.exceptions import RedisError

        try:
            with anyio.fail_after(OP_TIMEOUT_S):
                result = await script(keys=keys, args=args, client=self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self.health.failed(f"{type(exc).__name__}: {self._clean(exc)}")
            raise RedisDown from None
        self.health.answered()
        return result


_CONNECTIONS: RunVar[dict[str, _Connection]] = RunVar("voiceagent_fleet_connections")


def fleet_limiter(
    kind: str, endpoint: str, key_id: str, limit: float | None
) -> FleetLimiter | None:
    """The fleet's limiter for (kind, endpoint, key fingerprint) in this event loop, or
    None: no ``VOICEAGENT_REDIS_URL``, or no limit to share.

    ``key_id`` must already be a fingerprint of the key, never the key; of ``endpoint``
    only scheme, host, port and path are kept. The tightest limit asked for wins, as in a
    process.
    """
    url = redis_url()
    if url is None or limit is None or math.isinf(limit) or limit <= 0:
        return None
    endpoint = _bare(endpoint)
    connections = _CONNECTIONS.get(None)
    if connections is None:
        connections = {}
        _CONNECTIONS.set(connections)
    conn = connections.get(url)
    if conn is None:
        conn = connections[url] = _Connection(url)
    name = f"voiceagent:plan:{{{kind}|{endpoint}|{key_id[:16]}}}"
    limiter = conn.limiters.get(name)
    if limiter is None:
        limiter = conn.limiters[name] = FleetLimiter(conn, name, int(limit))
    elif limit < limiter.limit:
        limiter.limit = int(limit)
    return limiter


def _bare(endpoint: str) -> str:
    """scheme://host[:port]/path: never a user, password, query or fragment in a key."""
    parts = urlsplit(endpoint)
    if not parts.netloc:
        return endpoint
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class FleetLimiter:
    """One account's slots in Redis, as seen by this event loop (see the module's text)."""

    def __init__(self, conn: _Connection, name: str, limit: int) -> None:
        self._conn = conn
        self.name = name
        self.limit = limit
        self.keys = [f"{name}:holders", f"{name}:queue", f"{name}:waiting", f"{name}:seq"]
        self._held: set[str] = set()
        self.queued = 0  # the fleet's waiters, as Redis last said (at a try or a renewal)
        self._released = anyio.Event()  # set when a lease of this process ends
        self._renewer: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()

    @property
    def contended(self) -> bool:
        """Requests of the fleet queue for this account, as last seen (at most ttl/3 ago
        while a lease is held)."""
        return self.queued > 0

    @property
    def held(self) -> int:
        """Leases this event loop holds."""
        return len(self._held)

    async def acquire(self, on_wait: Callable[[], None] | None = None) -> Lease | None:
        """A lease, after waiting for it in the fleet's queue; None when Redis is down
        (the caller goes on with its process-local slot). Cancelled, it leaves the queue.
        ``on_wait`` is called once, when the first try finds no free slot."""
        if not self._conn.health.usable():
            return None
        ticket = secrets.token_hex(12)
        waited = False
        ttl_ms = max(1, round(self._conn.ttl_s * 1000))
        poll = min(MAX_POLL_S, self._conn.ttl_s / 10)
        try:
            while True:
                released = self._released
                granted, self.queued = await self._conn.run(
                    self._conn.try_script, self.keys, [ticket, self.limit, ttl_ms, IDLE_MS]
                )
                if granted:
                    break
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                with anyio.move_on_after(poll):
                    await released.wait()
        except RedisDown:
            return None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._forget(ticket)
            raise
        self._held.add(ticket)
        self._ensure_renewer()
        return Lease(self, ticket, waited)

    async def _forget(self, ticket: str) -> None:
        self._held.discard(ticket)
        try:
            if not self._conn.health.down:  # else no wait at a request's end: it expires
                await self._conn.run(self._conn.release_script, self.keys[:3], [ticket])
        except RedisDown:
            pass  # its lease expires within the ttl
        finally:
            self._wake()  # this process's waiters try at once; the renewer sees the count

    def _wake(self) -> None:
        self._released.set()
        self._released = anyio.Event()

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        """Renew this loop's leases every ttl/3 while any are held."""
        ttl_ms = max(1, round(self._conn.ttl_s * 1000))
        while self._held:
            with anyio.move_on_after(self._conn.ttl_s / 3):
                while self._held:
                    await self._released.wait()
            if not self._held:
                return
            if self._conn.health.down:
                continue  # the requests go on; their leases expire, if Redis kept them
            try:
                self.queued = await self._conn.run(
                    self._conn.renew_script, self.keys[:2], [ttl_ms, *self._held]
                )
            except RedisDown:
                pass  # logged; the requests go on, their leases expire

    def _release_soon(self, ticket: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._forget(ticket))
        except RuntimeError:  # no loop running any more (a process ending): it expires
            self._held.discard(ticket)
            return
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)


class Lease:
    """One request's slot in the fleet; give it back with `release` (or `release_soon`)."""

    def __init__(self, limiter: FleetLimiter, ticket: str, waited: bool) -> None:
        self._limiter = limiter
        self.ticket = ticket
        self.waited = waited  # it queued behind other leases before being granted
        self._done = False

    @property
    def contended(self) -> bool:
        """Others in the fleet wait for a slot of this account (as last seen)."""
        return self._limiter.contended

    async def release(self) -> None:
        """Give the slot back now (bounded, never raises for Redis, safe to repeat)."""
        if self._done:
            return
        self._done = True
        with anyio.CancelScope(shield=True):
            await self._limiter._forget(self.ticket)

    def release_soon(self) -> None:
        """Give the slot back from synchronous code (a task of the running loop does it)."""
        if self._done:
            return
        self._done = True
        self._limiter._release_soon(self.ticket)
