"""Fault injection for the Lightning fake: dropped sockets, error frames, a slow first byte."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

CONCURRENCY_CODE = "concurrency_limit"
CONCURRENCY_MESSAGE = "Concurrency limit reached"


@dataclass(frozen=True)
class InjectedError:
    """An error frame (or, over HTTP, an error status) instead of serving a request."""

    message: str
    code: str
    named: bool = True  # False: the frame names no request (neither id)

    @property
    def http_status(self) -> int:
        return 429 if self.code == CONCURRENCY_CODE else 400


class Faults:
    """Queues of faults, each consumed by one request. Safe to arm from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drops: deque[int] = deque()
        self._errors: deque[InjectedError] = deque()
        self._delays: deque[float] = deque()
        self._strays: deque[tuple[int, bool, InjectedError]] = deque()
        self._failures: deque[tuple[int, InjectedError]] = deque()

    def drop_after(self, messages: int, times: int = 1) -> None:
        """Abort the TCP connection (no close frame) after a request's ``messages`` chunks."""
        if messages < 0:
            raise ValueError("messages must be >= 0")
        with self._lock:
            self._drops.extend([messages] * times)

    def error_next(
        self,
        times: int = 1,
        *,
        message: str = CONCURRENCY_MESSAGE,
        code: str = CONCURRENCY_CODE,
        named: bool = True,
    ) -> None:
        """Refuse the next ``times`` requests with an error frame (default: the account limit);
        ``named=False`` leaves both ids out of the frame."""
        with self._lock:
            self._errors.extend([InjectedError(message, code, named)] * times)

    def stray_error_after(
        self,
        chunks: int,
        *,
        close: bool = False,
        message: str = "Internal server error",
        code: str = "internal_error",
    ) -> None:
        """After the next request's ``chunks`` chunks, an error frame naming no request; then
        the audio goes on, or with ``close`` the server closes the socket (code 1011)."""
        with self._lock:
            self._strays.append((chunks, close, InjectedError(message, code, named=False)))

    def error_after(
        self,
        chunks: int,
        times: int = 1,
        *,
        message: str = "Internal server error",
        code: str = "internal_error",
    ) -> None:
        """Fail the next ``times`` requests after ``chunks`` chunks of their audio: an error
        frame naming the request (its ids in the server's ``response_ids`` shape), then no
        more audio and no ``complete``; the socket stays open for the others."""
        if chunks < 0:
            raise ValueError("chunks must be >= 0")
        with self._lock:
            self._failures.extend([(chunks, InjectedError(message, code))] * times)

    def delay_first_byte(self, ms: float, times: int = 1) -> None:
        """Hold the first chunk of the next ``times`` requests back by ``ms`` more."""
        with self._lock:
            self._delays.extend([ms] * times)

    def clear(self) -> None:
        with self._lock:
            self._drops.clear()
            self._errors.clear()
            self._delays.clear()
            self._strays.clear()
            self._failures.clear()

    @property
    def pending(self) -> dict[str, int]:
        with self._lock:
            return {
                "drops": len(self._drops),
                "errors": len(self._errors),
                "delays": len(self._delays),
                "strays": len(self._strays),
                "failures": len(self._failures),
            }

    def take_drop(self) -> int | None:
        with self._lock:
            return self._drops.popleft() if self._drops else None

    def take_error(self) -> InjectedError | None:
        with self._lock:
            return self._errors.popleft() if self._errors else None

    def take_stray(self) -> tuple[int, bool, InjectedError] | None:
        with self._lock:
            return self._strays.popleft() if self._strays else None

    def take_failure(self) -> tuple[int, InjectedError] | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def take_delay(self) -> float:
        with self._lock:
            return self._delays.popleft() if self._delays else 0.0
