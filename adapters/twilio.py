"""Twilio Media Streams on the wire (kept for older imports): the frame model and Twilio's
parser and messages now live in ``voiceagent.adapters.carriers``."""

from __future__ import annotations

from voiceagent.adapters.carriers.frames import (
    Cleared,
    Connected,
    Dtmf,
    Frame,
    FrameError,
    Mark,
    Media,
    Start,
    Stop,
    UnknownEvent,
    UnsupportedStart,
)
from voiceagent.adapters.carriers.twilio import (
    ENCODING,
    SAMPLE_RATE,
    TwilioSerializer,
    clear,
    mark,
    media,
    parse,
)

__all__ = [
    "ENCODING",
    "SAMPLE_RATE",
    "Cleared",
    "Connected",
    "Dtmf",
    "Frame",
    "FrameError",
    "Mark",
    "Media",
    "Start",
    "Stop",
    "TwilioSerializer",
    "UnknownEvent",
    "UnsupportedStart",
    "clear",
    "mark",
    "media",
    "parse",
]
