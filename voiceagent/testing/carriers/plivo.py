"""Plivo's side of an audio stream: camelCase messages with ``streamId``; the bot sends
``playAudio``, ``checkpoint`` (answered by ``playedStream``) and ``clearAudio``
(answered by ``clearedAudio``)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from voiceagent.testing.carriers.wire import CarrierWire, Shape, b64

PLAY: Shape = {"event": None, "media": {"contentType": None, "sampleRate": None, "payload": None}}
CONTENT_TYPES = {"audio/x-mulaw": "PCMU", "audio/x-l16": "L16"}
ENCODINGS = {"PCMU": "audio/x-mulaw", "L16": "audio/x-l16"}


class PlivoWire(CarrierWire):
    name = "plivo"
    bot_events: ClassVar[dict[str, tuple[str, Shape]]] = {
        "playAudio": ("media", PLAY),
        "checkpoint": ("mark", {"event": None, "streamId": None, "name": None}),
        "clearAudio": ("clear", {"event": None, "streamId": None}),
    }

    def start(self, seq: str) -> dict[str, Any]:
        fmt = {"encoding": ENCODINGS[self.codec], "sampleRate": 8000}
        body = {"callId": self.call_id, "streamId": self.stream_id, "accountId": self.account_id,
                "tracks": ["inbound"], "mediaFormat": fmt}  # fmt: skip
        return {"event": "start", "sequenceNumber": int(seq), "start": body,
                "extra_headers": json.dumps(self.custom_parameters)}  # fmt: skip

    def media(self, seq: str, chunk: int, timestamp_ms: int, payload: bytes) -> dict[str, Any]:
        body = {"track": "inbound", "timestamp": str(timestamp_ms), "chunk": chunk,
                "payload": b64(payload)}  # fmt: skip
        return {"event": "media", "sequenceNumber": int(seq), "streamId": self.stream_id,
                "media": body, "extra_headers": "{}"}  # fmt: skip

    def dtmf(self, seq: str, digit: str) -> dict[str, Any]:
        return {"event": "dtmf", "sequenceNumber": int(seq), "streamId": self.stream_id,
                "dtmf": {"track": "inbound", "digit": digit}}  # fmt: skip

    def echo(self, seq: str, name: str) -> dict[str, Any]:
        return {"event": "playedStream", "sequenceNumber": int(seq),
                "streamId": self.stream_id, "name": name}  # fmt: skip

    def cleared(self, seq: str) -> dict[str, Any] | None:
        return {"event": "clearedAudio", "sequenceNumber": int(seq), "streamId": self.stream_id}

    def stop(self, seq: str) -> dict[str, Any]:
        return {"event": "stop", "sequenceNumber": int(seq), "streamId": self.stream_id}

    def check(self, kind: str, message: dict[str, Any]) -> list[str]:
        errors = self.id_errors(message, "streamId")
        body = message.get("media")
        if kind == "media" and isinstance(body, dict):
            if body.get("contentType") not in CONTENT_TYPES:
                errors.append(f"playAudio: contentType {body.get('contentType')!r}")
            if body.get("sampleRate") != 8000:
                errors.append(f"playAudio: sampleRate {body.get('sampleRate')!r} (not 8000)")
        return errors

    def bot_codec(self, message: dict[str, Any]) -> str:
        body = message.get("media")
        kind = body.get("contentType") if isinstance(body, dict) else None
        return CONTENT_TYPES.get(str(kind), "PCMU")

    def mark_name(self, message: dict[str, Any]) -> Any:
        return message.get("name")
