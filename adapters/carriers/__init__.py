"""Phone carriers' media streams: one frame model (``frames``), one ``Serializer`` per carrier
(Twilio, Telnyx, Plivo, Exotel), and the detection of a carrier from its first messages."""

from __future__ import annotations

from typing import Any

from voiceagent.adapters.carriers.base import Serializer
from voiceagent.adapters.carriers.exotel import ExotelSerializer
from voiceagent.adapters.carriers.plivo import PlivoSerializer
from voiceagent.adapters.carriers.telnyx import TelnyxSerializer
from voiceagent.adapters.carriers.twilio import TwilioSerializer

SERIALIZERS: dict[str, type[Serializer]] = {
    "twilio": TwilioSerializer,
    "telnyx": TelnyxSerializer,
    "plivo": PlivoSerializer,
    "exotel": ExotelSerializer,
}
CARRIERS = tuple(SERIALIZERS)

__all__ = [
    "CARRIERS",
    "SERIALIZERS",
    "ExotelSerializer",
    "PlivoSerializer",
    "Serializer",
    "TelnyxSerializer",
    "TwilioSerializer",
    "detect",
    "serializer",
]


def serializer(carrier: str) -> Serializer:
    """A fresh serializer (one per call) for ``carrier``."""
    try:
        return SERIALIZERS[carrier]()
    except KeyError:
        raise ValueError(f"unknown carrier {carrier!r} (one of {', '.join(CARRIERS)})") from None


def detect(data: dict[str, Any]) -> str | None:
    """The carrier one inbound message (parsed JSON) comes from, when its keys say so.

    The stream id's spelling decides: ``streamSid`` Twilio, ``stream_id`` Telnyx,
    ``streamId`` Plivo, ``stream_sid`` Exotel; in a ``start`` body also the call id's
    (``callSid``, ``call_control_id``, ``callId``, ``call_sid``); a ``connected`` with
    ``protocol`` is Twilio's. Telnyx's and Exotel's bare ``connected`` say nothing: None.
    """
    return next((name for name, kind in SERIALIZERS.items() if kind.detect(data)), None)
