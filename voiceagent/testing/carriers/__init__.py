"""Caller simulators for every carrier (Twilio, Telnyx, Plivo, Exotel): the Twilio caller's
clock, speech and playback-buffer model speaking each carrier's messages."""

from __future__ import annotations

from voiceagent.testing.carriers.caller import CALLER_CODECS, WIRES, CarrierCaller
from voiceagent.testing.carriers.wire import CarrierWire

__all__ = ["CALLER_CODECS", "WIRES", "CarrierCaller", "CarrierWire"]
