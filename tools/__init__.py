"""Ready-made agent tools (imported as voiceagent.tools).

Tools here import only ``voiceagent.toolkit``. The phone tools (``end_call``,
``transfer_call``) arrive with the phone issue. Each tool is imported on first use, so
``import voiceagent.tools`` costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module (under voiceagent.tools) that defines it
_EXPORTS: dict[str, str] = {
    "calculate": "calculator",
    "current_time": "clock",
    "get_weather": "weather",
}

__all__ = ["calculate", "current_time", "get_weather"]


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
    from .weather import get_weather
