"""Fault injection for the Electron simulator: failures, cut streams and stalls, one per request."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class InjectedFailure:
    """An error response to return instead of serving a request."""

    status: int
    retry_after: str | None = None
    message: str | None = None


class Faults:
    """Queues of faults, each consumed by one request. Safe to arm from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: deque[InjectedFailure] = deque()
        self._cuts: deque[int] = deque()
        self._stalls: deque[float] = deque()
        self._pauses: deque[tuple[int, float]] = deque()

    def fail_next(
        self,
        times: int = 1,
        *,
        status: int = 503,
        retry_after: float | str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``, message)."""
        if not 400 <= status <= 599:
            raise ValueError(f"an injected failure needs a 4xx or 5xx status, not {status}")
        header = None if retry_after is None else _retry_after(retry_after)
        with self._lock:
            self._failures.extend([InjectedFailure(status, header, message)] * times)

    def cut_after(self, chunks: int, times: int = 1) -> None:
        """Drop the TCP connection after ``chunks`` SSE events, for the next ``times`` streams."""
        if chunks < 0:
            raise ValueError("chunks must be >= 0")
        with self._lock:
            self._cuts.extend([chunks] * times)

    def stall_next(self, times: int = 1, *, seconds: float) -> None:
        """Wait ``seconds`` before sending the response headers, for the next ``times`` requests."""
        with self._lock:
            self._stalls.extend([seconds] * times)

    def pause_after(self, chunks: int, times: int = 1, *, seconds: float) -> None:
        """Go quiet for ``seconds`` after ``chunks`` SSE events, for the next ``times`` streams.

        A model that accepts and then stops answering: ``chunks=1`` pauses after the role
        chunk (before the first token), ``chunks=2`` after the first content delta.
        """
        if chunks < 0:
            raise ValueError("chunks must be >= 0")
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._pauses.extend([(chunks, seconds)] * times)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._cuts.clear()
            self._stalls.clear()
            self._pauses.clear()

    @property
    def pending(self) -> dict[str, int]:
        """How many of each fault are still armed."""
        with self._lock:
            return {
                "failures": len(self._failures),
                "cuts": len(self._cuts),
                "stalls": len(self._stalls),
                "pauses": len(self._pauses),
            }

    def take_failure(self) -> InjectedFailure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def take_cut(self) -> int | None:
        with self._lock:
            return self._cuts.popleft() if self._cuts else None

    def take_pause(self) -> tuple[int, float] | None:
        with self._lock:
            return self._pauses.popleft() if self._pauses else None

    def take_stall(self) -> float | None:
        with self._lock:
            return self._stalls.popleft() if self._stalls else None


def _retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
