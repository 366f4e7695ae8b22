"""Telnyx media streaming: snake_case JSON (``stream_id``, ``sequence_number``), PCMU, PCMA or
L16 as ``start.media_format`` says; media may arrive out of order, so it is reordered by chunk.

From Telnyx's public docs, with these uncertainties: outbound ``media``/``mark``/``clear``
carry no stream id; L16 is read as little-endian; whether ``clear`` echoes pending marks is
not documented (the transport does not rely on it). Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any

from voiceagent.adapters.carriers import base
from voiceagent.adapters.carriers.base import Message, Serializer, dumps
from voiceagent.adapters.carriers.frames import (
    CODECS,
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

REORDER_WINDOW = 5  # frames (100 ms): the most a missing frame may delay the ones after it


class Reorder:
    """Puts media back in chunk order: frames wait while an earlier one is missing, until
    more than ``window`` wait (the missing one is given up). Late and duplicate frames are
    dropped and counted."""

    def __init__(self, window: int = REORDER_WINDOW, first: int = 1) -> None:
        self.window = window
        self.next = first
        self.held: dict[int, Media] = {}
        self.late = 0  # arrived after their place had passed (played, or given up)
        self.duplicates = 0  # a second copy of a frame still waiting
        self.skipped = 0  # frames given up as lost
        self.reordered = 0  # frames that arrived ahead of a missing one and waited

    def push(self, chunk: int, frame: Media) -> list[Media]:
        if chunk < self.next:
            self.late += 1
            return []
        if chunk in self.held:
            self.duplicates += 1
            return []
        self.held[chunk] = frame
        self.reordered += chunk > self.next
        out = self._run()
        while len(self.held) > self.window:
            lowest = min(self.held)
            self.skipped += lowest - self.next
            self.next = lowest
            out += self._run()
        return out

    def drain(self) -> list[Media]:
        """Everything still waiting, in order (the stream ended)."""
        out = [self.held[chunk] for chunk in sorted(self.held)]
        if self.held:
            self.next = max(self.held) + 1
        self.held.clear()
        return out

    def _run(self) -> list[Media]:
        out: list[Media] = []
        while self.next in self.held:
            out.append(self.held.pop(self.next))
            self.next += 1
        return out


class TelnyxSerializer(Serializer):
    name = "telnyx"

    def __init__(self, window: int = REORDER_WINDOW) -> None:
        super().__init__()
        self.reorder = Reorder(window)
        self.in_codec = "PCMU"

    @classmethod
    def detect(cls, data: dict[str, Any]) -> bool:
        start = data.get("start")
        return "stream_id" in data or (isinstance(start, dict) and "call_control_id" in start)

    def frames(self, data: dict[str, Any]) -> list[Frame]:
        event = data.get("event")
        if event == "media":
            body = base.obj(data, "media")
            chunk = base.int_or_none(body.get("chunk"))
            payload = base.b64(base.text(body, "payload"))
            stamp = base.int_or_none(body.get("timestamp"))
            frame = Media(payload, str(body.get("track", "inbound")), stamp, self.in_codec, chunk)
            return [frame] if chunk is None else list(self.reorder.push(chunk, frame))
        if event == "mark":
            return [Mark(base.text(base.obj(data, "mark"), "name"))]
        if event == "dtmf":
            return [Dtmf(base.text(base.obj(data, "dtmf"), "digit"))]
        if event == "start":
            return [self._start(data)]
        if event == "connected":
            return [Connected("telnyx", str(data.get("version", "")))]
        if event == "stop":
            return [*self.finish(), Stop()]
        if event == "error":
            raise FrameError(f"Telnyx reported an error: {data.get('payload')!r}")
        raise UnknownEvent(f"unknown event {event!r}")

    def _start(self, data: dict[str, Any]) -> Start:
        body = base.obj(data, "start")
        fmt = base.opt_obj(body, "media_format")
        encoding = str(fmt.get("encoding", "PCMU"))
        codec = encoding.upper()
        if codec not in CODECS:
            raise FrameError(f"Telnyx codec {encoding!r} is not supported (PCMU, PCMA, L16)")
        self.in_codec = codec
        # Telnyx plays back in the stream's bidirectional codec: G.711 as received; for L16
        # we send PCMU, Telnyx's default (uncertain: L16 playback may need configuring).
        self.codec = codec if codec != "L16" else "PCMU"
        return Start(
            stream_sid=base.first(data.get("stream_id"), body.get("stream_id")),
            call_sid=base.first(body.get("call_control_id"), body.get("call_session_id")),
            account_sid=base.first(body.get("user_id")),
            tracks=(str(body.get("tracks", "inbound")),),
            custom_parameters=base.parameters(body.get("custom_parameters")),
            encoding=encoding,
            sample_rate=base.sample_rate(fmt.get("sample_rate"), "sample_rate"),
            channels=base.int_or_none(fmt.get("channels")) or 1,
            codec=codec,
        )

    def finish(self) -> list[Frame]:
        return list(self.reorder.drain())

    def media_body(self, payload: str) -> dict[str, Any]:
        return {"event": "media", "media": {"payload": payload}}

    def mark(self, name: str) -> list[Message]:
        return [dumps({"event": "mark", "mark": {"name": name}})]

    def clear(self) -> list[Message]:
        return [dumps({"event": "clear"})]
