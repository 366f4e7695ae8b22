"""The Pulse fake answers as Smallest's SDK and the LiveKit and pipecat plugins expect
(each test names the line of theirs it rests on)."""

from __future__ import annotations

import json

import anyio
import pytest
from pulse_rig import table_server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voiceagent.testing.pulse import parse_query

QUERY = "model=pulse&language=en&sample_rate=16000&encoding=linear16"


async def _messages(url: str, query: str, sends: list[str | bytes]) -> list[dict[str, object]]:
    """Send each item, then read every message until the server closes (a safety limit, not
    a timing assert)."""
    got: list[dict[str, object]] = []
    with anyio.fail_after(10):
        await _collect(f"{url}?{query}", sends, got)
    return got


async def _collect(url: str, sends: list[str | bytes], got: list[dict[str, object]]) -> None:
    async with connect(url) as ws:
        for item in sends:
            await ws.send(item)
        try:
            async for message in ws:
                got.append(json.loads(message))
        except ConnectionClosed:
            pass


async def test_keepalive_is_answered_with_pong_and_the_stream_goes_on() -> None:
    # LiveKit sends {"type":"keepalive"} every 5 s and skips {"type":"pong"} (stt.py:442,
    # 504-514, 617); an error frame there made it reconnect.
    keepalive, close = json.dumps({"type": "keepalive"}), json.dumps({"type": "close_stream"})
    async with table_server() as server:
        got = await _messages(server.url, QUERY, [keepalive, bytes(640), keepalive, close])
    kinds = [m.get("type") for m in got]
    assert kinds == ["pong", "pong", "transcription"]
    assert got[-1]["is_last"] is True
    assert server.connections[0].close_code == 1000
    assert [c["type"] for c in server.connections[0].control] == [
        "keepalive",
        "keepalive",
        "close_stream",
    ]


@pytest.mark.parametrize(
    "query", ["language=en&sample_rate=16000", "model=whisper", "model=pulse-pro", "model="]
)
async def test_a_missing_or_unknown_model_is_refused_with_400_before_the_upgrade(
    query: str,
) -> None:
    # SDK speech_to_text/client.py:340 "Missing or invalid values return 400 before the
    # WebSocket upgrades" (and 261 for pulse-pro); the body is an SttErrorResponse
    # {"error": …} (types/stt_error_response.py:10-13)
    async with table_server() as server:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(f"{server.url}?{query}"):
                pass
    response = caught.value.response
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = json.loads(response.body)
    assert isinstance(body["error"], str) and "model" in body["error"]
    assert server.connections == []  # refused before the upgrade: no stream was opened


async def test_pulse_2_is_served_beside_pulse() -> None:
    # pipecat services/smallest/stt.py:92-96 (SmallestSTTModel.PULSE_2 = "pulse-2")
    close = json.dumps({"type": "close_stream"})
    async with table_server() as server:
        got = await _messages(server.url, QUERY.replace("pulse", "pulse-2"), [bytes(640), close])
    assert got[-1]["type"] == "transcription" and got[-1]["is_last"] is True
    assert server.connections[0].query["model"] == "pulse-2"


async def test_pulse_2_is_english_only_and_refuses_other_languages_by_closing() -> None:
    # pipecat services/smallest/stt.py:99-112: "The server rejects this combination by
    # closing the socket"
    async with table_server() as server:
        got = await _messages(server.url, "model=pulse-2&language=hi", [])
    assert [m["type"] for m in got] == ["error"]
    assert "pulse-2" in str(got[0]["message"])
    assert server.connections[0].close_code == 1003


async def test_transcripts_carry_transcription_too_and_errors_carry_status() -> None:
    # SDK types/transcription_event.py:16-20 (the DTO emits `transcript` and `transcription`),
    # LiveKit stt.py:768-769; SDK types/transcription_error_event.py:12-14 (type, status,
    # message), LiveKit stt.py:602-612 reads `status`.
    close = json.dumps({"type": "close_stream"})
    async with table_server() as server:
        got = await _messages(server.url, QUERY, [bytes(640), close])
        errors = await _messages(server.url, QUERY, ["not json", close])
    final = got[-1]
    assert final["transcription"] == final["transcript"]
    error = errors[0]
    assert error["type"] == "error" and error["status"] == "error" and error["message"]


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
async def test_every_listed_sample_rate_is_served(rate: int) -> None:
    close = json.dumps({"type": "close_stream"})
    async with table_server() as server:
        got = await _messages(server.url, f"model=pulse&sample_rate={rate}", [bytes(640), close])
    assert got[-1]["is_last"] is True


@pytest.mark.parametrize("rate", [11025, 12000, 32000])
async def test_a_rate_not_listed_is_refused(rate: int) -> None:
    # LiveKit stt.py:176-177: "Supported: 8000, 16000, 22050, 24000, 44100, 48000"
    async with table_server() as server:
        got = await _messages(server.url, f"model=pulse&sample_rate={rate}", [])
    assert [m["type"] for m in got] == ["error"]
    assert "22050" in str(got[0]["message"])
    assert server.connections[0].close_code == 1003


LIVEKIT_QUERY = (  # LiveKit's defaults, as its _stream_params builds them (stt.py:664-694)
    "model=pulse&language=en&encoding=linear16&sample_rate=16000&word_timestamps=true"
    "&diarize=false&format=true&itn_normalize=false&sentence_timestamps=false&redact_pii=false"
    "&redact_pci=false&endpointing=true&vad_events=true&endpointing_timeout=300"
)
PIPECAT_QUERY = (  # pipecat's defaults (services/smallest/stt.py:364-382)
    "model=pulse&language=en&encoding=linear16&sample_rate=16000&word_timestamps=false"
    "&full_transcript=false&sentence_timestamps=false&redact_pii=false&redact_pci=false"
    "&numerals=auto&diarize=false&endpointing=true&format=true&emotion_detection=true"
    "&gender_detection=true&itn_normalize=false&no_format_delay=false"
)


def test_the_plugins_queries_are_served_and_livekits_vad_window_is_honoured() -> None:
    livekit = parse_query(f"/waves/v1/stt/live?{LIVEKIT_QUERY}")
    pipecat = parse_query(f"/waves/v1/stt/live?{PIPECAT_QUERY}")
    assert livekit.endpointing_timeout_ms == 300 and livekit.vad_events
    assert pipecat.endpointing_timeout_ms is None and pipecat.eou_timeout_ms == 800
