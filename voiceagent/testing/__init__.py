"""Shipped fakes for tests: local servers that speak the real wire protocols over real sockets.

``ElectronServer`` is an Electron-compatible chat-completions server (a simulator, not a model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ElectronServer"]


def __getattr__(name: str) -> Any:
    if name == "ElectronServer":
        from voiceagent.testing.electron import ElectronServer

        return ElectronServer
    raise AttributeError(f"module 'voiceagent.testing' has no attribute {name!r}")


if TYPE_CHECKING:
    from voiceagent.testing.electron import ElectronServer
