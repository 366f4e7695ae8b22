"""One browser page as a ``ports.Transport``: the page's microphone in 20 ms PCM16 frames
(paced, bounded, bad frames counted), and the agent's voice through ``web_speaker`` (each
segment's end confirmed by the page as it plays, like Twilio's marks; cleared at once on
barge-in).

The wire (one websocket, JSON text for control, binary for audio), page → server:
``{"type": "hello", "sample_rate": R}`` first, then binary frames of 16-bit little-endian
mono PCM at R, 20 ms each; ``{"type": "played", "position": N}`` now and then while the
agent's audio plays (N: samples of it played so far); ``{"type": "mark", "name": S,
"position": N}`` when a segment's last sample has played; ``{"type": "cleared",
"position": N}`` answering a clear (where playback stopped); ``{"type": "text", "text": T}``
a typed line. Server → page: ``ready`` (the rates), binary audio at ``output_rate``,
``segment`` (a segment's first sample is next), ``mark`` (its last one was the previous),
``clear`` (drop what is buffered; playback goes on from ``at``), and the session's news.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import anyio

from voiceagent import audio
from voiceagent.adapters.inbound_pacer import (
    BURST_S,
    FLOOD_CLOSE_CODE,
    FLOOD_CLOSE_S,
    FLOOD_REASON,
    INBOX_S,
    NOT_READING_REASON,
    OUTBOX_S,
    InboundPacer,
)
from voiceagent.adapters.mailbox import Mailbox
from voiceagent.adapters.web_speaker import FRAME_MS, Message, WebSpeaker
from voiceagent.wire_text import printable

logger = logging.getLogger(__name__)

INPUT_RATE = 16000  # Hz: what the session hears (the page's rate is resampled to it)
PAGE_RATES = (8000, 96000)  # the page's capture rates accepted (an AudioContext's range)
MAX_TEXT_BYTES = 16 * 1024  # a control message is well under 1 kB; larger ones are skipped
MAX_TYPED_CHARS = 2000  # a typed line longer than this is cut
LOGGED_MALFORMED = 5  # malformed messages logged per page; all of them are counted

__all__ = ["FRAME_MS", "INPUT_RATE", "Message", "WebSpeaker", "WebTransport"]


class WebTransport:
    """``ports.Transport`` for one page, fed by the server with each websocket message.

    ``incoming()`` yields the page's audio as PCM16 at ``INPUT_RATE`` (and typed lines);
    it ends when the page goes away. ``outgoing()`` is what the server writes to the
    socket; ``send_event`` adds a JSON message of the session's news to it. As on the phone
    (``inbound_pacer``): audio beyond real time plus ``burst_s`` is dropped (a page that
    keeps flooding is closed, ``refusal``), the audio not yet taken is bounded by
    ``inbox_s``, and a page that reads nothing for ``outbox_s`` of audio is dropped.
    Malformed messages (bad JSON, odd or oversized frames, audio before ``hello``) are
    counted in ``malformed`` and skipped.
    """

    def __init__(
        self,
        output_rate: int,
        *,
        origin: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        lead_ms: float = 100.0,
        goodbye_timeout_s: float = 10.0,
        burst_s: float = BURST_S,
        flood_close_s: float = FLOOD_CLOSE_S,
        inbox_s: float = INBOX_S,
        outbox_s: float = OUTBOX_S,
    ) -> None:
        self.origin = time.monotonic() if origin is None else origin
        self._outbox = Mailbox[Message]()
        self._inbox = Mailbox[bytes | str]()
        self.speaker = WebSpeaker(output_rate, self._send, origin=self.origin, lead_ms=lead_ms)
        self.page_rate: int | None = None
        self.pacer: InboundPacer | None = None
        self._resampler: audio.Resampler | None = None
        self._burst_s, self._flood_close_s = burst_s, flood_close_s
        self._inbox_max = round(inbox_s * INPUT_RATE)
        self._inbox_samples = 0
        self.inbox_dropped = 0
        self.outbox_s = outbox_s
        self._outbox_max = max(16, math.ceil(outbox_s / self.speaker.frame_s))
        self.malformed: Counter[str] = Counter()
        self.frames = 0  # audio frames taken
        self.refusal: tuple[int, str] | None = None
        self.on_not_reading: Callable[[], None] | None = None
        self.goodbye_timeout_s = goodbye_timeout_s
        self.hung_up = False
        self._metadata: dict[str, Any] = {"transport": "web", **(metadata or {})}
        self.send_event({"type": "ready", "output_rate": output_rate, "input_rate": INPUT_RATE,
                         "frame_ms": FRAME_MS})  # fmt: skip

    @property
    def input_rate(self) -> int:
        return INPUT_RATE

    @property
    def output(self) -> WebSpeaker:
        return self.speaker

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    @property
    def dropped_ms(self) -> float:
        paced = self.pacer.dropped_ms if self.pacer is not None else 0.0
        return paced + 1000.0 * self.inbox_dropped / INPUT_RATE

    def receive(self, message: Message) -> None:
        """One websocket message from the page (never blocks, never raises on bad input)."""
        if self.hung_up:
            return
        if isinstance(message, bytes):
            self._frame(message)
            return
        if len(message) > MAX_TEXT_BYTES:
            self._malformed("too_large", f"a text message of {len(message)} characters")
            return
        try:
            data = json.loads(message)
        except ValueError:
            self._malformed("invalid", "not JSON")
            return
        if not isinstance(data, dict):
            self._malformed("invalid", "not a JSON object")
            return
        self._control(data)

    def _control(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        position = data.get("position")
        if position is not None and not _count(position):
            self._malformed("invalid", f"{printable(kind)}: position {printable(position)}")
            return
        if kind == "hello":
            self._hello(data.get("sample_rate"))
        elif kind == "played" and position is not None:
            self.speaker.progress(position)
        elif kind == "mark" and isinstance(data.get("name"), str):
            self.speaker.confirm(data["name"], position)
        elif kind == "cleared" and position is not None:
            self.speaker.answer_clear(position)
        elif kind == "text" and isinstance(data.get("text"), str):
            line = " ".join(data["text"].split())[:MAX_TYPED_CHARS]
            if line:
                self._put(line)
        else:
            self._malformed("unknown", f"a message of type {printable(kind)}")

    def _hello(self, rate: object) -> None:
        if self.page_rate is not None:
            self._malformed("second_hello", "a second hello (the first one's rate stays)")
            return
        if (
            not isinstance(rate, int)
            or isinstance(rate, bool)
            or not (PAGE_RATES[0] <= rate <= PAGE_RATES[1])
        ):
            self._malformed("invalid", f"hello: sample_rate {printable(rate)}")
            return
        self.page_rate = rate
        self.pacer = InboundPacer(rate, origin=time.monotonic(), burst_s=self._burst_s,
                                  flood_close_s=self._flood_close_s)  # fmt: skip
        self._resampler = audio.Resampler(rate, INPUT_RATE) if rate != INPUT_RATE else None

    def _frame(self, pcm: bytes) -> None:
        if self.page_rate is None or self.pacer is None:
            self._malformed("before_hello", "audio before the hello message")
            return
        limit = 2 * self.page_rate * FRAME_MS // 1000
        if not pcm or len(pcm) % 2:
            self._malformed("odd_size", f"a frame of {len(pcm)} bytes (PCM16: an even number)")
            return
        if len(pcm) > limit:
            self._malformed("too_large", f"a frame of {len(pcm)} bytes (20 ms: {limit})")
            return
        if not self.pacer.admit(len(pcm) // 2, time.monotonic()):
            if self.pacer.flooding:
                logger.warning("a page closed (%d): %s", FLOOD_CLOSE_CODE, FLOOD_REASON)
                self.refusal = (FLOOD_CLOSE_CODE, FLOOD_REASON)
                self.hang_up()
            return
        self.frames += 1
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        if pcm:
            self._put(pcm)

    def _malformed(self, reason: str, detail: str) -> None:
        self.malformed[reason] += 1
        if sum(self.malformed.values()) <= LOGGED_MALFORMED:
            logger.warning("skipped a message from the page (%s): %s", reason, detail)

    def _put(self, item: bytes | str) -> None:
        if isinstance(item, bytes):
            samples = len(item) // 2
            if self._inbox_samples + samples > self._inbox_max:
                self.inbox_dropped += samples
                return
            self._inbox_samples += samples
        self._inbox.put(item)

    def send_event(self, event: Mapping[str, Any]) -> None:
        """A JSON message for the page (the session's news: transcripts, turns)."""
        self._send(json.dumps(event, ensure_ascii=False))

    def _send(self, message: Message) -> None:
        if self.hung_up:
            return
        if len(self._outbox) >= self._outbox_max:
            logger.warning("a page closed: %s", NOT_READING_REASON)
            self.refusal = (FLOOD_CLOSE_CODE, NOT_READING_REASON)
            self.hang_up()
            if self.on_not_reading is not None:
                self.on_not_reading()
            return
        if not self._outbox.put(message):
            self.hung_up = True

    def outgoing(self) -> Mailbox[Message]:
        """Messages for the socket, in order; ends when the page is gone."""
        return self._outbox

    async def incoming(self) -> AsyncGenerator[bytes | str, None]:
        try:
            while True:
                try:
                    item = await self._inbox.get()
                except anyio.EndOfStream:
                    return
                if isinstance(item, bytes):
                    self._inbox_samples -= len(item) // 2
                yield item
        finally:
            self._inbox.close()

    def hang_up(self) -> None:
        """The page is gone: ``incoming()`` ends, and nothing more is sent."""
        self.speaker.report_unknown_marks()
        self.hung_up = True
        self._inbox.close()
        self._outbox.close()

    async def aclose(self) -> None:
        """The session is over: once the page has played what was sent, the socket ends."""
        if not self.hung_up:
            with anyio.move_on_after(self.goodbye_timeout_s):
                await self.speaker.wait_played()
        self.hang_up()


def _count(value: object) -> bool:
    """A non-negative int from JSON (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
