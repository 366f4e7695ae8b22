"""The conversation's message list: a stable prefix (instructions, context) first, turns last,
trimmed by whole turns under Electron's limits; and the rules a message list must keep."""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

MAX_MESSAGES = 200  # Electron refuses a request with more
MAX_TOKENS = 32768  # Electron's context: input and output together
RESERVE_TOKENS = 4096  # room for the reply and the current turn's tool rounds
_PREFIX_PARTS = ("instructions", "context", "tools")

Message = dict[str, Any]


class History:
    """The message list sent with every request, built so Electron's prefix cache hits.

    ``messages()`` is the system message (the instructions, verbatim), the context as a
    second system message when there is one, then the turns in order. A turn is a user
    message (none for a greeting) followed by the assistant and tool messages committed
    for it. After every change the oldest whole turns are dropped, never the current one,
    until the list fits ``max_messages`` and an estimated ``max_tokens - reserve_tokens``.
    """

    def __init__(
        self,
        instructions: str,
        *,
        context: str | None = None,
        max_messages: int = MAX_MESSAGES,
        max_tokens: int = MAX_TOKENS,
        reserve_tokens: int = RESERVE_TOKENS,
    ) -> None:
        if not isinstance(instructions, str):
            raise TypeError(f"instructions must be a str, got {type(instructions).__name__}")
        if context is not None and not isinstance(context, str):
            raise TypeError(f"context must be a str or None, got {type(context).__name__}")
        if max_messages < 3:
            raise ValueError(f"max_messages must be >= 3, got {max_messages}")
        if not 0 <= reserve_tokens < max_tokens:
            raise ValueError(
                f"reserve_tokens must be >= 0 and below max_tokens ({max_tokens}), "
                f"got {reserve_tokens}"
            )
        self._instructions = instructions
        self._context = context or None
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.reserve_tokens = reserve_tokens
        self._turns: list[list[Message]] = []
        self._turn_chars: list[int] = []  # JSON characters of each turn's messages
        self._tools_json = ""
        self._previous_prefix: tuple[str, str | None, str] | None = None

    @property
    def instructions(self) -> str:
        return self._instructions

    @instructions.setter
    def instructions(self, value: str) -> None:
        # Allowed, but it costs the prefix cache: check_prefix() warns on the next request.
        self._instructions = value
        self._trim()

    @property
    def context(self) -> str | None:
        return self._context

    @context.setter
    def context(self, value: str | None) -> None:
        self._context = value or None
        self._trim()

    def messages(self) -> list[Message]:
        """The whole list for the next request (a copy: changing it changes nothing here)."""
        return copy.deepcopy(self._prefix() + [m for turn in self._turns for m in turn])

    @property
    def turns(self) -> list[list[Message]]:
        """Each turn's messages (a copy), oldest first."""
        return copy.deepcopy(self._turns)

    @property
    def estimated_tokens(self) -> int:
        """An ESTIMATE of the request's input tokens: JSON characters / 4, rounded up.

        Counts the messages and the tools catalog last given to ``check_prefix``.
        Electron's tokenizer is not public, so this is a rule of thumb, not a count.
        """
        return math.ceil((self._message_chars() + len(self._tools_json)) / 4)

    def add_user(self, text: str) -> None:
        """Start a new turn with the user's words."""
        if not isinstance(text, str):
            raise TypeError(f"user text must be a str, got {type(text).__name__}")
        self._append_turn([{"role": "user", "content": text}])

    def commit(self, messages: Sequence[Mapping[str, Any]], *, new_turn: bool = False) -> None:
        """Append a turn's assistant and tool messages, as one unit, to the current turn.

        The unit must be complete on its own: every tool call answered in it. With no turn
        yet, or with ``new_turn=True`` (a greeting, an idle re-prompt), the unit starts a
        turn of its own, without a user message. An empty unit changes nothing.
        """
        unit = [copy.deepcopy(dict(message)) for message in messages]
        if not unit:
            return
        for index, message in enumerate(unit):
            if message.get("role") not in ("assistant", "tool"):
                raise ValueError(
                    f"commit: message {index} has role {message.get('role')!r}; a turn's "
                    "committed messages are assistant and tool messages only"
                )
        try:
            validate_messages(unit)
        except ValueError as exc:
            raise ValueError(f"commit: the unit is not complete on its own: {exc}") from None
        if new_turn or not self._turns:
            self._append_turn(unit)
            return
        self._turns[-1].extend(unit)
        self._turn_chars[-1] += sum(_chars(message) for message in unit) + 2 * len(unit)
        self._trim()

    def check_prefix(self, tools_catalog_json: str) -> bool:
        """Call once per request: whether the stable prefix changed since the previous call.

        The prefix is the instructions, the context and the tools catalog; a change makes
        Electron's prefix cache miss, so it is logged as a WARNING saying what changed.
        """
        prefix = (self._instructions, self._context, tools_catalog_json)
        previous, self._previous_prefix = self._previous_prefix, prefix
        self._tools_json = tools_catalog_json
        self._trim()
        if previous is None:
            return False
        changed = [
            name
            for name, old, new in zip(_PREFIX_PARTS, previous, prefix, strict=True)
            if old != new
        ]
        if changed:
            logger.warning(
                "the stable prompt prefix changed since the previous request (%s): Electron's "
                "prefix cache misses from there on; keep per-request values out of the "
                "instructions, the context and the tools",
                ", ".join(changed),
            )
        return bool(changed)

    def _prefix(self) -> list[Message]:
        prefix: list[Message] = [{"role": "system", "content": self._instructions}]
        if self._context is not None:
            prefix.append({"role": "system", "content": self._context})
        return prefix

    def _append_turn(self, turn: list[Message]) -> None:
        self._turns.append(turn)
        self._turn_chars.append(sum(_chars(message) for message in turn) + 2 * len(turn))
        self._trim()

    def _message_count(self) -> int:
        return len(self._prefix()) + sum(len(turn) for turn in self._turns)

    def _message_chars(self) -> int:
        # json.dumps of a list is "[" + ", ".join(items) + "]": each item costs its own
        # characters plus a 2-character separator (the brackets pay for the missing last one).
        prefix = self._prefix()
        return sum(_chars(m) for m in prefix) + 2 * len(prefix) + sum(self._turn_chars)

    def _over(self) -> bool:
        budget = self.max_tokens - self.reserve_tokens
        return self._message_count() > self.max_messages or self.estimated_tokens > budget

    def _trim(self) -> None:
        dropped_turns = dropped_messages = 0
        while len(self._turns) > 1 and self._over():
            dropped_messages += len(self._turns.pop(0))
            self._turn_chars.pop(0)
            dropped_turns += 1
        if dropped_turns:
            logger.info(
                "history: dropped the %d oldest turn(s) (%d messages) to stay within %d "
                "messages and about %d tokens; now %d messages, about %d tokens",
                dropped_turns,
                dropped_messages,
                self.max_messages,
                self.max_tokens - self.reserve_tokens,
                self._message_count(),
                self.estimated_tokens,
            )
        if self._over():
            logger.warning(
                "history: %d messages, about %d tokens with only the current turn left: over "
                "the limits (%d messages, about %d tokens); the request may be refused",
                self._message_count(),
                self.estimated_tokens,
                self.max_messages,
                self.max_tokens - self.reserve_tokens,
            )


def _chars(message: Mapping[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False))


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def validate_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError, naming the message at fault, if the chat API would refuse the list.

    Checks roles, content, tool-call shape, and pairing: every tool call of an assistant
    message is answered by exactly one tool message with its id before the next
    non-tool message, and no tool message appears without its call.
    """
    if not messages:
        raise ValueError("there are no messages")
    pending: dict[str, int] = {}  # unanswered call id -> index of its assistant message
    answered: set[str] = set()  # ids answered since the last assistant message
    for index, message in enumerate(messages):
        role = _check_message(index, message)
        if role == "tool":
            call_id = message["tool_call_id"]
            if call_id in answered:
                raise ValueError(f"messages[{index}] (tool) answers call {call_id!r} twice")
            if call_id not in pending:
                raise ValueError(
                    f"messages[{index}] (tool) answers call {call_id!r}, which the assistant "
                    "message before it did not make"
                )
            del pending[call_id]
            answered.add(call_id)
            continue
        _no_unanswered(pending, f"before messages[{index}] ({role})")
        answered = set()
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                pending[call["id"]] = index
    _no_unanswered(pending, "by the end of the list")


def _no_unanswered(pending: Mapping[str, int], where: str) -> None:
    if pending:
        call_id, index = next(iter(pending.items()))
        raise ValueError(
            f"messages[{index}] (assistant): tool call {call_id!r} is not answered {where}"
        )


def _check_message(index: int, message: Any) -> str:
    """The message's role, once its own fields are valid."""
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise ValueError(f"{where} is a {type(message).__name__}, not an object")
    role = message.get("role")
    if role not in _ROLES:
        raise ValueError(f"{where}: role {role!r} is not one of {sorted(_ROLES)}")
    where = f"{where} ({role})"
    content = message.get("content")
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls is not None:
            _check_tool_calls(where, calls)
        if content is None and not calls:
            raise ValueError(f"{where}: content may be null only with tool_calls")
    elif role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"{where}: tool_call_id must be a non-empty string")
    if content is not None and not _is_text(content):
        raise ValueError(f"{where}: content must be a string or a list of text parts")
    if content is None and role != "assistant":
        raise ValueError(f"{where}: content is required")
    return str(role)


def _check_tool_calls(where: str, calls: Any) -> None:
    if not isinstance(calls, list) or not calls:
        raise ValueError(f"{where}: tool_calls must be a non-empty list (omit it otherwise)")
    seen: set[str] = set()
    for position, call in enumerate(calls):
        at = f"{where}: tool_calls[{position}]"
        if not isinstance(call, Mapping):
            raise ValueError(f"{at} is not an object")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"{at}: id must be a non-empty string")
        if call_id in seen:
            raise ValueError(f"{at}: id {call_id!r} is used twice")
        seen.add(call_id)
        if call.get("type") != "function":
            raise ValueError(f"{at}: type must be 'function'")
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise ValueError(f"{at}: function must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{at}: function.name must be a non-empty string")
        if not isinstance(function.get("arguments"), str):
            raise ValueError(f"{at}: function.arguments must be a string (JSON text)")


def _is_text(content: Any) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(part, Mapping)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
        for part in content
    )
