"""Plan concurrency: one in-flight limit per (endpoint, key), shared by the whole process.

Electron's plans cap requests in flight per account; the cap is Electron's, so a client of
another OpenAI-compatible endpoint is not limited unless its plan is given."""

from __future__ import annotations

import logging
import math

import anyio
from anyio.lowlevel import RunVar

from .endpoint import is_electron_host

logger = logging.getLogger(__name__)

PLAN_LIMITS = {"standard": 3, "enterprise": 20}
DEFAULT_ELECTRON_PLAN = "standard"

# anyio primitives belong to one event loop, so the registry is kept per running loop.
_LIMITERS: RunVar[dict[tuple[str, str], anyio.CapacityLimiter]] = RunVar("voiceagent_llm_limiters")


def plan_limit(plan: str | int | None) -> int | None:
    """Requests allowed in flight for a plan name or number; None means unlimited."""
    if plan is None or plan == 0:
        return None
    if isinstance(plan, bool):
        raise ValueError(f"not a plan: {plan!r}")
    if isinstance(plan, int):
        if plan < 0:
            raise ValueError(f"a plan's concurrency cannot be negative: {plan}")
        return plan
    try:
        return PLAN_LIMITS[plan.strip().lower()]
    except KeyError:
        names = ", ".join(sorted(PLAN_LIMITS))
        raise ValueError(f"unknown plan {plan!r}: use {names}, a number, or None") from None


def default_plan(base_url: str) -> str | None:
    """The plan assumed when none is given: Electron's standard plan on Electron's host
    (``*.smallest.ai``), none (no limit) on any other endpoint."""
    return DEFAULT_ELECTRON_PLAN if is_electron_host(base_url) else None


def shared_limiter(base_url: str, key_id: str, limit: int | None) -> anyio.CapacityLimiter:
    """The process's limiter for (endpoint, key) in the running event loop.

    Clients asking for different limits on the same key share the tightest one: the plan
    belongs to the account, and exceeding it only earns 429s.
    """
    limiters = _LIMITERS.get(None)
    if limiters is None:
        limiters = {}
        _LIMITERS.set(limiters)
    limiter = limiters.get((base_url, key_id))
    if limiter is None:
        limiter = anyio.CapacityLimiter(math.inf if limit is None else limit)
        limiters[(base_url, key_id)] = limiter
    elif limit is not None and limit < limiter.total_tokens:
        logger.info(
            "LLM concurrency for %s lowered from %s to %s in flight",
            base_url,
            limiter.total_tokens,
            limit,
        )
        limiter.total_tokens = limit  # an int: anyio refuses a float
    return limiter
