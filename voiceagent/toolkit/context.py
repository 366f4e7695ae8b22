"""ToolContext: what a running tool may know (its call, the session, call metadata) and do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

Say = Callable[[str], Awaitable[None]]
EndCall = Callable[[], Awaitable[None]]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class ToolContext:
    """Filled in by the framework for a tool parameter annotated ``ToolContext``.

    The turn and session layers supply ``say`` and ``end_call``; where they are not
    supplied (a unit test, a tool run outside a session) calling them raises a clear
    ``RuntimeError`` instead of failing somewhere less obvious.
    """

    __slots__ = ("_end_call", "_say", "call_id", "metadata", "session")

    def __init__(
        self,
        call_id: str = "",
        *,
        session: object | None = None,
        metadata: Mapping[str, Any] | None = None,
        say: Say | None = None,
        end_call: EndCall | None = None,
    ) -> None:
        self.call_id = call_id
        self.session = session
        # Read-only: one tool must not be able to change what the next one sees.
        self.metadata: Mapping[str, Any] = (
            _EMPTY if metadata is None else MappingProxyType(dict(metadata))
        )
        self._say = say
        self._end_call = end_call

    async def say(self, text: str) -> None:
        """Speak ``text`` now, from inside the tool (e.g. "Just a second.")."""
        if self._say is None:
            raise RuntimeError(
                "say() is not available here: this ToolContext was made without a "
                "speaker (outside a session, e.g. in a unit test)"
            )
        await self._say(text)

    async def end_call(self) -> None:
        """Hang up once the current turn has been spoken."""
        if self._end_call is None:
            raise RuntimeError(
                "end_call() is not available here: this ToolContext was made without "
                "a session to end (e.g. in a unit test)"
            )
        await self._end_call()

    def for_call(self, call_id: str) -> ToolContext:
        """The same context (session, metadata, behaviours) for another call id."""
        return ToolContext(
            call_id,
            session=self.session,
            metadata=self.metadata,
            say=self._say,
            end_call=self._end_call,
        )

    def __repr__(self) -> str:
        return f"ToolContext(call_id={self.call_id!r})"
