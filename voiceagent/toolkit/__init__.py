"""Tools for agents: @tool, ToolRegistry, ToolCall and the executor."""

from __future__ import annotations
