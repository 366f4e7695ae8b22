"""A Twilio caller simulator: Twilio's side of a bidirectional Media Stream, with a model of
its playback buffer (marks echoed as audio plays, ``clear``), a recording of what was heard,
and protocol checks of everything the bot sends."""

from __future__ import annotations

from voiceagent.testing.twilio.caller import TwilioCaller
from voiceagent.testing.twilio.playback import PlaybackBuffer
from voiceagent.testing.twilio.record import CallRecord, MarkOutcome, Received, Sent
from voiceagent.testing.twilio.speech import load_speech

__all__ = [
    "CallRecord",
    "MarkOutcome",
    "PlaybackBuffer",
    "Received",
    "Sent",
    "TwilioCaller",
    "load_speech",
]
