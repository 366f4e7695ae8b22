"""Twilio Media Streams: camelCase JSON, base64 μ-law at 8 kHz, ``mark`` echoed when played,
``clear`` echoes the pending marks at once (PROTOCOLS.md, "Twilio Media Streams")."""

from __future__ import annotations

import base64
from typing import Any

from voiceagent.adapters.carriers import base
from voiceagent.adapters.carriers.base import Message, Serializer, dumps
from voiceagent.adapters.carriers.frames import (
    Connected,
    Dtmf,
    Frame,
    FrameError,
    Mark,
    Media,
    Start,
    Stop,
    UnknownEvent,
)

SAMPLE_RATE = 8000
ENCODING = "audio/x-mulaw"


class TwilioSerializer(Serializer):
    name = "twilio"

    @classmethod
    def detect(cls, data: dict[str, Any]) -> bool:
        start = data.get("start")
        return (
            "streamSid" in data
            or (data.get("event") == "connected" and "protocol" in data)
            or (isinstance(start, dict) and ("callSid" in start or "accountSid" in start))
        )

    def frames(self, data: dict[str, Any]) -> list[Frame]:
        return [parse_data(data)]

    def media_body(self, payload: str) -> dict[str, Any]:
        return _media_body(self.stream_id, payload)

    def mark(self, name: str) -> list[Message]:
        return [mark(self.stream_id, name)]

    def clear(self) -> list[Message]:
        return [clear(self.stream_id)]


def parse(message: str | bytes) -> Frame:
    """One inbound message as a frame; raises ``FrameError`` (or ``UnknownEvent``)."""
    return parse_data(base.load(message, "Twilio"))


def parse_data(data: dict[str, Any]) -> Frame:
    event = data.get("event")
    if event == "media":
        body = base.obj(data, "media")
        return Media(base.b64(base.text(body, "payload")), str(body.get("track", "inbound")),
                     base.int_or_none(body.get("timestamp")),
                     chunk=base.int_or_none(body.get("chunk")))  # fmt: skip
    if event == "mark":
        return Mark(base.text(base.obj(data, "mark"), "name"))
    if event == "dtmf":
        return Dtmf(base.text(base.obj(data, "dtmf"), "digit"))
    if event == "start":
        return _start(data)
    if event == "connected":
        return Connected(str(data.get("protocol", "")), str(data.get("version", "")))
    if event == "stop":
        return Stop()
    raise UnknownEvent(f"unknown event {event!r}")


def _start(data: dict[str, Any]) -> Start:
    body = base.obj(data, "start")
    fmt = base.opt_obj(body, "mediaFormat")
    tracks = body.get("tracks") or ()
    if not isinstance(body.get("customParameters") or {}, dict):
        raise FrameError("start.customParameters is not an object")
    return Start(
        stream_sid=base.first(body.get("streamSid"), data.get("streamSid")),
        call_sid=str(body.get("callSid", "")),
        account_sid=str(body.get("accountSid", "")),
        tracks=tuple(str(t) for t in tracks) if isinstance(tracks, list) else (),
        custom_parameters=base.parameters(body.get("customParameters")),
        encoding=str(fmt.get("encoding", ENCODING)),
        sample_rate=base.sample_rate(fmt.get("sampleRate"), "sampleRate"),
        channels=base.int_or_none(fmt.get("channels")) or 1,
    )


def media(stream_sid: str, ulaw: bytes) -> str:
    """Audio to the caller: raw μ-law at 8 kHz, base64."""
    return dumps(_media_body(stream_sid, base64.b64encode(ulaw).decode("ascii")))


def _media_body(stream_sid: str, payload: str) -> dict[str, Any]:
    return {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}


def mark(stream_sid: str, name: str) -> str:
    """Echoed by Twilio once everything sent before it has played (or at a ``clear``)."""
    return dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    """Drop the audio Twilio still holds; every pending mark is echoed at once."""
    return dumps({"event": "clear", "streamSid": stream_sid})
