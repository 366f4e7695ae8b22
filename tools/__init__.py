"""Ready-made agent tools (imported as voiceagent.tools).

Tools here import only ``voiceagent.toolkit``; the phone tools (``end_call``,
``transfer_call``) act on the call their ``ToolContext`` belongs to. Each tool is imported
on first use, so ``import voiceagent.tools`` costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module (under voiceagent.tools) that defines it
_EXPORTS: dict[str, str] = {
    "calculate": "calculator",
    "current_time": "clock",
    "end_call": "phone",
    "get_weather": "weather",
    "transfer_call": "phone",
}

__all__ = ["calculate", "current_time", "end_call", "get_weather", "transfer_call"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voiceagent.tools' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .calculator import calculate
    from .clock import current_time
    from .phone import end_call, transfer_call
    from .weather import get_weather
