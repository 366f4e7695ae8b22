"""Pluggable edges of voiceagent: TTS, STT, VAD and transports (imported as voiceagent.adapters).

Adapters import only ground-floor types and protocols of the core. ``from_config`` picks
them by DESIGN.md's configuration table. Names load on first use, so importing this
package costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module (under voiceagent.adapters) that defines it
_EXPORTS: dict[str, str] = {
    "Components": "config",
    "ConfigError": "config",
    "from_config": "config",
}

__all__ = ["Components", "ConfigError", "from_config"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voiceagent.adapters' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .config import Components, ConfigError, from_config
