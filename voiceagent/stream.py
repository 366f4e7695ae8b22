"""Chat-completion chunks → typed events: text deltas, tool calls the moment they are
complete, usage, and one `Finished` carrying the whole assistant message."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import TypeAlias

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from voiceagent.llm.usage import Usage

__all__ = [
    "Event",
    "Finished",
    "StreamParser",
    "TextDelta",
    "ToolCallReady",
    "ToolCallStarted",
    "Usage",
    "stream_events",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A call whose name and id are known; a server that sends no id gets one made up
    (``call_<index>_…``) when the call is ready, and `ToolCallReady` carries the same."""

    index: int
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """A call whose arguments are final; `arguments` is the raw text (the executor parses it)."""

    index: int
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of the stream: everything the assistant message of this round holds."""

    finish_reason: str | None
    content: str
    tool_calls: tuple[ToolCallReady, ...]


Event: TypeAlias = TextDelta | ToolCallStarted | ToolCallReady | Usage | Finished

# The only characters that change the scanner's state; everything between them is skipped
# by the regex engine, so long arguments cost one C-level search per structural character.
_IN_STRING = re.compile(r'["\\]')
_STRUCTURAL = re.compile(r'["{}\[\]]')


class _ObjectScanner:
    """Notices, fragment by fragment, when JSON text has closed a top-level object.

    It keeps just enough state (inside a string, after a backslash, nesting depth) to be
    resumed at any split point; it does not validate: `json.loads` does that, once.
    """

    __slots__ = ("closed", "depth", "escaped", "in_string", "not_object")

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.closed = False
        self.not_object = False

    def feed(self, text: str) -> bool:
        """Scan a fragment; True if the top-level object closed within it."""
        if self.closed or self.not_object:
            return False
        pos, end = 0, len(text)
        if self.depth == 0:
            stripped = text.lstrip()
            if not stripped:
                return False
            if stripped[0] != "{":
                # Not an object: it can only be made ready by the next index or the finish.
                self.not_object = True
                return False
            pos = end - len(stripped)
        while pos < end:
            if self.escaped:
                self.escaped = False
                pos += 1
                continue
            match = (_IN_STRING if self.in_string else _STRUCTURAL).search(text, pos)
            if match is None:
                return False
            char, pos = match.group(), match.end()
            if char == "\\":
                self.escaped = True
            elif char == '"':
                self.in_string = not self.in_string
            elif char in "{[":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 0:
                    self.closed = True
                    return True
        return False


class _Call:
    __slots__ = ("arguments", "call_id", "index", "name", "ready", "scanner", "started")

    def __init__(self, index: int) -> None:
        self.index = index
        self.call_id = ""
        self.name = ""
        self.arguments: list[str] = []
        self.scanner = _ObjectScanner()
        self.started = False
        self.ready: ToolCallReady | None = None


class StreamParser:
    """Sans-IO: `feed()` each chunk, then `finish()` once at the end of the stream."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._finish_reason: str | None = None
        self._finished = False

    def feed(self, chunk: ChatCompletionChunk) -> list[Event]:
        if self._finished:
            raise RuntimeError("StreamParser.feed() after finish()")
        events: list[Event] = []
        for choice in chunk.choices:
            if choice.index != 0:  # n > 1 is refused by Electron; only the first choice counts
                continue
            delta = choice.delta
            if delta.content:
                self._content.append(delta.content)
                events.append(TextDelta(delta.content))
            for fragment in delta.tool_calls or ():
                self._take_fragment(fragment, events)
            if choice.finish_reason is not None:
                self._finish_reason = choice.finish_reason
                self._flush(events)
        if chunk.usage is not None:
            events.append(Usage.from_openai(chunk.usage))
        return events

    def finish(self) -> list[Event]:
        """Make every remaining call ready and close with `Finished`; later calls return []."""
        if self._finished:
            return []
        self._finished = True
        events: list[Event] = []
        self._flush(events)
        calls = tuple(
            call.ready for _, call in sorted(self._calls.items()) if call.ready is not None
        )
        events.append(Finished(self._finish_reason, "".join(self._content), calls))
        return events

    def _take_fragment(self, fragment: ChoiceDeltaToolCall, events: list[Event]) -> None:
        call = self._calls.get(fragment.index)
        if call is None:
            # A new index means the model has moved on: every earlier call is complete.
            self._flush(events)
            call = self._calls[fragment.index] = _Call(fragment.index)
        if call.ready is not None:
            return  # a late fragment (stray whitespace) of a call already handed on
        if fragment.id and not call.call_id:
            call.call_id = fragment.id
        function = fragment.function
        if function is None:
            self._start_when_known(call, events)  # an id that came after the name
            return
        # Servers that split a name send its pieces before any argument; a fragment equal
        # to the name so far, or one after the arguments began, is an echo, not more name.
        # (`Started` carries the name as first seen; `Ready` the joined one.)
        if function.name and not call.arguments and function.name != call.name:
            call.name += function.name
        self._start_when_known(call, events)
        if function.arguments:
            call.arguments.append(function.arguments)
            if call.scanner.feed(function.arguments):
                text = "".join(call.arguments)
                if _is_json_object(text):
                    self._make_ready(call, events)

    def _flush(self, events: list[Event]) -> None:
        for _, call in sorted(self._calls.items()):
            if call.ready is None:
                self._make_ready(call, events)

    @staticmethod
    def _start_when_known(call: _Call, events: list[Event]) -> None:
        """``Started`` once the call has a name and an id: some servers send the id only in
        a later fragment (it is then awaited until the call is ready), or never."""
        if call.name and call.call_id and not call.started:
            call.started = True
            events.append(ToolCallStarted(call.index, call.call_id, call.name))

    @staticmethod
    def _make_ready(call: _Call, events: list[Event]) -> None:
        if not call.call_id:  # none came (or an empty one): the turn needs one to pair
            call.call_id = made_up_call_id(call.index)
        if not call.started:  # keep "Started before Ready" even for a call that had no name
            call.started = True
            events.append(ToolCallStarted(call.index, call.call_id, call.name))
        call.ready = ToolCallReady(call.index, call.call_id, call.name, "".join(call.arguments))
        events.append(call.ready)


def made_up_call_id(index: int) -> str:
    """An id for a call the server sent none for: ``call_<index>_<random>``, unique enough
    that no two calls of a conversation share one."""
    return f"call_{index}_{secrets.token_hex(6)}"


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


async def stream_events(chunks: AsyncIterable[ChatCompletionChunk]) -> AsyncIterator[Event]:
    """The events of a chunk stream, ending with `Finished` if the stream ends normally."""
    parser = StreamParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.finish():
        yield event
