"""Scripted replies: round N of a conversation is the request holding N assistant messages.

Stateless on purpose, so concurrent sessions each walk their own copy of the script.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from voiceagent.testing.electron.reply import Reply, ToolCallSpec


class ScriptError(ValueError):
    """A script that does not have the documented shape."""


class Script:
    """A list of rounds, each ``{"text": ..., "tool_calls": [{"name", "arguments"}], ...}``.

    ``text_after`` is content streamed after the round's tool calls (in the same stream).

    A call's ``arguments`` is an object, or a string sent as is (e.g. invalid JSON);
    an optional ``fragments`` splits them into exactly that many deltas.
    """

    def __init__(self, rounds: Sequence[Reply]) -> None:
        self.rounds: tuple[Reply, ...] = tuple(rounds)

    @classmethod
    def from_data(cls, data: Any) -> Script:
        """Build from parsed JSON: a list of rounds, or ``{"rounds": [...]}``."""
        if isinstance(data, Mapping) and "rounds" in data:
            data = data["rounds"]
        if not isinstance(data, list):
            raise ScriptError("a script is a JSON list of rounds")
        return cls([_round(i, item) for i, item in enumerate(data)])

    @classmethod
    def from_file(cls, path: str | Path) -> Script:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{path}: not valid JSON: {exc}") from exc
        return cls.from_data(data)

    def round_for(self, messages: Sequence[Mapping[str, Any]]) -> Reply | None:
        """The round this conversation is at, or None once the script has run out."""
        index = sum(1 for m in messages if m.get("role") == "assistant")
        return self.rounds[index] if index < len(self.rounds) else None

    def __len__(self) -> int:
        return len(self.rounds)


def _round(index: int, item: Any) -> Reply:
    where = f"round {index}"
    if not isinstance(item, Mapping):
        raise ScriptError(f"{where}: expected an object with 'text' and/or 'tool_calls'")
    unknown = set(item) - {"text", "tool_calls", "finish_reason", "text_after"}
    if unknown:
        raise ScriptError(f"{where}: unknown keys {sorted(unknown)}")
    text = item.get("text")
    if text is not None and not isinstance(text, str):
        raise ScriptError(f"{where}: 'text' must be a string")
    after = item.get("text_after")
    if after is not None and not isinstance(after, str):
        raise ScriptError(f"{where}: 'text_after' must be a string")
    finish = item.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise ScriptError(f"{where}: 'finish_reason' must be a string")
    calls = item.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ScriptError(f"{where}: 'tool_calls' must be a list")
    specs = []
    for j, call in enumerate(calls):
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
            raise ScriptError(f"{where}, tool call {j}: needs a string 'name'")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, (Mapping, str)):
            raise ScriptError(
                f"{where}, tool call {j}: 'arguments' must be an object (or a string, sent as is)"
            )
        fragments = call.get("fragments")
        if fragments is not None and (not isinstance(fragments, int) or fragments < 1):
            raise ScriptError(f"{where}, tool call {j}: 'fragments' must be a positive integer")
        args = arguments if isinstance(arguments, str) else dict(arguments)
        specs.append(ToolCallSpec(call["name"], args, fragments))
    return Reply(text=text, tool_calls=tuple(specs), finish_reason=finish, text_after=after)
