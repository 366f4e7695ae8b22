"""An Electron-compatible chat-completions server for tests and offline demos.

A simulator, not a model: it speaks Electron's wire format exactly, and its replies come
from a script or a small rule-based brain.
"""

from __future__ import annotations

from voiceagent.testing.electron.faults import Faults, InjectedFailure
from voiceagent.testing.electron.recording import RecordedRequest, key_fingerprint_of
from voiceagent.testing.electron.reply import Reply, ToolCallSpec
from voiceagent.testing.electron.script import Script, ScriptError
from voiceagent.testing.electron.server import ElectronServer

__all__ = [
    "ElectronServer",
    "Faults",
    "InjectedFailure",
    "RecordedRequest",
    "Reply",
    "Script",
    "ScriptError",
    "ToolCallSpec",
    "key_fingerprint_of",
]
