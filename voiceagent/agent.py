"""`Agent`: what a voice agent is — its instructions, tools and model settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voiceagent.toolkit import Tool, ToolRegistry


@dataclass
class Agent:
    """A voice agent's definition; sessions and turns run it.

    ``instructions`` is the system prompt, sent verbatim and first (per-request values never
    go in it, so Electron's prefix cache holds); ``context`` is static text placed right
    after it (e.g. retrieved documents); ``greeting`` is spoken first (phone bots).
    Requests 1…``max_tool_rounds`` may call tools; one more, if needed, is sent with
    ``tool_choice="none"`` so the caller never hears silence.
    """

    instructions: str
    tools: Sequence[Tool[..., Any] | Callable[..., Any]] = ()
    context: str | None = None
    greeting: str | None = None
    model: str = "electron"
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    max_tool_rounds: int = 3
    voice: str | None = None
    language: str = "en"
    registry: ToolRegistry = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_tool_rounds < 0:
            raise ValueError(f"max_tool_rounds must be >= 0, got {self.max_tool_rounds}")
        self.registry = ToolRegistry(self.tools)
