"""Exotel's side of a voice stream: snake_case messages with ``stream_sid``; audio both ways
is base64 PCM16 at 8 kHz, and the bot's must come in multiples of 320 bytes."""

from __future__ import annotations

from typing import Any, ClassVar

from voiceagent.testing.carriers.wire import CarrierWire, Shape, b64, decode_payload

CHUNK_BYTES = 320


class ExotelWire(CarrierWire):
    name = "exotel"
    bot_events: ClassVar[dict[str, tuple[str, Shape]]] = {
        "media": ("media", {"event": None, "stream_sid": None, "media": {"payload": None}}),
        "mark": ("mark", {"event": None, "stream_sid": None, "mark": {"name": None}}),
        "clear": ("clear", {"event": None, "stream_sid": None}),
    }

    @staticmethod
    def new_id(prefix: str) -> str:
        return CarrierWire.new_id(prefix).replace("-", "")

    def connected(self) -> dict[str, Any] | None:
        return {"event": "connected"}

    def start(self, seq: str) -> dict[str, Any]:
        fmt = {"encoding": "base64", "sample_rate": "8000", "bit_rate": "128kbps"}
        body = {"stream_sid": self.stream_id, "call_sid": self.call_id,
                "account_sid": self.account_id, "from": "09999999999", "to": "08888888888",
                "custom_parameters": dict(self.custom_parameters), "media_format": fmt}  # fmt: skip
        return {"event": "start", "sequence_number": int(seq), "stream_sid": self.stream_id,
                "start": body}  # fmt: skip

    def media(self, seq: str, chunk: int, timestamp_ms: int, payload: bytes) -> dict[str, Any]:
        body = {"chunk": chunk, "timestamp": str(timestamp_ms), "payload": b64(payload)}
        return {"event": "media", "sequence_number": int(seq), "stream_sid": self.stream_id,
                "media": body}  # fmt: skip

    def dtmf(self, seq: str, digit: str) -> dict[str, Any]:
        return {"event": "dtmf", "sequence_number": int(seq), "stream_sid": self.stream_id,
                "dtmf": {"duration": "100", "digit": digit}}  # fmt: skip

    def echo(self, seq: str, name: str) -> dict[str, Any]:
        return {"event": "mark", "sequence_number": int(seq), "stream_sid": self.stream_id,
                "mark": {"name": name}}  # fmt: skip

    def stop(self, seq: str) -> dict[str, Any]:
        body = {"call_sid": self.call_id, "account_sid": self.account_id, "reason": "callended"}
        return {"event": "stop", "sequence_number": int(seq), "stream_sid": self.stream_id,
                "stop": body}  # fmt: skip

    def check(self, kind: str, message: dict[str, Any]) -> list[str]:
        errors = self.id_errors(message, "stream_sid")
        body = message.get("media")
        raw = decode_payload(body.get("payload")) if isinstance(body, dict) else None
        if kind == "media" and raw is not None and len(raw) % CHUNK_BYTES:
            errors.append(f"media: {len(raw)} bytes, not a multiple of {CHUNK_BYTES}")
        return errors

    def bot_codec(self, message: dict[str, Any]) -> str:
        return "L16"
