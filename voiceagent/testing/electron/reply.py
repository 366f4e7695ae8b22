"""One assistant reply (text and tool calls) and how it becomes streamed deltas.

Applies ``stop`` strings and ``max_tokens`` the way a model would: generation simply ends.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"\s*\S+")
_ARG_PIECE = re.compile(r"\s*[\w.+-]+|\s*[^\w\s]{1,2}|\s+")


@dataclass(frozen=True)
class ToolCallSpec:
    """A tool call the reply makes: the function name and its arguments."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)  # str: raw text, sent as is
    fragments: int | None = None  # split the arguments into exactly this many fragments


@dataclass(frozen=True)
class Reply:
    """What the assistant says (``text``, may be None) and the tools it calls.

    ``text_after`` is content streamed after the tool calls, in the same stream: some
    OpenAI-compatible models speak again once their calls are out (a goodbye behind an
    ``end_call``), and a client must not assume the words are over at the first call.
    """

    text: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    finish_reason: str | None = None  # override; by default "tool_calls" or "stop"
    text_after: str | None = None


@dataclass(frozen=True)
class ContentDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStart:
    index: int
    call_id: str
    name: str


@dataclass(frozen=True)
class ArgumentsDelta:
    index: int
    fragment: str


Delta = ContentDelta | ToolCallStart | ArgumentsDelta


@dataclass(frozen=True)
class Rendered:
    """A reply laid out as deltas, with the finish reason and completion token count."""

    deltas: tuple[Delta, ...]
    finish_reason: str
    completion_tokens: int

    @property
    def content(self) -> str | None:
        parts = [d.text for d in self.deltas if isinstance(d, ContentDelta)]
        return "".join(parts) if parts else None

    def tool_calls(self) -> list[dict[str, Any]]:
        """The calls as a non-streamed message carries them."""
        calls: dict[int, dict[str, Any]] = {}
        for delta in self.deltas:
            if isinstance(delta, ToolCallStart):
                calls[delta.index] = {
                    "id": delta.call_id,
                    "type": "function",
                    "function": {"name": delta.name, "arguments": ""},
                }
            elif isinstance(delta, ArgumentsDelta):
                calls[delta.index]["function"]["arguments"] += delta.fragment
        return [calls[i] for i in sorted(calls)]


def words(text: str) -> list[str]:
    """Word-sized tokens with their leading spaces: ``"Hi there"`` → ``["Hi", " there"]``."""
    return _WORD.findall(text)


def argument_fragments(arguments: dict[str, Any] | str, count: int | None = None) -> list[str]:
    """The JSON text of ``arguments`` split into fragments, as a model streams it.

    By default at token-like boundaries; with ``count``, into that many pieces of about
    equal length (a raw string is sent as is, so scripts can send invalid JSON).
    """
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    if count is None:
        return _ARG_PIECE.findall(text)
    count = max(1, min(count, len(text)))
    bounds = [round(i * len(text) / count) for i in range(count + 1)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def render(reply: Reply, *, max_tokens: int | None = None, stop: Sequence[str] = ()) -> Rendered:
    """Lay ``reply`` out as deltas, ending early at a stop string or after ``max_tokens``."""
    text = reply.text or ""
    calls = reply.tool_calls
    after = reply.text_after or ""
    stopped = False
    hits = [text.find(s) for s in stop if s and s in text]
    if hits:
        text, calls, after, stopped = text[: min(hits)], (), "", True
    hits_after = [after.find(s) for s in stop if s and s in after]
    if hits_after:  # the calls were out already: they stand, the words after them end there
        after = after[: min(hits_after)]
    planned: list[Delta] = [ContentDelta(w) for w in words(text)]
    for index, call in enumerate(calls):
        planned.append(ToolCallStart(index, "call_" + secrets.token_hex(12), call.name))
        fragments = argument_fragments(call.arguments, call.fragments)
        planned.extend(ArgumentsDelta(index, f) for f in fragments)
    planned.extend(ContentDelta(w) for w in words(after))
    deltas: list[Delta] = []
    used = 0
    truncated = False
    for delta in planned:
        if max_tokens is not None and used >= max_tokens:
            truncated = True
            break
        deltas.append(delta)
        used += not isinstance(delta, ToolCallStart)
    if truncated:
        finish = "length"
    elif reply.finish_reason is not None:
        finish = reply.finish_reason
    elif calls and not stopped:
        finish = "tool_calls"
    else:
        finish = "stop"
    return Rendered(tuple(deltas), finish, used)
