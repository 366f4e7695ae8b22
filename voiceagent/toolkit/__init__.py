"""Tools for agents: @tool, ToolRegistry, ToolCall and the executor."""

from __future__ import annotations

from .call import ToolCall, ToolCallState, ToolCallStateError
from .context import ToolContext
from .decorator import Tool, ToolArgumentsError, tool
from .executor import ToolExecutor
from .registry import ToolRegistry

__all__ = [
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallState",
    "ToolCallStateError",
    "ToolContext",
    "ToolExecutor",
    "ToolRegistry",
    "tool",
]
