"""Exotel voice streaming: snake_case JSON with ``stream_sid``; audio both ways is base64 raw
PCM16 (little-endian, 8 kHz, mono), and what we send must come in multiples of 320 bytes.

From Exotel's public docs, with these uncertainties: the sample rate is read from
``start.media_format`` (8 kHz assumed, and always sent); Exotel also suggests chunks of at
least 3.2 KB, which we do not wait for (20 ms frames keep barge-in quick); whether ``clear``
echoes the pending marks (the transport does not rely on it). Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any

from voiceagent.adapters.carriers import base
from voiceagent.adapters.carriers.base import Message, Serializer, dumps
from voiceagent.adapters.carriers.frames import (
    Cleared,
    Connected,
    Dtmf,
    Frame,
    Mark,
    Media,
    Start,
    Stop,
    UnknownEvent,
)

CHUNK_BYTES = 320  # 20 ms of 8 kHz PCM16: every outbound payload is a multiple of this


class ExotelSerializer(Serializer):
    name = "exotel"
    chunked = True

    def __init__(self) -> None:
        super().__init__()
        self.codec = "L16"
        self._rest = b""  # outbound PCM short of a whole chunk, sent with the next audio

    @classmethod
    def detect(cls, data: dict[str, Any]) -> bool:
        start = data.get("start")
        return "stream_sid" in data or (isinstance(start, dict) and "call_sid" in start)

    def frames(self, data: dict[str, Any]) -> list[Frame]:
        event = data.get("event")
        if event == "media":
            body = base.obj(data, "media")
            return [Media(base.b64(base.text(body, "payload")), str(body.get("track", "inbound")),
                          base.int_or_none(body.get("timestamp")), "L16",
                          base.int_or_none(body.get("chunk")))]  # fmt: skip
        if event == "mark":
            return [Mark(base.text(base.obj(data, "mark"), "name"))]
        if event == "dtmf":
            return [Dtmf(base.text(base.obj(data, "dtmf"), "digit"))]
        if event == "start":
            return [self._start(data)]
        if event == "connected":
            return [Connected("exotel", "")]
        if event == "clear":
            return [Cleared()]
        if event == "stop":
            return [Stop()]
        raise UnknownEvent(f"unknown event {event!r}")

    def _start(self, data: dict[str, Any]) -> Start:
        body = base.obj(data, "start")
        fmt = base.opt_obj(body, "media_format")
        return Start(
            stream_sid=base.first(data.get("stream_sid"), body.get("stream_sid")),
            call_sid=base.first(body.get("call_sid")),
            account_sid=base.first(body.get("account_sid")),
            tracks=("inbound",),
            custom_parameters=base.parameters(body.get("custom_parameters")),
            encoding=str(fmt.get("encoding", "base64")),
            sample_rate=base.sample_rate(fmt.get("sample_rate"), "sample_rate"),
            channels=base.int_or_none(fmt.get("channels")) or 1,
            codec="L16",
        )

    def media(self, pcm: bytes) -> list[Message]:
        pending = self._rest + pcm
        whole = len(pending) - len(pending) % CHUNK_BYTES
        self._rest = pending[whole:]
        return [self._media(pending[:whole])] if whole else []

    def flush(self) -> tuple[list[Message], int]:
        if not self._rest:
            return [], 0
        pad = CHUNK_BYTES - len(self._rest)
        chunk, self._rest = self._rest + bytes(pad), b""
        return [self._media(chunk)], pad // 2

    def mark(self, name: str) -> list[Message]:
        return [dumps({"event": "mark", "stream_sid": self.stream_id, "mark": {"name": name}})]

    def clear(self) -> list[Message]:
        self._rest = b""  # not yet sent: it goes with the rest of what is cleared
        return [dumps({"event": "clear", "stream_sid": self.stream_id})]

    def media_body(self, payload: str) -> dict[str, Any]:
        return {"event": "media", "stream_sid": self.stream_id, "media": {"payload": payload}}

    def _media(self, pcm: bytes) -> Message:
        return self.media_message(self.payload(pcm))
