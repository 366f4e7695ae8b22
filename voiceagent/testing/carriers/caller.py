"""A caller simulator for any carrier: the Twilio caller's clock, speech and playback model,
speaking the carrier's messages (``carrier=``), optionally delivering media out of order."""

from __future__ import annotations

import json
import logging
from typing import Any

from voiceagent.testing.carriers.exotel import ExotelWire
from voiceagent.testing.carriers.plivo import PlivoWire
from voiceagent.testing.carriers.telnyx import TelnyxWire
from voiceagent.testing.carriers.wire import CarrierWire, TwilioWire
from voiceagent.testing.twilio.caller import TwilioCaller
from voiceagent.testing.twilio.record import MarkOutcome, Received

logger = logging.getLogger(__name__)

WIRES: dict[str, type[CarrierWire]] = {
    "twilio": TwilioWire,
    "telnyx": TelnyxWire,
    "plivo": PlivoWire,
    "exotel": ExotelWire,
}
CALLER_CODECS = {"twilio": "PCMU", "telnyx": "PCMU", "plivo": "PCMU", "exotel": "L16"}


class CarrierCaller(TwilioCaller):
    """One simulated call into a bot's websocket as ``carrier``'s side of the media stream.

    Everything of ``TwilioCaller`` holds (``say``, ``send_dtmf``, ``stop``, the record, the
    playback model: marks/checkpoints echoed once their audio has played, a clear drops the
    buffer and echoes the pending ones at once, then its acknowledgement where the carrier
    sends one). ``codec`` is the caller's (PCMU, PCMA, L16 where the carrier offers it);
    ``out_of_order`` N > 0 delivers every Nth media frame after the one following it.
    """

    def __init__(
        self,
        url: str,
        *,
        carrier: str = "twilio",
        codec: str | None = None,
        out_of_order: int = 0,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        **kwargs: Any,
    ) -> None:
        if carrier not in WIRES:
            raise ValueError(f"unknown carrier {carrier!r} (one of {', '.join(WIRES)})")
        kind = WIRES[carrier]
        super().__init__(url, stream_sid=stream_sid or kind.new_id("MZ"),
                         call_sid=call_sid or kind.new_id("CA"),
                         account_sid=account_sid or kind.new_id("AC"), **kwargs)  # fmt: skip
        self.carrier = carrier
        self.wire = kind(self.stream_sid, self.call_sid, self.account_sid,
                         self.custom_parameters, codec or CALLER_CODECS[carrier])  # fmt: skip
        self.out_of_order = out_of_order
        self._acks = 0  # clears to acknowledge after their echoes

    def _connected_message(self) -> dict[str, Any] | None:
        return self.wire.connected()

    def _start_message(self, seq: str) -> dict[str, Any]:
        return self.wire.start(seq)

    def _dtmf_message(self, seq: str, digit: str) -> dict[str, Any]:
        return self.wire.dtmf(seq, digit)

    def _stop_message(self, seq: str) -> dict[str, Any]:
        return self.wire.stop(seq)

    def _echo_message(self, seq: str, name: str) -> dict[str, Any]:
        return self.wire.echo(seq, name)

    async def _send_media(self, chunk: int, timestamp_ms: int, ulaw: bytes) -> bool:
        payload = self.wire.encode(ulaw)
        late = self.out_of_order > 0 and chunk % self.out_of_order == 0
        return await self._send(
            lambda seq: self.wire.media(seq, chunk, timestamp_ms, payload), delay=late
        )

    def _take(self, raw: str | bytes) -> list[tuple[str, MarkOutcome]]:
        """Record, check and play one bot message; the echoes it makes due."""
        t = self.now()
        if isinstance(raw, bytes):
            self.received.append(Received(t, raw, None))
            self._error(f"binary frame from the bot ({self.carrier} takes JSON text only)")
            return []
        try:
            message = json.loads(raw)
        except ValueError:
            self.received.append(Received(t, raw, None))
            self._error(f"not JSON: {raw[:80]!r}")
            return []
        self.received.append(Received(t, raw, message if isinstance(message, dict) else None))
        errors, asked = self.wire.read(message)
        for error in errors:
            self._error(error)
        if asked is None:
            return []
        kind, value = asked
        if kind == "media":
            return [(name, "played") for name in self.playback.add_media(t, value)]
        if kind == "mark":
            return [(name, "played") for name in self.playback.add_mark(t, value)]
        self.clears.append(t)
        played, cleared = self.playback.clear(t)
        self._acks += 1
        return [(name, "played") for name in played] + [(name, "cleared") for name in cleared]

    async def _flush_echoes(self) -> None:
        await super()._flush_echoes()
        while self._acks:
            self._acks -= 1
            if self.wire.cleared("0") is not None:
                await self._send(lambda seq: self.wire.cleared(seq) or {})

    def _error(self, error: str) -> None:
        logger.warning("%s caller: protocol error: %s", self.carrier, error)
        self.protocol_errors.append(error)
