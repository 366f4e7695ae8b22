"""The Twilio caller simulator against tiny Twilio-protocol bots written here: what it sends,
how its playback buffer echoes marks and honours clear, what it records, what it flags."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from voiceagent.audio import int16_to_pcm, ulaw_encode
from voiceagent.testing import TwilioCaller

RATE = 8000
FAST = 5.0  # caller clock speed for most tests: orderings hold at any speed


def tone(seconds: float, hz: float = 440.0, level: float = 8000.0) -> bytes:
    t = np.arange(round(seconds * RATE)) / RATE
    return int16_to_pcm((level * np.sin(2 * np.pi * hz * t)).astype(np.int16))


def samples(pcm: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    return np.frombuffer(pcm, dtype="<i2")


@dataclass
class Bot:
    """What the bot saw: every message in order, with the media payloads decoded."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    marks_back: list[str] = field(default_factory=list)

    @property
    def stream_sid(self) -> str:
        return str(self.messages[1]["streamSid"])

    def events(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["event"] == event]


Script = Callable[[ServerConnection, Bot], Awaitable[None]]


@asynccontextmanager
async def twilio_bot(script: Script) -> AsyncIterator[tuple[str, Bot]]:
    """A websockets server running ``script`` for the one call it takes."""
    bot = Bot()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        bot.headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        await script(ws, bot)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/twilio", bot


async def receive(ws: ServerConnection, bot: Bot) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.recv())
    bot.messages.append(message)
    if message["event"] == "mark":
        bot.marks_back.append(message["mark"]["name"])
    return message


async def until(ws: ServerConnection, bot: Bot, event: str) -> dict[str, Any]:
    while (message := await receive(ws, bot))["event"] != event:
        pass
    return message


async def listen_to_the_end(ws: ServerConnection, bot: Bot) -> None:
    try:
        while True:
            await receive(ws, bot)
    except Exception:  # the caller closed
        return


def media(sid: str, ulaw: bytes) -> str:
    payload = base64.b64encode(ulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})


def mark(sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": name}})


def echo_bot(frames_per_reply: int, replies: int) -> Script:
    """Echoes the caller's audio back in batches, each followed by a mark; then closes."""

    async def script(ws: ServerConnection, bot: Bot) -> None:
        await until(ws, bot, "start")
        for n in range(replies):
            batch = b""
            for _ in range(frames_per_reply):
                batch += base64.b64decode((await until(ws, bot, "media"))["media"]["payload"])
            await ws.send(media(bot.stream_sid, batch))
            await ws.send(mark(bot.stream_sid, f"reply-{n}"))
        while len(bot.marks_back) < replies:
            await receive(ws, bot)
        await ws.close()

    return script


# -- what the caller sends -------------------------------------------------------------------


async def test_connected_start_then_160_byte_media_every_20_ms_by_sequence_and_timestamp() -> None:
    speech = tone(0.2)

    async def script(ws: ServerConnection, bot: Bot) -> None:
        while len(bot.events("media")) < 15:
            await receive(ws, bot)
        await ws.close()

    async with twilio_bot(script) as (url, bot):
        caller = TwilioCaller(url, audio=speech, custom_parameters={"lang": "en"}, speed=FAST)
        await caller.run()
    connected, start, *rest = bot.messages
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    sid = caller.stream_sid
    assert sid.startswith("MZ") and caller.call_sid.startswith("CA")
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": sid,
        "start": {
            "streamSid": sid,
            "accountSid": caller.account_sid,
            "callSid": caller.call_sid,
            "tracks": ["inbound"],
            "customParameters": {"lang": "en"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    frames = [m for m in rest if m["event"] == "media"]
    for i, frame in enumerate(frames):
        assert set(frame) == {"event", "sequenceNumber", "streamSid", "media"}
        assert frame["sequenceNumber"] == str(i + 2) and frame["streamSid"] == sid
        body = frame["media"]
        assert body["track"] == "inbound"
        assert body["chunk"] == str(i + 1) and body["timestamp"] == str(20 * i)
        assert len(base64.b64decode(body["payload"])) == 160
    said = b"".join(base64.b64decode(f["media"]["payload"]) for f in frames[:10])
    assert said == ulaw_encode(speech)  # 0.2 s of speech = the first ten frames, exactly
    assert set(base64.b64decode(frames[12]["media"]["payload"])) == {0xFF}  # then silence
    assert caller.sent_by_sequence["3"] == frames[1]


async def test_dtmf_and_stop_have_twilio_shapes_and_close_normally() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await listen_to_the_end(ws, bot)

    async with twilio_bot(script) as (url, bot):
        async with TwilioCaller(url, speed=FAST) as caller:
            await caller.send_dtmf("7")
    dtmf, stop = bot.events("dtmf")[0], bot.messages[-1]
    sid = caller.stream_sid
    assert dtmf == {
        "event": "dtmf",
        "sequenceNumber": dtmf["sequenceNumber"],
        "streamSid": sid,
        "dtmf": {"track": "inbound_track", "digit": "7"},
    }
    assert stop == {
        "event": "stop",
        "sequenceNumber": stop["sequenceNumber"],
        "streamSid": sid,
        "stop": {"accountSid": caller.account_sid, "callSid": caller.call_sid},
    }
    numbers = [int(m["sequenceNumber"]) for m in bot.messages[1:]]
    assert numbers == list(range(1, len(numbers) + 1))
    assert caller.close_code == 1000 and caller.ended


async def test_headers_reach_the_bot_and_a_closing_bot_ends_the_call() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await until(ws, bot, "start")
        await ws.close(4000, "done")

    async with twilio_bot(script) as (url, bot):
        caller = TwilioCaller(url, headers={"X-Twilio-Signature": "c2ln"}, speed=FAST)
        await caller.run()
    assert bot.headers["x-twilio-signature"] == "c2ln"
    assert caller.close_code == 4000 and caller.close_reason == "done"
