"""What a carrier's side sends, and checks of what the bot sends it: one ``CarrierWire`` per
carrier, with the exact field names the carrier uses (Twilio's from the Twilio simulator)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any, ClassVar

from voiceagent.audio import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voiceagent.testing.twilio import wire as twilio_wire

Shape = dict[str, "Shape | None"]  # the exact keys of a message (None: any value)
Bot = tuple[str, Any]  # ("media", μ-law bytes) | ("mark", name) | ("clear", None)


def shape_errors(value: Any, shape: Shape, where: str) -> list[str]:
    """Missing and unexpected keys of ``value`` against ``shape``, nested objects included."""
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    errors = [f"{where}: missing {key!r}" for key in shape if key not in value]
    errors += [f"{where}: unexpected field {key!r}" for key in value if key not in shape]
    for key, inner in shape.items():
        if inner is not None and key in value:
            errors += shape_errors(value[key], inner, f"{where}.{key}")
    return errors


def decode_payload(payload: Any) -> bytes | None:
    if not isinstance(payload, str):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class CarrierWire:
    """One carrier's messages for a call with these ids; ``codec`` is what the caller sends
    (PCMU, PCMA or L16); the bot's audio is read back as μ-law for the playback model."""

    name: ClassVar[str]
    bot_events: ClassVar[dict[str, tuple[str, Shape]]]  # event -> (kind, exact shape)

    def __init__(self, stream_id: str, call_id: str, account_id: str,
                 custom_parameters: dict[str, str], codec: str = "PCMU") -> None:  # fmt: skip
        self.stream_id, self.call_id, self.account_id = stream_id, call_id, account_id
        self.custom_parameters = custom_parameters
        self.codec = codec

    @staticmethod
    def new_id(prefix: str) -> str:
        return str(uuid.uuid4())

    def encode(self, ulaw: bytes) -> bytes:
        """A 20 ms μ-law frame of the caller's speech in the caller's codec."""
        if self.codec == "PCMU":
            return ulaw
        pcm = ulaw_decode(ulaw)
        return alaw_encode(pcm) if self.codec == "PCMA" else pcm

    def connected(self) -> dict[str, Any] | None:
        return None

    def start(self, seq: str) -> dict[str, Any]:
        raise NotImplementedError

    def media(self, seq: str, chunk: int, timestamp_ms: int, payload: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def dtmf(self, seq: str, digit: str) -> dict[str, Any]:
        raise NotImplementedError

    def echo(self, seq: str, name: str) -> dict[str, Any]:
        """A mark (checkpoint) the bot sent, played or cleared."""
        raise NotImplementedError

    def cleared(self, seq: str) -> dict[str, Any] | None:
        """The acknowledgement of a clear, for carriers that send one."""
        return None

    def stop(self, seq: str) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, message: Any) -> tuple[list[str], Bot | None]:
        """Protocol errors in one bot message, and what it asks of the caller's side."""
        if not isinstance(message, dict):
            return [f"message is not a JSON object: {type(message).__name__}"], None
        event = message.get("event")
        if event not in self.bot_events:
            events = ", ".join(self.bot_events)
            return [f"unknown event {event!r} (the bot may send only {events})"], None
        kind, shape = self.bot_events[event]
        errors = shape_errors(message, shape, str(event))
        errors += self.check(kind, message)
        if kind == "media":
            audio = self.bot_audio(message)
            if not audio:
                errors.append(f"{event}: missing, empty or non-base64 payload")
            return errors, ("media", audio or b"")
        if kind == "mark":
            name = self.mark_name(message)
            return errors, ("mark", name) if isinstance(name, str) else None
        return errors, ("clear", None)

    def check(self, kind: str, message: dict[str, Any]) -> list[str]:
        """Carrier rules beyond the shape (ids, formats)."""
        return []

    def bot_audio(self, message: dict[str, Any]) -> bytes | None:
        """The bot's audio as μ-law (None when unusable)."""
        body = message.get("media")
        raw = decode_payload(body.get("payload")) if isinstance(body, dict) else None
        return None if raw is None else to_ulaw(raw, self.bot_codec(message))

    def bot_codec(self, message: dict[str, Any]) -> str:
        """The codec the bot must send in (G.711 as the caller's; PCMU for L16 callers)."""
        return "PCMU" if self.codec == "L16" else self.codec

    def mark_name(self, message: dict[str, Any]) -> Any:
        body = message.get("mark")
        return body.get("name") if isinstance(body, dict) else None

    def id_errors(self, message: dict[str, Any], key: str) -> list[str]:
        value = message.get(key)
        if value is not None and value != self.stream_id:
            return [f"{message.get('event')}: wrong {key} {value!r} (the stream is "
                    f"{self.stream_id!r})"]  # fmt: skip
        return []


class TwilioWire(CarrierWire):
    """Twilio's shapes, from the Twilio caller simulator's ``wire``."""

    name = "twilio"
    bot_events: ClassVar[dict[str, tuple[str, Shape]]] = {}

    @staticmethod
    def new_id(prefix: str) -> str:
        return twilio_wire.new_sid(prefix)

    def connected(self) -> dict[str, Any] | None:
        return twilio_wire.connected()

    def start(self, seq: str) -> dict[str, Any]:
        return twilio_wire.start(seq, self.stream_id, self.account_id, self.call_id,
                                 self.custom_parameters)  # fmt: skip

    def media(self, seq: str, chunk: int, timestamp_ms: int, payload: bytes) -> dict[str, Any]:
        return twilio_wire.media(seq, self.stream_id, chunk, timestamp_ms, payload)

    def dtmf(self, seq: str, digit: str) -> dict[str, Any]:
        return twilio_wire.dtmf(seq, self.stream_id, digit)

    def echo(self, seq: str, name: str) -> dict[str, Any]:
        return twilio_wire.mark(seq, self.stream_id, name)

    def stop(self, seq: str) -> dict[str, Any]:
        return twilio_wire.stop(seq, self.stream_id, self.account_id, self.call_id)

    def read(self, message: Any) -> tuple[list[str], Bot | None]:
        errors = twilio_wire.check_bot_message(message, self.stream_id)
        if not isinstance(message, dict):
            return errors, None
        event = message.get("event")
        if event == "media":
            return errors, ("media", twilio_wire.media_payload(message) or b"")
        if event == "mark":
            name = self.mark_name(message)
            return errors, ("mark", name) if isinstance(name, str) else None
        return errors, ("clear", None) if event == "clear" else None


def to_ulaw(audio: bytes, codec: str) -> bytes:
    """Bot audio in ``codec`` as μ-law, what the playback model plays."""
    if codec == "PCMU":
        return audio
    if codec == "PCMA":
        return ulaw_encode(alaw_decode(audio))
    return ulaw_encode(audio[: len(audio) - len(audio) % 2])
