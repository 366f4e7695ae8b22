"""A Lightning-compatible TTS server for tests and offline runs: a fake, not a voice model."""

from __future__ import annotations

from voiceagent.testing.lightning.faults import Faults, InjectedError
from voiceagent.testing.lightning.server import LightningServer
from voiceagent.testing.lightning.wire import RecordedTTSRequest

__all__ = ["Faults", "InjectedError", "LightningServer", "RecordedTTSRequest"]
