"""ToolCall: one call of a tool by the model, with its one state machine."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ToolCallState(str, Enum):
    """Where a call is in its life; done, failed and cancelled are terminal."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


_ALLOWED: dict[ToolCallState, frozenset[ToolCallState]] = {
    ToolCallState.PENDING: frozenset({ToolCallState.RUNNING, ToolCallState.CANCELLED}),
    ToolCallState.RUNNING: frozenset(
        {ToolCallState.DONE, ToolCallState.FAILED, ToolCallState.CANCELLED}
    ),
    ToolCallState.DONE: frozenset(),
    ToolCallState.FAILED: frozenset(),
    ToolCallState.CANCELLED: frozenset(),
}


class ToolCallStateError(RuntimeError):
    """A transition the state machine does not allow (a bug in the caller, not the tool)."""


def error_content(message: str) -> str:
    """The tool message content the model reads for a call that did not succeed."""
    return json.dumps({"error": message}, ensure_ascii=False)


CANCELLED_CONTENT = error_content("cancelled")


@dataclass(eq=False)
class ToolCall:
    """One tool call: pending → running → done | failed | cancelled, or pending → cancelled.

    ``arguments`` is the raw JSON text the model streamed; ``args`` the validated
    arguments once the call has started; ``content`` the tool message content once it
    has ended. Timestamps are ``time.monotonic()`` seconds.
    """

    id: str
    name: str
    arguments: str = ""
    index: int | None = field(default=None, kw_only=True)
    round: int | None = field(default=None, kw_only=True)
    args: dict[str, Any] | None = field(default=None, init=False)
    content: str | None = field(default=None, init=False)
    error: str | None = field(default=None, init=False)
    started_at: float | None = field(default=None, init=False)
    ended_at: float | None = field(default=None, init=False)
    _state: ToolCallState = field(default=ToolCallState.PENDING, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.id:  # an empty id cannot pair the assistant and tool messages
            self.id = f"call_{secrets.token_hex(8)}"

    @property
    def state(self) -> ToolCallState:
        return self._state

    @property
    def is_terminal(self) -> bool:
        return not _ALLOWED[self._state]

    def start(self) -> None:
        """pending → running."""
        self._move(ToolCallState.RUNNING)
        self.started_at = time.monotonic()

    def finish(self, content: str) -> None:
        """running → done, with the result as the tool message content."""
        self._move(ToolCallState.DONE)
        self._end(content)

    def fail(self, error: str) -> None:
        """running → failed; the model reads ``{"error": error}``."""
        self._move(ToolCallState.FAILED)
        self.error = error
        self._end(error_content(error))

    def cancel(self) -> None:
        """pending | running → cancelled; the model reads ``{"error": "cancelled"}``."""
        self._move(ToolCallState.CANCELLED)
        self.error = "cancelled"
        self._end(CANCELLED_CONTENT)

    def tool_message(self) -> dict[str, str]:
        """The ``role: tool`` message answering this call; only once it has ended."""
        if self.content is None:
            raise ToolCallStateError(
                f"tool call {self.id} ({self.name}) is {self._state.value}: "
                "it has no tool message until it ends"
            )
        return {"role": "tool", "tool_call_id": self.id, "content": self.content}

    def _move(self, new: ToolCallState) -> None:
        if new not in _ALLOWED[self._state]:
            raise ToolCallStateError(
                f"tool call {self.id} ({self.name}): {self._state.value} → {new.value} "
                "is not a legal transition"
            )
        self._state = new

    def _end(self, content: str) -> None:
        self.content = content
        self.ended_at = time.monotonic()
