"""What a session tells applications (``session.events()``), and the fan-out that delivers it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

if TYPE_CHECKING:
    from voiceagent.rounds import TurnResult


@dataclass(frozen=True, slots=True)
class UserSpeechStarted:
    at_ms: float  # session clock


@dataclass(frozen=True, slots=True)
class UserSpeechEnded:
    at_ms: float


@dataclass(frozen=True, slots=True)
class UserTranscript:
    """What the STT heard; partials revise, finals do not."""

    text: str
    final: bool
    at_ms: float


@dataclass(frozen=True, slots=True)
class TurnStarted:
    trigger: str  # "user" | "greeting" | "reprompt"
    text: str | None  # the user's words, for a user turn
    at_ms: float


@dataclass(frozen=True, slots=True)
class TurnEnded:
    result: TurnResult  # heard and said text, tool calls, the turn's timeline, why it ended


@dataclass(frozen=True, slots=True)
class BargeIn:
    segment: int  # the segment cut (0: nothing was playing yet)
    at_ms: float


@dataclass(frozen=True, slots=True)
class ToolStarted:
    name: str
    call_id: str


@dataclass(frozen=True, slots=True)
class ToolFinished:
    name: str
    call_id: str
    state: str  # "done" | "failed" | "cancelled"


@dataclass(frozen=True, slots=True)
class AgentSpeechStarted:
    segment: int
    text: str


@dataclass(frozen=True, slots=True)
class AgentSpeechEnded:
    segment: int
    text: str


SessionEvent = (
    UserSpeechStarted
    | UserSpeechEnded
    | UserTranscript
    | TurnStarted
    | TurnEnded
    | BargeIn
    | ToolStarted
    | ToolFinished
    | AgentSpeechStarted
    | AgentSpeechEnded
)


class Broadcast:
    """Every subscriber gets every event published after it subscribed; never blocks."""

    def __init__(self) -> None:
        self._subscribers: list[MemoryObjectSendStream[SessionEvent]] = []
        self._closed = False

    def subscribe(self) -> MemoryObjectReceiveStream[SessionEvent]:
        send, receive = anyio.create_memory_object_stream[SessionEvent](math.inf)
        if self._closed:
            send.close()
        else:
            self._subscribers.append(send)
        return receive

    def publish(self, event: SessionEvent) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.remove(send)  # that reader went away

    def close(self) -> None:
        self._closed = True
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()


async def iterate(receive: MemoryObjectReceiveStream[SessionEvent]) -> AsyncIterator[SessionEvent]:
    async with receive:
        async for event in receive:
            yield event
