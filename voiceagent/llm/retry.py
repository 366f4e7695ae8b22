"""The retry policy: which failures are retried (one table), and how long to wait."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

FailureKind = Literal[
    "bad_request",  # 400
    "authentication",  # 401
    "permission",  # 403
    "client_error",  # any other 4xx
    "rate_limit",  # 429
    "concurrency_limit",  # 429 "Concurrency limit reached"
    "unavailable",  # 502, 503
    "server_error",  # any other 5xx
    "connection",  # refused, reset, or cut before the first content/tool delta
    "timeout",  # no first byte or first token in time, or a read timeout before use
    "stream_error",  # an error event inside the stream, before the first delta
]

# The whole policy in one place. A stream already handed on is never retried, whatever
# its failure (see ElectronStream); this table decides only for requests not yet used.
RETRY_TABLE: Mapping[FailureKind, bool] = MappingProxyType(
    {
        "bad_request": False,
        "authentication": False,
        "permission": False,
        "client_error": False,
        "rate_limit": True,
        "concurrency_limit": True,
        "unavailable": True,
        "server_error": False,
        "connection": True,
        "timeout": True,
        "stream_error": True,
    }
)


@dataclass(frozen=True)
class Failure:
    """One failed attempt, reduced to what the policy and the error need."""

    kind: FailureKind
    message: str
    status: int | None = None
    error_type: str | None = None
    request_id: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0  # seconds to sleep before the next attempt (already scaled)
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` in total; waits base, 2·base, 4·base… capped, with ± jitter.

    `scale` multiplies every wait (Retry-After included) and exists for tests: a scale of
    0.001 keeps every decision and ordering while sleeping a thousandth of the time.
    """

    max_attempts: int = 5
    base: float = 0.25
    cap: float = 8.0
    jitter: float = 0.2
    scale: float = 1.0
    table: Mapping[FailureKind, bool] = field(default_factory=lambda: RETRY_TABLE)
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        if self.base < 0 or self.cap < 0 or self.scale < 0:
            raise ValueError("base, cap and scale must not be negative")

    def nominal_backoff(self, failed_attempt: int) -> float:
        """The wait after attempt `failed_attempt` (1-based), before jitter and scale."""
        return min(self.cap, self.base * 2.0 ** (failed_attempt - 1))

    def backoff(self, failed_attempt: int) -> float:
        """The nominal wait with jitter applied, never above the cap (unscaled)."""
        spread = self.jitter * (2.0 * self.rand() - 1.0)
        return min(self.cap, self.nominal_backoff(failed_attempt) * (1.0 + spread))

    def decide(self, failure: Failure, attempts_made: int) -> RetryDecision:
        if not self.table.get(failure.kind, False):
            return RetryDecision(False, reason=f"{failure.kind} is never retried")
        if attempts_made >= self.max_attempts:
            return RetryDecision(False, reason=f"gave up after {attempts_made} attempts")
        wait = self.backoff(attempts_made)
        if failure.retry_after is not None:
            if failure.retry_after > self.cap:
                return RetryDecision(
                    False,
                    reason=(
                        f"the server asks to retry after {failure.retry_after:g} s, "
                        f"beyond the {self.cap:g} s backoff cap"
                    ),
                )
            wait = max(wait, failure.retry_after)
        return RetryDecision(True, delay=wait * self.scale)
