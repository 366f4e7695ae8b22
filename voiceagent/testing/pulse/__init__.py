"""A Pulse-compatible STT server for tests and offline demos: Pulse's WebSocket protocol over
real sockets, a real VAD for speech events, and text from offline whisper (when the
``offline`` extra is installed) or from a table of known utterances.

Which is used: ``PulseServer(transcribe="auto")`` picks whisper when
``voiceagent.adapters.whisper`` imports, else the table (``server.transcriber_name`` says);
the VAD is ``voiceagent.adapters.vad_webrtc.WebRTCVAD`` when it imports, else a small energy
detector (``server.vad_name`` says, once a stream has opened). The table answers speech it
does not know with ``UtteranceTable.unknown`` (``""`` by default), and silence with ``""``.
"""

from __future__ import annotations

from voiceagent.testing.pulse.faults import ConnectionFaults, Faults
from voiceagent.testing.pulse.server import PulseServer, RecordedConnection
from voiceagent.testing.pulse.transcribe import UNKNOWN, UtteranceTable, whisper_available
from voiceagent.testing.pulse.vad import EnergyVAD
from voiceagent.testing.pulse.wire import ConfigError, StreamConfig, parse_query

__all__ = [
    "UNKNOWN",
    "ConfigError",
    "ConnectionFaults",
    "EnergyVAD",
    "Faults",
    "PulseServer",
    "RecordedConnection",
    "StreamConfig",
    "UtteranceTable",
    "parse_query",
    "whisper_available",
]
