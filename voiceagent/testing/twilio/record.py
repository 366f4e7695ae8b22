"""What a simulated call recorded: messages both ways on the caller's clock, marks, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

MarkOutcome = Literal["played", "cleared"]


@dataclass(frozen=True)
class Received:
    """One frame from the bot: caller-clock arrival, the parsed JSON (None if unparseable)."""

    t: float
    raw: str | bytes
    message: dict[str, Any] | None


@dataclass(frozen=True)
class Sent:
    """One message the caller sent; ``sequence_number`` is None only for ``connected``."""

    t: float
    sequence_number: str | None
    message: dict[str, Any]


@dataclass
class CallRecord:
    received: list[Received] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    marks: list[tuple[str, MarkOutcome, float]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)  # caller times of each `clear`
    protocol_errors: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    @property
    def sent_by_sequence(self) -> dict[str, dict[str, Any]]:
        return {s.sequence_number: s.message for s in self.sent if s.sequence_number}

    def sent_events(self, event: str) -> list[dict[str, Any]]:
        return [s.message for s in self.sent if s.message.get("event") == event]

    def received_events(self, event: str) -> list[dict[str, Any]]:
        return [r.message for r in self.received if r.message and r.message.get("event") == event]
