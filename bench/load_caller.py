"""A lean Twilio caller for the load benches (``phone_load.py``, ``phone_soak.py``).

It speaks Twilio Media Streams as ``voiceagent.testing.TwilioCaller`` does (``connected``,
``start``, a ``media`` frame every 20 ms, marks echoed once the audio before them has
played, every pending mark echoed at a ``clear``, ``stop``) but keeps only what the benches
measure: no recording, no per-message log, frames built from prebuilt JSON. The full
simulator costs too much to drive 200 real-time calls from the one core the benches leave
for the callers and the three fakes together.

The playback model: the bot's audio plays in arrival order from when it arrives (or when
what was queued before it ends); a frame arriving after the queue ran dry is an underrun,
late when it lands inside a segment (voiced audio on both sides of the gap).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voiceagent import audio

RATE = 8000
FRAME = 160  # samples of caller audio per inbound frame (20 ms)
FRAME_S = FRAME / RATE
UNDERRUN_TOL_S = 0.001
SILENT_ULAW = 0xFF


@dataclass
class Heard:
    """What the caller's side measured of one call."""

    voiced_at: list[float] = field(default_factory=list)  # play start of each voiced frame
    media: int = 0
    late: int = 0
    underruns: int = 0
    clears: int = 0
    marks_played: int = 0
    marks_cleared: int = 0


def ulaw_frames(pcm: bytes) -> list[str]:
    """Base64 μ-law payloads of ``pcm`` (PCM16 at 8 kHz) in 20 ms frames, the last padded."""
    ulaw = audio.ulaw_encode(pcm)
    ulaw += bytes([SILENT_ULAW]) * (-len(ulaw) % FRAME)
    frames = (ulaw[i : i + FRAME] for i in range(0, len(ulaw), FRAME))
    return [base64.b64encode(frame).decode("ascii") for frame in frames]


SILENT_FRAME = ulaw_frames(bytes(2 * FRAME))[0]


class LoadCaller:
    """One call: ``async with LoadCaller(url) as c: c.say(frames); await c.wait_for(...)``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.call_sid = "CA" + secrets.token_hex(16)
        self.heard = Heard()
        self.pending_marks: deque[tuple[float, str]] = deque()  # (plays out at, name)
        self._play_end: float | None = None  # when the queued bot audio ends playing
        self._last_voiced = False
        self._speech: deque[str] = deque()  # payloads still to say
        self._seq = 0
        self._chunk = 0
        self._t0 = 0.0
        self._ws: ClientConnection | None = None
        self._changed = anyio.Event()
        self._stack = AsyncExitStack()
        self._prefix = f'{{"event":"media","streamSid":"{self.stream_sid}"'  # the sid is hex

    def now(self) -> float:
        return time.monotonic() - self._t0

    def say(self, frames: list[str]) -> float:
        """Queue an utterance (``ulaw_frames``) after what is queued; returns when it ends."""
        start = self.now() + (len(self._speech) + 1) * FRAME_S
        self._speech.extend(frames)
        return start + len(frames) * FRAME_S

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    async def __aenter__(self) -> LoadCaller:
        async with AsyncExitStack() as stack:
            ws = await stack.enter_async_context(connect(self.url, compression=None, max_size=None))
            self._ws, self._t0 = ws, time.monotonic()
            await ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            start = {"streamSid": self.stream_sid, "accountSid": "AC" + "0" * 32,
                     "callSid": self.call_sid, "tracks": ["inbound"], "customParameters": {},
                     "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE,
                                     "channels": 1}}  # fmt: skip
            await self._send({"event": "start", "streamSid": self.stream_sid, "start": start})
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)  # runs before the group's exit: ends both
            tg.start_soon(self._talk)
            tg.start_soon(self._listen)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._send({"event": "stop", "streamSid": self.stream_sid})
        except ConnectionClosed:
            pass
        await self._stack.aclose()

    async def _send(self, message: dict[str, object]) -> None:
        assert self._ws is not None
        self._seq += 1
        message["sequenceNumber"] = str(self._seq)
        await self._ws.send(json.dumps(message))

    async def _talk(self) -> None:
        """A frame every 20 ms on absolute deadlines; marks echoed as their audio ends."""
        assert self._ws is not None
        while True:
            due = self._chunk * FRAME_S
            if (wait := due - self.now()) > 0:
                await anyio.sleep(wait)
            self._chunk += 1
            self._seq += 1
            payload = self._speech.popleft() if self._speech else SILENT_FRAME
            await self._ws.send(
                f'{self._prefix},"sequenceNumber":"{self._seq}","media":{{"track":"inbound",'
                f'"chunk":"{self._chunk}","timestamp":"{round(due * 1000)}",'
                f'"payload":"{payload}"}}}}'
            )
            await self._echo_played()

    async def _echo_played(self) -> None:
        now = self.now()
        while self.pending_marks and self.pending_marks[0][0] <= now:
            _, name = self.pending_marks.popleft()
            self.heard.marks_played += 1
            await self._send(
                {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
            )
            self._notify()

    async def _listen(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                await self._take(json.loads(raw))
                self._notify()
        except ConnectionClosed:
            pass

    async def _take(self, message: dict[str, object]) -> None:
        t = self.now()
        event = message.get("event")
        if event == "media":
            body = message["media"]
            assert isinstance(body, dict)
            ulaw = base64.b64decode(body["payload"])
            self.heard.media += 1
            voiced = ulaw.count(SILENT_ULAW) < len(ulaw)
            starts = t
            if self._play_end is not None:
                if t > self._play_end + UNDERRUN_TOL_S:
                    self.heard.underruns += 1
                    self.heard.late += 1 if (voiced and self._last_voiced) else 0
                else:
                    starts = self._play_end
            self._play_end = starts + len(ulaw) / RATE
            self._last_voiced = voiced
            if voiced:
                self.heard.voiced_at.append(starts)
        elif event == "mark":
            body = message["mark"]
            assert isinstance(body, dict)
            self._last_voiced = False
            end = max(self._play_end or t, t)
            self.pending_marks.append((end, str(body["name"])))
        elif event == "clear":
            self.heard.clears += 1
            self._play_end, self._last_voiced = t, False
            while self.pending_marks:
                _, name = self.pending_marks.popleft()
                self.heard.marks_cleared += 1
                await self._send(
                    {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
                )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


def first_audio_ms(heard: Heard, speech_ends: list[float]) -> list[float]:
    """End of each utterance → the first voiced bot audio played after it (ms)."""
    out = []
    for end in speech_ends:
        first = next((t for t in heard.voiced_at if t >= end), None)
        if first is not None:
            out.append(round((first - end) * 1000, 1))
    return out
