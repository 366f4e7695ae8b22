"""The Redis side of the fleet's plan limits (``voiceagent.fleet``): the URL and how it is
shown (password masked), the lease TTL setting, the Lua scripts that try, renew and release
leases atomically, and whether Redis answers (one warning per outage)."""

from __future__ import annotations

import logging
import math
import os
import re
import time
from urllib.parse import urlsplit, urlunsplit

from voiceagent.redact import MASK

logger = logging.getLogger("voiceagent.fleet")

URL_ENV = "VOICEAGENT_REDIS_URL"
TTL_ENV = "VOICEAGENT_REDIS_LEASE_TTL"
DEFAULT_TTL_S = 15.0
OP_TIMEOUT_S = 1.0  # every Redis call, connecting included
RETRY_S = 5.0  # while Redis is down, one request tries it again this often
INSTALL_HINT = "pip install 'voiceagent[fleet]'"

TRY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ticket, limit, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, gone in ipairs(dead) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
if redis.call('ZSCORE', KEYS[1], ticket) then
  return {1, redis.call('ZCARD', KEYS[2])}
end
if not redis.call('ZSCORE', KEYS[2], ticket) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ticket)
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
local free = limit - redis.call('ZCARD', KEYS[1])
if free > 0 and redis.call('ZRANK', KEYS[2], ticket) < free then
  redis.call('ZREM', KEYS[2], ticket)
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZADD', KEYS[1], now + ttl, ticket)
  return {1, redis.call('ZCARD', KEYS[2])}
end
redis.call('ZADD', KEYS[3], now + ttl, ticket)
return {0, redis.call('ZCARD', KEYS[2])}
"""

RENEW = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i]) end
return redis.call('ZCARD', KEYS[2])
"""

RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


class FleetError(RuntimeError):
    """The fleet's limits cannot be used as configured (no redis package, a bad URL)."""


class RedisDown(Exception):
    """Redis did not answer (the caller goes on with its process-local slot)."""


def redis_url() -> str | None:
    """The fleet's Redis URL (``VOICEAGENT_REDIS_URL``), None when unset or empty."""
    return os.environ.get(URL_ENV) or None


_QUERY_PASSWORD = re.compile(r"(?i)(password=)[^&]*")


def redact_url(url: str) -> str:
    """The URL with its password masked (userinfo or ``?password=``), for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a Redis URL that does not parse>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{user}@{hostport}"
    query = _QUERY_PASSWORD.sub(lambda m: m.group(1) + MASK, parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    found = _QUERY_PASSWORD.search(parts.query)
    return parts.password or (found.group(0).split("=", 1)[1] if found else None)


def lease_ttl() -> float:
    raw = os.environ.get(TTL_ENV)
    if not raw:
        return DEFAULT_TTL_S
    try:
        ttl = float(raw)
    except ValueError:
        raise FleetError(f"{TTL_ENV} must be a number of seconds, not {raw!r}") from None
    if not ttl > 0 or math.isinf(ttl):
        raise FleetError(f"{TTL_ENV} must be a positive number of seconds, not {raw!r}")
    return ttl


class Health:
    """Whether a Redis URL answers, for the whole process: one warning per outage."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.down = False
        self._retry_at = 0.0

    def usable(self) -> bool:
        """Up, or down and due a retry (claimed by this caller: one probe at a time)."""
        if not self.down:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + RETRY_S
        return True

    def failed(self, reason: str) -> None:
        self._retry_at = time.monotonic() + RETRY_S
        if self.down:
            return
        self.down = True
        logger.warning(
            "Redis at %s does not answer (%s): plan limits fall back to each process's own "
            "limiter (the account may see 429s) until it answers; trying again every %g s",
            self.shown,
            reason,
            RETRY_S,
        )

    def answered(self) -> None:
        if self.down:
            self.down = False
            logger.warning(
                "Redis at %s answers again: plan limits are fleet-wide again", self.shown
            )


HEALTH: dict[str, Health] = {}
