"""voiceagent: streaming voice agents on Smallest AI's Electron, Lightning and Pulse.

The package root stays light: every public name is imported lazily on first use, so
``import voiceagent`` costs almost nothing (no openai, numpy or pydantic until needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Agent": "voiceagent.agent",
    "Session": "voiceagent.session",
    "tool": "voiceagent.toolkit",
    "ToolContext": "voiceagent.toolkit",
    "ElectronClient": "voiceagent.llm",
    "ElectronError": "voiceagent.llm",
    "Usage": "voiceagent.llm",
    "UsageTotals": "voiceagent.llm",
}

__all__ = [
    "Agent",
    "ElectronClient",
    "ElectronError",
    "NotAvailableYet",
    "Session",
    "ToolContext",
    "Usage",
    "UsageTotals",
    "__version__",
    "tool",
]


class NotAvailableYet(NotImplementedError):
    """A documented part of voiceagent that this version does not ship yet."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'voiceagent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from voiceagent.agent import Agent
    from voiceagent.llm import ElectronClient, ElectronError, Usage, UsageTotals
    from voiceagent.session import Session
    from voiceagent.toolkit import ToolContext, tool
