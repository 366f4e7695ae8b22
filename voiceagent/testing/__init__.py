"""Shipped fakes for tests: local servers that speak the real wire protocols over real sockets.

``ElectronServer`` is an Electron-compatible chat-completions server (a simulator, not a model).
``LightningServer`` is a Lightning-compatible TTS server (WebSocket streaming and HTTP).
``PulseServer`` is a Pulse-compatible streaming STT server (a real VAD; whisper or a table).
``TestTTS`` is an in-process fake TTS that makes real, deterministic PCM.
``TwilioCaller`` plays Twilio's side of a Media Stream call against a bot's websocket.
``CarrierCaller`` plays any carrier's side (Twilio, Telnyx, Plivo, Exotel) the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "CarrierCaller",
    "ElectronServer",
    "LightningServer",
    "PulseServer",
    "TestTTS",
    "TwilioCaller",
]


def __getattr__(name: str) -> Any:
    if name == "CarrierCaller":
        from voiceagent.testing.carriers import CarrierCaller

        return CarrierCaller
    if name == "ElectronServer":
        from voiceagent.testing.electron import ElectronServer

        return ElectronServer
    if name == "LightningServer":
        from voiceagent.testing.lightning import LightningServer

        return LightningServer
    if name == "PulseServer":
        from voiceagent.testing.pulse import PulseServer

        return PulseServer
    if name == "TestTTS":
        from voiceagent.testing.tts import TestTTS

        return TestTTS
    if name == "TwilioCaller":
        from voiceagent.testing.twilio import TwilioCaller

        return TwilioCaller
    raise AttributeError(f"module 'voiceagent.testing' has no attribute {name!r}")


if TYPE_CHECKING:
    from voiceagent.testing.carriers import CarrierCaller
    from voiceagent.testing.electron import ElectronServer
    from voiceagent.testing.lightning import LightningServer
    from voiceagent.testing.pulse import PulseServer
    from voiceagent.testing.tts import TestTTS
    from voiceagent.testing.twilio import TwilioCaller
