"""Telnyx's side of a media stream: snake_case messages with ``stream_id``; the bot sends
``media``/``mark``/``clear`` without a stream id."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from voiceagent.testing.carriers.wire import CarrierWire, Shape, b64

MEDIA: Shape = {"event": None, "media": {"payload": None}}
MARK: Shape = {"event": None, "mark": {"name": None}}


class TelnyxWire(CarrierWire):
    name = "telnyx"
    bot_events: ClassVar[dict[str, tuple[str, Shape]]] = {
        "media": ("media", MEDIA),
        "mark": ("mark", MARK),
        "clear": ("clear", {"event": None}),
    }

    @staticmethod
    def new_id(prefix: str) -> str:
        return ("v3:" if prefix == "CA" else "") + CarrierWire.new_id(prefix)

    def connected(self) -> dict[str, Any] | None:
        return {"event": "connected", "version": "1.0.0"}

    def start(self, seq: str) -> dict[str, Any]:
        body = {
            "user_id": self.account_id,
            "call_control_id": self.call_id,
            "client_state": None,
            "custom_parameters": dict(self.custom_parameters),
            "media_format": {"encoding": self.codec, "sample_rate": 8000, "channels": 1},
        }
        return {"event": "start", "sequence_number": seq, "start": body,
                "stream_id": self.stream_id}  # fmt: skip

    def media(self, seq: str, chunk: int, timestamp_ms: int, payload: bytes) -> dict[str, Any]:
        body = {"track": "inbound", "chunk": str(chunk), "timestamp": str(timestamp_ms),
                "payload": b64(payload)}  # fmt: skip
        return {"event": "media", "sequence_number": seq, "media": body,
                "stream_id": self.stream_id}  # fmt: skip

    def dtmf(self, seq: str, digit: str) -> dict[str, Any]:
        return {"event": "dtmf", "stream_id": self.stream_id, "sequence_number": seq,
                "occurred_at": datetime.now(timezone.utc).isoformat(),
                "dtmf": {"digit": digit}}  # fmt: skip

    def echo(self, seq: str, name: str) -> dict[str, Any]:
        return {"event": "mark", "sequence_number": seq, "stream_id": self.stream_id,
                "mark": {"name": name}}  # fmt: skip

    def stop(self, seq: str) -> dict[str, Any]:
        body = {"user_id": self.account_id, "call_control_id": self.call_id}
        return {"event": "stop", "sequence_number": seq, "stop": body,
                "stream_id": self.stream_id}  # fmt: skip
