"""The ``Serializer`` base class every carrier implements, and the JSON helpers they share:
tolerant reading of what a carrier sends, exact building of what we send."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, ClassVar

from voiceagent.adapters.carriers.frames import (
    MAX_RATE,
    MIN_RATE,
    SAMPLE_RATE,
    Frame,
    FrameError,
    Start,
    UnsupportedStart,
    encode,
)

Message = str  # every carrier here takes JSON text frames
_SLOT = "<<payload>>"  # where the base64 goes in a media message's template (no base64 char)


class Serializer:
    """One call's translation between a carrier's wire messages and the frame model.

    One instance per call: it remembers the ``start`` (ids go into what we send) and any
    state the carrier needs (Telnyx's reorder window, Exotel's 320-byte chunking).
    Outbound audio is PCM16 at ``sample_rate``; the serializer encodes it as ``codec``.
    """

    name: ClassVar[str] = ""
    sample_rate: ClassVar[int] = 8000
    chunked: ClassVar[bool] = False  # ``media`` keeps audio between calls (Exotel's chunks)

    def __init__(self) -> None:
        self.start: Start | None = None
        self.stream_id = ""  # the start's, once parsed: what we send carries it
        self.ignored_starts = 0  # starts after the first: dropped, they change nothing
        self.codec = "PCMU"  # outbound; a carrier may follow what its start announces
        # A call sends 50 media messages a second: each is a template filled with its base64,
        # and a frame of silence is built once (bench/phone_load.py, the profile's top items).
        self._template: tuple[tuple[str, str], str, str] | None = None
        self._silence: tuple[tuple[str, str, int], list[Message]] | None = None

    @classmethod
    def detect(cls, data: dict[str, Any]) -> bool:
        """Whether one inbound message (parsed JSON) is unmistakably this carrier's."""
        return False

    def parse(self, message: str | bytes) -> list[Frame]:
        """The frames one inbound message yields (none while a reorder window holds it).

        The first ``start`` is the call's; any later one is dropped and counted in
        ``ignored_starts`` (it would switch the stream id in what we send)."""
        try:
            frames = self.frames(load(message, self.name))
        except UnsupportedStart:
            if self.start is None:
                raise
            self.ignored_starts += 1  # a later start, unusable too: ignored like any other
            return []
        if self.start is None:
            self.start = next((f for f in frames if isinstance(f, Start)), None)
            self.stream_id = self.start.stream_sid if self.start is not None else ""
        kept = [f for f in frames if not isinstance(f, Start) or f is self.start]
        self.ignored_starts += len(frames) - len(kept)
        return kept

    def frames(self, data: dict[str, Any]) -> list[Frame]:
        raise NotImplementedError

    def finish(self) -> list[Frame]:
        """Frames still held back when the stream ends (a reorder window's contents)."""
        return []

    def media(self, pcm: bytes) -> list[Message]:
        """Messages carrying ``pcm`` (PCM16 at ``sample_rate``) to the caller."""
        return [self.media_message(self.payload(pcm))]

    def media_body(self, payload: str) -> dict[str, Any]:
        """The outbound media message around ``payload`` (base64 of audio in ``codec``)."""
        raise NotImplementedError

    def media_message(self, payload: str) -> Message:
        """``media_body(payload)`` as JSON, the same bytes as ``dumps`` gives, built faster."""
        key = (self.stream_id, self.codec)
        if self._template is None or self._template[0] != key:
            text = dumps(self.media_body(_SLOT))
            head, _, tail = text.partition(_SLOT)
            if _SLOT in tail:  # an id that contains the slot itself: build every time
                return dumps(self.media_body(payload))
            self._template = (key, head, tail)
        return self._template[1] + payload + self._template[2]

    def silence(self, samples: int) -> list[Message]:
        """``media`` of ``samples`` of silence: built once per size, unless chunked."""
        if self.chunked:
            return self.media(bytes(2 * samples))
        key = (self.stream_id, self.codec, samples)
        if self._silence is None or self._silence[0] != key:
            self._silence = (key, self.media(bytes(2 * samples)))
        return self._silence[1]

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


def loads(text: str | bytes) -> Any:
    """``json.loads``, with JSON nested deeper than the parser recurses (``[[[…]]]`` under
    the size cap) a ``ValueError`` like any other bad JSON, not a ``RecursionError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def load(message: str | bytes, carrier: str) -> dict[str, Any]:
    if isinstance(message, bytes):
        raise FrameError(f"a binary frame ({carrier} sends only JSON text)")
    try:
        data = loads(message)
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


def sample_rate(value: object, key: str) -> int:
    """A start's announced rate: absent is the line's 8 kHz; anything but a whole number of
    Hz from ``MIN_RATE`` to ``MAX_RATE`` refuses the call (``UnsupportedStart``)."""
    if value in (None, ""):
        return SAMPLE_RATE
    rate = int_or_none(value)
    if rate is None or not MIN_RATE <= rate <= MAX_RATE:
        shown = repr(value)[:40]
        raise UnsupportedStart(f"{key} {shown} is not a rate from {MIN_RATE} to {MAX_RATE} Hz")
    return rate


def first(*values: object) -> str:
    """The first non-empty value as a string ('' if none): ids appear in several places."""
    return next((str(v) for v in values if v not in (None, "")), "")


def parameters(value: object) -> dict[str, str]:
    """Custom parameters as an object, a JSON object string, or ``k=v,k=v`` (Plivo)."""
    if isinstance(value, str) and value.strip():
        try:
            value = loads(value)
        except ValueError:
            pairs = (item.split("=", 1) for item in str(value).split(",") if "=" in item)
            return {k.strip(): v.strip() for k, v in pairs}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {}
