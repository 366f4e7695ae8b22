"""A deterministic request tokenizer and a TTL'd token-prefix cache (a trie keyed by token).

It models Electron's automatic prefix caching honestly: ``cached_tokens`` is the longest token
prefix a request shares with any request seen within the TTL.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def tokenize(text: str) -> list[str]:
    """Split text into word-sized tokens, each carrying its leading whitespace."""
    return _TOKEN.findall(text)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, a list of text parts, or null."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                parts.append(_canonical(part))
        return "".join(parts)
    return _canonical(content)


def request_tokens(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None
) -> list[str]:
    """Tokens of a request's canonical serialization: tools as given, then messages in order."""
    tokens: list[str] = []
    for tool in tools or ():
        tokens.append("<|tool|>")
        tokens.extend(tokenize(_canonical(tool)))
    for message in messages:
        tokens.append(f"<|{message.get('role', '')}|>")
        tokens.extend(tokenize(content_text(message.get("content"))))
        if message.get("tool_calls"):
            tokens.append("<|tool_calls|>")
            tokens.extend(tokenize(_canonical(message["tool_calls"])))
        if message.get("tool_call_id") is not None:
            tokens.append("<|tool_call_id|>")
            tokens.extend(tokenize(str(message["tool_call_id"])))
        tokens.append("<|end|>")
    return tokens


class _Node:
    __slots__ = ("children", "seen_at")

    def __init__(self, seen_at: float) -> None:
        self.children: dict[str, _Node] = {}
        self.seen_at = seen_at


class PrefixCache:
    """Remembers token sequences for ``ttl_s`` seconds; answers the longest shared prefix.

    Every node records when a request last passed through it, so a node is never fresher
    than its parent: expired subtrees are cut whole, cheaply.
    """

    def __init__(self, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._root = _Node(0.0)
        self._last_prune = clock()

    def cached_prefix(self, tokens: Iterable[str]) -> int:
        """How many leading tokens are shared with a request seen within the TTL."""
        oldest = self._clock() - self.ttl_s
        node, depth = self._root, 0
        for token in tokens:
            child = node.children.get(token)
            if child is None or child.seen_at < oldest:
                break
            node, depth = child, depth + 1
        return depth

    def remember(self, tokens: Iterable[str]) -> None:
        now = self._clock()
        node = self._root
        for token in tokens:
            child = node.children.get(token)
            if child is None:
                child = node.children[token] = _Node(now)
            else:
                child.seen_at = now
            node = child
        if now - self._last_prune >= self.ttl_s / 4:
            self.prune()

    def lookup_and_remember(self, tokens: Sequence[str]) -> int:
        """``cached_prefix`` then ``remember``: the cached token count of this request."""
        cached = self.cached_prefix(tokens)
        self.remember(tokens)
        return cached

    def prune(self) -> None:
        """Drop every expired subtree."""
        now = self._clock()
        self._last_prune = now
        oldest = now - self.ttl_s
        pending = [self._root]
        while pending:
            node = pending.pop()
            expired = [key for key, child in node.children.items() if child.seen_at < oldest]
            for key in expired:
                del node.children[key]
            pending.extend(node.children.values())

    def node_count(self) -> int:
        """Tokens held (trie nodes below the root); for tests and diagnostics."""
        count, pending = 0, [self._root]
        while pending:
            node = pending.pop()
            count += len(node.children)
            pending.extend(node.children.values())
        return count
