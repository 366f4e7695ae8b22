"""The ``Serializer`` base class every carrier implements, and the JSON helpers they share:
tolerant reading of what a carrier sends, exact building of what we send."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, ClassVar

from voiceagent.adapters.carriers.frames import Frame, FrameError, Start, encode

Message = str  # every carrier here takes JSON text frames


class Serializer:
    """One call's translation between a carrier's wire messages and the frame model.

    One instance per call: it remembers the ``start`` (ids go into what we send) and any
    state the carrier needs (Telnyx's reorder window, Exotel's 320-byte chunking).
    Outbound audio is PCM16 at ``sample_rate``; the serializer encodes it as ``codec``.
    """

    name: ClassVar[str] = ""
    sample_rate: ClassVar[int] = 8000

    def __init__(self) -> None:
        self.start: Start | None = None
        self.stream_id = ""  # the start's, once parsed: what we send carries it
        self.codec = "PCMU"  # outbound; a carrier may follow what its start announces

    @classmethod
    def detect(cls, data: dict[str, Any]) -> bool:
        """Whether one inbound message (parsed JSON) is unmistakably this carrier's."""
        return False

    def parse(self, message: str | bytes) -> list[Frame]:
        """The frames one inbound message yields (none while a reorder window holds it)."""
        frames = self.frames(load(message, self.name))
        for frame in frames:
            if isinstance(frame, Start):
                self.start, self.stream_id = frame, frame.stream_sid
        return frames

    def frames(self, data: dict[str, Any]) -> list[Frame]:
        raise NotImplementedError

    def finish(self) -> list[Frame]:
        """Frames still held back when the stream ends (a reorder window's contents)."""
        return []

    def media(self, pcm: bytes) -> list[Message]:
        raise NotImplementedError

    def mark(self, name: str) -> list[Message]:
        raise NotImplementedError

    def clear(self) -> list[Message]:
        raise NotImplementedError

    def flush(self) -> tuple[list[Message], int]:
        """Audio held back for the carrier's chunking, padded out with silence so a mark can
        follow it: (messages, samples of silence added). Nothing for most carriers."""
        return [], 0

    def payload(self, pcm: bytes) -> str:
        return base64.b64encode(encode(pcm, self.codec)).decode("ascii")


def dumps(message: dict[str, Any]) -> Message:
    return json.dumps(message, separators=(",", ":"))


def load(message: str | bytes, carrier: str) -> dict[str, Any]:
    if isinstance(message, bytes):
        raise FrameError(f"a binary frame ({carrier} sends only JSON text)")
    try:
        data = json.loads(message)
    except ValueError as error:
        raise FrameError(f"not JSON: {error}") from error
    if not isinstance(data, dict):
        raise FrameError(f"not a JSON object: {type(data).__name__}")
    return data


def obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise FrameError(f"{data.get('event')}: missing the {key!r} object")
    return value


def opt_obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise FrameError(f"{data.get('event')}: {key!r} is not an object")
    return value


def text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise FrameError(f"missing {key!r} (a string)")
    return value


def b64(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise FrameError("media payload is not base64") from error


def int_or_none(value: object) -> int | None:
    # carriers send numbers such as chunk and timestamp as decimal strings, or as numbers
    if isinstance(value, bool):
        return None
    try:
        return int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        return None


def first(*values: object) -> str:
    """The first non-empty value as a string ('' if none): ids appear in several places."""
    return next((str(v) for v in values if v not in (None, "")), "")


def parameters(value: object) -> dict[str, str]:
    """Custom parameters as an object, a JSON object string, or ``k=v,k=v`` (Plivo)."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except ValueError:
            pairs = (item.split("=", 1) for item in str(value).split(",") if "=" in item)
            return {k.strip(): v.strip() for k, v in pairs}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {}
