"""Fault injection for the Pulse fake: drops, error frames, refusals (before and after the
upgrade) and late finals."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionFaults:
    """The faults one connection was given when it opened."""

    drop_after: int | None = None  # abort TCP (no close frame) after this many client messages
    error_after: int | None = None  # send an error frame, then close 1011, after this many
    error_message: str = "internal error (injected)"
    refuse: bool = False  # close with 1008 at once, as if over the concurrency limit
    error_bare: bool = False  # the error as {"error": …}, as a server reached directly sends it


@dataclass(frozen=True)
class UpgradeRefusal:
    """An HTTP refusal of one upgrade; ``echo_headers`` puts the request's headers (the key
    among them) in the body, as a misbehaving server or proxy does."""

    status: int = 400
    echo_headers: bool = False


class Faults:
    """Queues of faults, each taken by the next connection (or final). Safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drops: deque[int] = deque()
        self._errors: deque[tuple[int, str, bool]] = deque()
        self._refusals = 0
        self._upgrade_refusals: deque[UpgradeRefusal] = deque()
        self._final_delays: deque[float] = deque()

    def drop_after(self, messages: int, times: int = 1) -> None:
        """The next ``times`` connections drop after ``messages`` messages from the client."""
        with self._lock:
            self._drops.extend([messages] * times)

    def error_after(
        self, messages: int, message: str = "internal error (injected)", *, bare: bool = False
    ) -> None:
        """The next connection gets an error frame after ``messages`` messages, then a close;
        ``bare``: the frame is ``{"error": message}`` instead of ``{"type": "error", …}``."""
        with self._lock:
            self._errors.append((messages, message, bare))

    def refuse_upgrade(self, status: int = 400, *, echo_headers: bool = False) -> None:
        """Refuse the next upgrade with HTTP ``status`` and a JSON error body."""
        with self._lock:
            self._upgrade_refusals.append(UpgradeRefusal(status, echo_headers))

    def refuse_next(self, times: int = 1) -> None:
        """Close the next ``times`` connections with 1008 (concurrency limit reached)."""
        with self._lock:
            self._refusals += times

    def delay_finals(self, ms: float, times: int = 1) -> None:
        """Hold each of the next ``times`` finals back for ``ms`` (later messages wait too)."""
        with self._lock:
            self._final_delays.extend([ms] * times)

    def clear(self) -> None:
        with self._lock:
            self._drops.clear()
            self._errors.clear()
            self._refusals = 0
            self._upgrade_refusals.clear()
            self._final_delays.clear()

    def take_connection(self) -> ConnectionFaults:
        with self._lock:
            refuse = self._refusals > 0
            self._refusals -= int(refuse)
            drop = self._drops.popleft() if self._drops and not refuse else None
            error = self._errors.popleft() if self._errors and not refuse else None
        if error is None:
            return ConnectionFaults(drop, refuse=refuse)
        return ConnectionFaults(drop, error[0], error[1], refuse, error[2])

    def take_upgrade_refusal(self) -> UpgradeRefusal | None:
        with self._lock:
            return self._upgrade_refusals.popleft() if self._upgrade_refusals else None

    def take_final_delay_ms(self) -> float:
        with self._lock:
            return self._final_delays.popleft() if self._final_delays else 0.0
