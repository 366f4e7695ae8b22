"""Twilio Media Streams on the wire: inbound JSON parsed into typed frames, and the only
three messages we send (``media``, ``mark``, ``clear``), as PROTOCOLS.md describes them."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

SAMPLE_RATE = 8000  # Hz: μ-law, mono, no header
ENCODING = "audio/x-mulaw"


class FrameError(ValueError):
    """An inbound message we cannot use (not JSON, not an object, missing fields)."""


class UnknownEvent(FrameError):
    """A well-formed message whose ``event`` we do not know (Twilio may add new ones)."""


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...] = ()
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = ENCODING
    sample_rate: int = SAMPLE_RATE
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Media:
    ulaw: bytes  # the caller's audio, μ-law bytes
    track: str = "inbound"
    timestamp_ms: int | None = None  # since the stream started, by Twilio's clock


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    name: str  # a mark we sent, echoed once the audio before it has played


@dataclass(frozen=True, slots=True)
class Stop:
    pass


Frame = Connected | Start | Media | Dtmf | Mark | Stop


def parse(message: str | bytes) -> Frame:
    """One inbound message as a frame; raises ``FrameError`` (or ``UnknownEvent``)."""
    if isinstance(message, bytes):
        raise FrameError("a binary frame (Twilio sends only JSON text)")
    try:
        data = json.loads(message)
    except ValueError as error:
        raise FrameError(f"not JSON: {error}") from error
    if not isinstance(data, dict):
        raise FrameError(f"not a JSON object: {type(data).__name__}")
    event = data.get("event")
    if event == "media":
        body = _object(data, "media")
        return Media(_b64(_text(body, "payload")), str(body.get("track", "inbound")),
                     _int_or_none(body.get("timestamp")))  # fmt: skip
    if event == "mark":
        return Mark(_text(_object(data, "mark"), "name"))
    if event == "dtmf":
        return Dtmf(_text(_object(data, "dtmf"), "digit"))
    if event == "start":
        return _start(data)
    if event == "connected":
        return Connected(str(data.get("protocol", "")), str(data.get("version", "")))
    if event == "stop":
        return Stop()
    raise UnknownEvent(f"unknown event {event!r}")


def _start(data: dict[str, Any]) -> Start:
    body = _object(data, "start")
    params = body.get("customParameters") or {}
    if not isinstance(params, dict):
        raise FrameError("start.customParameters is not an object")
    fmt = body.get("mediaFormat") or {}
    if not isinstance(fmt, dict):
        raise FrameError("start.mediaFormat is not an object")
    tracks = body.get("tracks") or ()
    return Start(
        stream_sid=str(body.get("streamSid") or data.get("streamSid") or ""),
        call_sid=str(body.get("callSid", "")),
        account_sid=str(body.get("accountSid", "")),
        tracks=tuple(str(t) for t in tracks) if isinstance(tracks, list) else (),
        custom_parameters={str(k): str(v) for k, v in params.items()},
        encoding=str(fmt.get("encoding", ENCODING)),
        sample_rate=_int_or_none(fmt.get("sampleRate")) or SAMPLE_RATE,
        channels=_int_or_none(fmt.get("channels")) or 1,
    )


def media(stream_sid: str, ulaw: bytes) -> str:
    """Audio to the caller: raw μ-law at 8 kHz, base64."""
    payload = base64.b64encode(ulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark(stream_sid: str, name: str) -> str:
    """Echoed by Twilio once everything sent before it has played (or at a ``clear``)."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    """Drop the audio Twilio still holds; every pending mark is echoed at once."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise FrameError(f"{data.get('event')}: missing the {key!r} object")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise FrameError(f"missing {key!r} (a string)")
    return value


def _b64(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise FrameError("media payload is not base64") from error


def _int_or_none(value: object) -> int | None:
    # Twilio sends numbers such as chunk and timestamp as decimal strings
    try:
        return int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        return None
