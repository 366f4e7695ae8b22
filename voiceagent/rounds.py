"""What one LLM request of a turn produced, and DESIGN.md's "What was heard" rule that turns
it into the messages history keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from voiceagent.speech import Segment
from voiceagent.timeline import TurnTimeline
from voiceagent.toolkit import ToolCall, ToolCallState


@dataclass(eq=False)
class Round:
    """One LLM request of a turn and what came of it."""

    number: int
    content: str = ""  # the model's streamed content
    spoken: list[str] = field(default_factory=list)  # fillers and ctx.say() texts we added
    segments: list[Segment] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    done: dict[str, anyio.Event] = field(default_factory=dict)
    first_token: bool = False
    usage_seen: bool = False
    finish_reason: str | None = None

    def request_message(self) -> dict[str, Any]:
        """The assistant message as the model produced it, for this turn's next request."""
        calls = [c for c in self.calls if c.state is not ToolCallState.PENDING]
        return assistant_message(self.content, calls)


@dataclass
class TurnResult:
    heard: str  # what the listener heard (what history keeps)
    said: str  # all the agent produced, heard or not
    calls: list[ToolCall]
    timeline: TurnTimeline
    reason: str


def commit_heard(rounds: list[Round], *, spoken: bool) -> tuple[list[dict[str, Any]], str, str]:
    """The turn's messages for history, and its (heard, said) text.

    Each round keeps only its heard text (all of it when nothing is spoken aloud) and every
    call that started, answered; a call of the discarded generation that never started
    never runs and is left out, so no assistant message has an unanswered call.
    """
    messages: list[dict[str, Any]] = []
    heard_parts: list[str] = []
    said_parts: list[str] = []
    for rnd in rounds:
        said = " ".join(p for p in [rnd.content.strip(), *rnd.spoken] if p)
        said_parts.append(said)
        if spoken:
            heard = " ".join(t for t in (s.heard_text() for s in rnd.segments) if t)
        else:
            heard = said
        for call in rnd.calls:
            if not call.is_terminal:
                call.cancel()  # never started (pending), or abandoned: answered as cancelled
        ran = [c for c in rnd.calls if c.started_at is not None]
        if heard or ran:
            messages.append(assistant_message(heard, ran))
            messages.extend(c.tool_message() for c in ran)
        if heard:
            heard_parts.append(heard)
    return messages, " ".join(heard_parts), " ".join(p for p in said_parts if p)


def assistant_message(content: str, calls: list[ToolCall]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content.strip() or None}
    if calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments or "{}"},
            }
            for c in calls
        ]
    return message
