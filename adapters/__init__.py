"""Pluggable edges of voiceagent: TTS, STT, VAD and transports (imported as voiceagent.adapters).

Adapters import only ground-floor types and protocols of the core. None ships in this
version yet: they arrive with the Lightning, listening, sessions and phone issues.
"""

from __future__ import annotations
