"""ToolRegistry: an agent's tools in a stable order, and the catalog sent with every request."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .decorator import Tool
from .schema import first_sentence

logger = logging.getLogger(__name__)

MAX_TOOLS = 64  # Electron rejects a request with more
DEFAULT_TOKEN_BUDGET = 2000


class ToolRegistry:
    """Tools by name, in registration order; immutable, so the catalog never changes.

    A stable catalog keeps the prompt prefix identical from request to request, which
    is what lets the provider's prefix cache hold.
    """

    def __init__(
        self,
        tools: Iterable[Tool[..., Any] | Callable[..., Any]] = (),
        *,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
    ) -> None:
        self._tools: dict[str, Tool[..., Any]] = {}
        for item in tools:
            # A plain function is accepted as if decorated with a bare @tool.
            entry = item if isinstance(item, Tool) else Tool(item)
            if entry.name in self._tools:
                raise ValueError(
                    f"duplicate tool name {entry.name!r}: tool names must be unique; "
                    "rename one with @tool(name=...)"
                )
            self._tools[entry.name] = entry
        if len(self._tools) > MAX_TOOLS:
            raise ValueError(
                f"{len(self._tools)} tools given: Electron accepts at most {MAX_TOOLS} "
                "tools per request; split the agent or drop some tools"
            )
        self.token_budget = token_budget
        self._catalog_json = json.dumps(
            [entry.definition() for entry in self._tools.values()], ensure_ascii=False
        )
        self._warn()

    def catalog(self) -> list[dict[str, Any]]:
        """The ``tools`` list for the API; equal on every call (a fresh copy each time)."""
        catalog: list[dict[str, Any]] = json.loads(self._catalog_json)
        return catalog

    @property
    def catalog_json(self) -> str:
        return self._catalog_json

    @property
    def estimated_tokens(self) -> int:
        """An ESTIMATE of the catalog's size in tokens: its JSON characters / 4, rounded up.

        Electron's tokenizer is not public, so this is a rule of thumb, not a count.
        """
        return math.ceil(len(self._catalog_json) / 4)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool[..., Any] | None:
        return self._tools.get(name)

    def __getitem__(self, name: str) -> Tool[..., Any]:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool[..., Any]]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names!r})"

    def _warn(self) -> None:
        for entry in self._tools.values():
            description = " ".join(entry.description.split())
            if not description:
                logger.warning(
                    "tool %r has no description: give it a one-sentence docstring", entry.name
                )
            elif first_sentence(description) != description:
                logger.warning(
                    "tool %r: its description is longer than one sentence; every word is "
                    "sent (and paid for) with every request: keep one sentence of intent",
                    entry.name,
                )
        if self.estimated_tokens > self.token_budget:
            logger.warning(
                "the tool catalog is about %d tokens (an estimate: characters / 4), over "
                "the budget of %d; shorten descriptions or drop tools",
                self.estimated_tokens,
                self.token_budget,
            )
