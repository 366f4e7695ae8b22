"""Plivo audio streams: camelCase JSON with ``streamId``/``callId``; we send ``playAudio``,
``checkpoint`` (echoed as ``playedStream`` once played) and ``clearAudio`` (``clearedAudio``).

From Plivo's public docs, with these uncertainties: whether ``clearAudio`` also echoes the
pending checkpoints (the transport does not rely on it); whether a ``stop`` event precedes
the close; ``extra_headers`` (custom data) arrives as a string, read as JSON or ``k=v,…``.
"""

from __future__ import annotations

from typing import Any

from voiceagent.adapters.carriers import base
from voiceagent.adapters.carriers.base import Message, Serializer, dumps
from voiceagent.adapters.carriers.frames import (
    Cleared,
    Dtmf,
    Frame,
    FrameError,
    Mark,
    Media,
    Start,
    Stop,
    UnknownEvent,
)

CONTENT_TYPES = {"PCMU": "audio/x-mulaw", "L16": "audio/x-l16"}


def codec_of(encoding: str) -> str:
    lowered = encoding.lower()
    if "mulaw" in lowered or "pcmu" in lowered:
        return "PCMU"
    if "l16" in lowered:
        return "L16"
    raise FrameError(f"Plivo encoding {encoding!r} is not supported (audio/x-mulaw, x-l16)")


class PlivoSerializer(Serializer):
    name = "plivo"

    @classmethod
    def detect(cls, data: dict[str, Any]) -> bool:
        start = data.get("start")
        return (
            "streamId" in data
            or data.get("event") in ("playedStream", "clearedAudio")
            or (isinstance(start, dict) and ("callId" in start or "streamId" in start))
        )

    def frames(self, data: dict[str, Any]) -> list[Frame]:
        event = data.get("event")
        if event == "media":
            body = base.obj(data, "media")
            codec = self.start.codec if self.start is not None else "PCMU"
            return [Media(base.b64(base.text(body, "payload")), str(body.get("track", "inbound")),
                          base.int_or_none(body.get("timestamp")), codec,
                          base.int_or_none(body.get("chunk")))]  # fmt: skip
        if event == "playedStream":
            return [Mark(base.text(data, "name"))]
        if event == "clearedAudio":
            return [Cleared()]
        if event == "dtmf":
            return [Dtmf(base.text(base.obj(data, "dtmf"), "digit"))]
        if event == "start":
            return [self._start(data)]
        if event == "stop":
            return [Stop()]
        raise UnknownEvent(f"unknown event {event!r}")

    def _start(self, data: dict[str, Any]) -> Start:
        body = base.obj(data, "start")
        fmt = base.opt_obj(body, "mediaFormat")
        encoding = str(fmt.get("encoding", "audio/x-mulaw"))
        self.codec = codec_of(encoding)
        tracks = body.get("tracks") or ()
        return Start(
            stream_sid=base.first(body.get("streamId"), data.get("streamId")),
            call_sid=base.first(body.get("callId"), data.get("callId")),
            account_sid=base.first(body.get("accountId")),
            tracks=tuple(str(t) for t in tracks) if isinstance(tracks, list) else (),
            custom_parameters=base.parameters(data.get("extra_headers")),
            encoding=encoding,
            sample_rate=base.sample_rate(fmt.get("sampleRate"), "sampleRate"),
            channels=base.int_or_none(fmt.get("channels")) or 1,
            codec=self.codec,
        )

    def media_body(self, payload: str) -> dict[str, Any]:
        body = {"contentType": CONTENT_TYPES[self.codec], "sampleRate": self.sample_rate,
                "payload": payload}  # fmt: skip
        return {"event": "playAudio", "media": body}

    def mark(self, name: str) -> list[Message]:
        return [dumps({"event": "checkpoint", "streamId": self.stream_id, "name": name})]

    def clear(self) -> list[Message]:
        return [dumps({"event": "clearAudio", "streamId": self.stream_id})]
