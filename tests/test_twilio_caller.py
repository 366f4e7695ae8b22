"""The Twilio caller simulator against tiny Twilio-protocol bots written here: what it sends,
how its playback buffer echoes marks and honours clear, what it records, what it flags."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from anyio.from_thread import start_blocking_portal
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus

from voiceagent.audio import int16_to_pcm, read_wav, ulaw_decode, ulaw_encode, write_wav
from voiceagent.testing import TwilioCaller
from voiceagent.testing.twilio import PlaybackBuffer
from voiceagent.testing.twilio.cli import main as cli_main

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


async def test_speech_can_be_queued_for_a_given_time_on_the_caller_clock() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        while len(bot.events("media")) < 30:
            await receive(ws, bot)
        await ws.close()

    async with twilio_bot(script) as (url, bot):
        caller = TwilioCaller(url, speed=FAST)
        caller.say(tone(0.1), at=0.4)
        await caller.run()
    loud = [
        int(m["media"]["chunk"])
        for m in bot.events("media")
        if set(base64.b64decode(m["media"]["payload"])) != {0xFF}
    ]
    assert loud == [21, 22, 23, 24, 25]  # 0.4 s in: chunk 21 (timestamp 400), for 0.1 s


async def test_trailing_silence_ends_the_call_with_stop() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await listen_to_the_end(ws, bot)

    async with twilio_bot(script) as (url, bot):
        caller = TwilioCaller(url, audio=tone(0.1), trailing_silence_s=0.2, speed=FAST)
        await caller.run()
    assert len(bot.events("media")) == 5 + 10  # the speech, then 0.2 s of silence
    assert bot.messages[-1]["event"] == "stop" and caller.close_code == 1000


async def test_a_wav_file_is_resampled_to_8_khz_and_the_recording_is_written(
    tmp_path: Path,
) -> None:
    wav, heard = tmp_path / "say.wav", tmp_path / "heard.wav"
    t = np.arange(16000 // 5) / 16000
    write_wav(wav, int16_to_pcm((6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)), 16000)

    async with twilio_bot(echo_bot(frames_per_reply=10, replies=1)) as (url, bot):
        caller = TwilioCaller(url, audio=wav, speed=FAST, record_path=heard)
        await caller.run()
    loud = [
        m for m in bot.events("media") if set(base64.b64decode(m["media"]["payload"])) != {0xFF}
    ]
    assert len(loud) == 10  # 0.2 s at 16 kHz = ten 20 ms frames at 8 kHz
    pcm, rate = read_wav(heard)
    assert rate == 8000 and pcm == caller.heard_pcm and len(pcm) > 0


# -- the playback buffer ---------------------------------------------------------------------


async def test_marks_are_echoed_only_after_the_audio_before_them_has_played() -> None:
    async with twilio_bot(echo_bot(frames_per_reply=10, replies=3)) as (url, bot):
        caller = TwilioCaller(url, audio=tone(0.6), speed=FAST)
        await caller.run()
    assert caller.protocol_errors == []
    assert [(name, how) for name, how, _ in caller.marks] == [
        ("reply-0", "played"),
        ("reply-1", "played"),
        ("reply-2", "played"),
    ]
    assert bot.marks_back == ["reply-0", "reply-1", "reply-2"]
    started = caller.media_played_at
    assert len(started) == 3 and all(s is not None for s in started)
    echoes = [s for s in caller.sent if s.message["event"] == "mark"]
    for n, ((name, _, t), echo) in enumerate(zip(caller.marks, echoes, strict=True)):
        start = started[n]
        assert start is not None
        assert t >= start + 0.2 - 1e-3  # its 0.2 s of audio had played
        assert echo.t >= t and echo.message["mark"] == {"name": name}
        assert echo.message["streamSid"] == caller.stream_sid
        if n + 1 < len(started):  # the next reply was queued behind this one, or later
            later = started[n + 1]
            assert later is not None and later >= start + 0.2 - 1e-3


async def test_the_recording_holds_the_bots_audio_where_it_played() -> None:
    reply = tone(0.3, hz=700)

    async def script(ws: ServerConnection, bot: Bot) -> None:
        await until(ws, bot, "start")
        for _ in range(10):
            await until(ws, bot, "media")
        await ws.send(media(bot.stream_sid, ulaw_encode(reply)))
        await ws.send(mark(bot.stream_sid, "reply"))
        while not bot.marks_back:
            await receive(ws, bot)
        for _ in range(5):  # some silence after it
            await until(ws, bot, "media")
        await ws.close()

    async with twilio_bot(script) as (url, _bot):
        caller = TwilioCaller(url, speed=FAST)
        await caller.run()
    arrived = next(r.t for r in caller.received if r.message and r.message["event"] == "media")
    start = caller.media_played_at[0]
    assert start is not None and abs(start - arrived) < 1e-3  # the buffer was empty
    heard = samples(caller.heard_pcm)
    at, n = round(start * RATE), len(reply) // 2
    assert not heard[:at].any()  # silence before it
    assert heard[at : at + n].tobytes() == ulaw_decode(ulaw_encode(reply))
    assert len(heard) > at + n and not heard[at + n :].any()  # and silence after it


async def test_clear_drops_the_unplayed_audio_and_echoes_pending_marks_at_once() -> None:
    reply = tone(2.0)

    async def script(ws: ServerConnection, bot: Bot) -> None:
        await until(ws, bot, "start")
        await ws.send(media(bot.stream_sid, ulaw_encode(reply)))
        await ws.send(mark(bot.stream_sid, "first"))
        await ws.send(media(bot.stream_sid, ulaw_encode(reply)))
        await ws.send(mark(bot.stream_sid, "second"))
        for _ in range(10):
            await until(ws, bot, "media")
        await ws.send(json.dumps({"event": "clear", "streamSid": bot.stream_sid}))
        while len(bot.marks_back) < 2:
            await receive(ws, bot)
        for _ in range(5):
            await until(ws, bot, "media")
        await ws.close()

    async with twilio_bot(script) as (url, bot):
        caller = TwilioCaller(url, speed=FAST)
        await caller.run()
    assert caller.protocol_errors == []
    (cleared_at,) = caller.clears
    assert [(name, how) for name, how, _ in caller.marks] == [
        ("first", "cleared"),
        ("second", "cleared"),
    ]
    assert all(cleared_at <= t < cleared_at + 0.05 for _, _, t in caller.marks)
    assert bot.marks_back == ["first", "second"]
    assert caller.media_played_at[1] is None  # the second reply never started
    start = caller.media_played_at[0]
    assert start is not None
    heard = samples(caller.heard_pcm)
    at, stop = round(start * RATE), round(cleared_at * RATE)
    assert 0 < stop - at < len(reply) // 2  # cut off part way through
    assert heard[at:stop].tobytes() == ulaw_decode(ulaw_encode(reply))[: 2 * (stop - at)]
    assert len(heard) > stop and not heard[stop:].any()  # silence from the clear on


async def test_a_mark_with_nothing_queued_is_echoed_at_once() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await until(ws, bot, "start")
        await ws.send(mark(bot.stream_sid, "now"))
        while not bot.marks_back:
            await receive(ws, bot)
        await ws.close()

    async with twilio_bot(script) as (url, _bot):
        caller = TwilioCaller(url, speed=FAST)
        await caller.run()
    arrived = caller.received[0].t
    assert caller.marks == [("now", "played", caller.marks[0][2])]
    assert caller.marks[0][2] - arrived < 0.05


def test_the_playback_model_plays_in_order_and_reaches_marks_on_time() -> None:
    buffer = PlaybackBuffer()
    assert buffer.add_media(0.1, b"\x00" * 800) == []  # 0.1 s of audio from t 0.1
    assert buffer.add_mark(0.1, "a") == []
    assert buffer.add_media(0.15, b"\x00" * 400) == []  # queued behind: plays from 0.2
    assert buffer.add_mark(0.15, "b") == []
    assert buffer.next_mark_due() == pytest.approx(0.2)
    assert buffer.advance(0.19) == []
    assert buffer.advance(0.2) == ["a"]
    assert buffer.advance(0.3) == ["b"]
    assert buffer.media_played_at == [pytest.approx(0.1), pytest.approx(0.2)]
    assert buffer.cursor == 2400 and buffer.pending_marks == []
    buffer.add_media(0.3, b"\x00" * 8000)
    buffer.add_mark(0.3, "c")
    assert buffer.clear(0.5) == ([], ["c"])
    assert buffer.advance(0.6) == [] and buffer.cursor == 4800


# -- protocol errors and speed ---------------------------------------------------------------


async def test_each_protocol_error_of_the_bot_is_flagged_without_ending_the_call() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await until(ws, bot, "start")
        sid, audio = bot.stream_sid, ulaw_encode(tone(0.02))
        wav_header = b"RIFF\x24\x00\x00\x00WAVEfmt " + audio
        await ws.send(audio)  # binary frame
        await ws.send(media("MZwrong", audio))
        await ws.send(json.dumps({"event": "media", "media": {"payload": "AAAA"}}))
        await ws.send(media(sid, wav_header))
        await ws.send(json.dumps({"event": "play", "streamSid": sid}))
        await ws.send("{not json")
        await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": "%%"}}))
        await ws.send(json.dumps({"event": "clear", "streamSid": "MZwrong"}))
        body = {"payload": "/w==", "track": "inbound", "sampleRate": 16000}
        await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": body}))
        await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {}}))
        await ws.send(mark(sid, "still-works"))
        while not bot.marks_back:
            await receive(ws, bot)
        await ws.close()

    async with twilio_bot(script) as (url, bot):
        caller = TwilioCaller(url, speed=FAST)
        await caller.run()
    errors = caller.protocol_errors
    expected = [
        "binary frame",
        "media: wrong streamSid 'MZwrong'",
        "media: missing streamSid",
        "WAV (RIFF) file header",
        "unknown event 'play'",
        "not JSON",
        "payload is not base64",
        "clear: wrong streamSid",
        "media: track 'inbound'",
        "media: sampleRate 16000",
        "mark: missing mark.name",
    ]
    for fragment in expected:
        assert sum(fragment in error for error in errors) == 1, (fragment, errors)
    assert len(errors) == len(expected)
    assert bot.marks_back == ["still-works"] and caller.close_code == 1000


async def test_a_faster_clock_sends_more_frames_in_the_same_wall_time() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await listen_to_the_end(ws, bot)

    async with twilio_bot(script) as (url, _):
        async with TwilioCaller(url) as slow, TwilioCaller(url, speed=8.0) as fast:
            await anyio.sleep(0.4)
    count_slow, count_fast = len(slow.sent_events("media")), len(fast.sent_events("media"))
    assert count_slow > 0 and count_fast > 3 * count_slow


# -- the command line ------------------------------------------------------------------------


@contextmanager
def bot_in_thread(script: Script) -> Iterator[str]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(twilio_bot(script)) as (url, _),
    ):
        yield url


def test_the_cli_places_one_call_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav, heard = tmp_path / "say.wav", tmp_path / "heard.wav"
    write_wav(wav, tone(0.2), RATE)
    with bot_in_thread(echo_bot(frames_per_reply=10, replies=1)) as url:
        code = cli_main(
            [url, "--wav", str(wav), "--speed", "5", "--param", "a=b", "--record", str(heard)]
        )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].startswith(f"heard: {heard}")
    assert "mark 'reply-0': played" in out and "protocol errors: 0" in out
    assert read_wav(heard)[1] == 8000


# -- driving a call --------------------------------------------------------------------------


async def test_speech_said_now_starts_in_the_next_frames_for_barge_in() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await until(ws, bot, "start")
        await ws.send(media(bot.stream_sid, ulaw_encode(tone(3.0))))
        await ws.send(mark(bot.stream_sid, "long"))
        while True:  # a barge-in: the first loud frame from the caller clears the line
            payload = base64.b64decode((await until(ws, bot, "media"))["media"]["payload"])
            if set(payload) != {0xFF}:
                break
        await ws.send(json.dumps({"event": "clear", "streamSid": bot.stream_sid}))
        await listen_to_the_end(ws, bot)

    async with twilio_bot(script) as (url, bot):
        async with TwilioCaller(url, speed=FAST) as caller:
            assert await caller.wait_for(lambda: caller.media_played_at != [])
            caller.say(tone(0.2))
            said_at, sent = caller.now(), len(caller.sent_events("media"))
            assert await caller.wait_for(lambda: len(caller.sent_events("media")) > sent + 12)
    loud = [
        m for m in bot.events("media") if set(base64.b64decode(m["media"]["payload"])) != {0xFF}
    ]
    assert len(loud) == 10 and int(loud[0]["media"]["timestamp"]) >= 1000 * said_at - 20
    assert [(name, how) for name, how, _ in caller.marks] == [("long", "cleared")]


async def test_an_abrupt_hang_up_drops_the_line_without_stop() -> None:
    async def script(ws: ServerConnection, bot: Bot) -> None:
        await listen_to_the_end(ws, bot)

    async with twilio_bot(script) as (url, bot):
        async with TwilioCaller(url, speed=FAST) as caller:
            await caller.wait_for(lambda: len(caller.sent) > 5)
            await caller.hang_up(abrupt=True)
            await caller.wait()
    assert bot.events("stop") == [] and caller.close_code == 1006


async def test_a_rejected_upgrade_raises_the_handshake_error() -> None:
    async def refuse(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(403, "bad signature\n")

    async def never_called(ws: ServerConnection) -> None:
        await ws.close()

    async with serve(never_called, "127.0.0.1", 0, process_request=refuse) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(InvalidStatus):
            async with TwilioCaller(f"ws://127.0.0.1:{port}/twilio"):
                pass


def test_a_call_can_run_in_a_thread_for_synchronous_tests() -> None:
    with bot_in_thread(echo_bot(frames_per_reply=5, replies=1)) as url:
        with TwilioCaller.running_in_thread(url, audio=tone(0.1), speed=FAST) as caller:
            while not caller.ended:
                time.sleep(0.01)
    assert [(name, how) for name, how, _ in caller.marks] == [("reply-0", "played")]
