"""Our Lightning adapter against a server written to Smallest AI's own SDK, not by us:
tests/peers/sdk_lightning_server.py builds every frame from ``smallestai`` 5.14's generated
``TtsResponseMessage``/``TtsResponseMessageData`` (the server's UUID in ``request_id``, the
client's id in ``external_request_id``, ``complete`` terminal and the socket closed after
it). It runs in ``.venv/peers`` (``make peers``); without it these tests skip and say why
(under CI=true they fail).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import anyio
import pytest
from lightning_rig import speak
from peers.rig import peer_server, peers_python

from voiceagent.adapters.lightning import LightningTTS
from voiceagent.adapters.pulse import PulseConnectionError, PulseSTT
from voiceagent.ports import Transcript


@pytest.fixture(autouse=True)
def _peers_installed() -> None:
    peers_python()


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


async def test_the_adapter_hears_each_phrase_whole_from_an_sdk_shaped_server() -> None:
    async with peer_server("sdk_lightning_server.py", "--chunk-bytes", "1000") as server:
        async with LightningTTS(server.url, "test-key", complete_backoff_ms=100) as tts:
            first = await speak(tts, "Hello ", "there, ", "how are you?")
            second = await speak(tts, "A second ", "segment.")
            connections = tts.connections
        reports = await server.lines(2)
    assert [r["text"] for r in reports] == ["Hello there, how are you?", "A second segment."]
    for heard, report in zip((first, second), reports, strict=True):
        assert len(heard) == report["audio_bytes"] and report["chunks"] > 1
        assert hashlib.sha256(heard).hexdigest() == report["sha256"]  # whole, in order, once
        assert _is_uuid(report["request_id"]) and report["external_request_id"]
        assert report["external_request_id"] != report["request_id"]
    assert reports[0]["external_request_id"] != reports[1]["external_request_id"]
    # the close after the first complete is not a failure: the second phrase reconnects
    assert connections == 2


async def test_a_close_after_complete_is_not_retried_as_a_drop() -> None:
    # "complete — terminal frame; the server closes the WebSocket after this"
    # (tts_response_message.py): the phrase is synthesised once, not re-sent as if the
    # socket had dropped mid-segment, and nothing more is asked of the server.
    async with peer_server("sdk_lightning_server.py") as server:
        async with LightningTTS(server.url, "test-key", complete_backoff_ms=0) as tts:
            heard = await speak(tts, "Only once.")
        reports = await server.stop()
    (report,) = reports
    assert report["text"] == "Only once."
    assert hashlib.sha256(heard).hexdigest() == report["sha256"]


# -- Pulse -------------------------------------------------------------------------------

SAID = "what is the weather in paris"


async def test_the_pulse_adapter_reads_sdk_shaped_transcripts() -> None:
    # TranscriptionEvent (both transcript and transcription), finalize then close_stream
    audio = bytes(range(256)) * 125  # 1 s of (non-silent) PCM16 at 16 kHz
    async with peer_server("sdk_pulse_server.py", "--text", SAID) as server:
        async with PulseSTT(server.url).stream() as stream:
            await stream.send_audio(audio)
            await stream.finalize()
            first = await _events_until(stream, lambda e: e.is_final)
            await stream.send_audio(audio)
            await stream.close()
            rest = await _events_until(stream, lambda e: e.is_last)
        (record,) = await server.lines(1)
    partials = [e for e in first if not e.is_final]
    assert partials and all(SAID.startswith(p.text) for p in partials)
    assert first[-1] == Transcript(SAID, is_final=True, from_finalize=True)
    assert rest[-1] == Transcript(SAID, is_final=True, is_last=True)
    controls = [m for m in record["received"] if "type" in m]
    assert controls == [{"type": "finalize"}, {"type": "close_stream"}]
    assert sum(m.get("audio", 0) for m in record["received"]) >= 2 * len(audio)


async def test_the_pulse_adapter_reports_a_refused_model_without_retrying_for_ever() -> None:
    # stt_error_response.py / speech_to_text client.py: 400 {"error": …} before the upgrade
    async with peer_server("sdk_pulse_server.py") as server:
        with anyio.fail_after(30), pytest.raises(PulseConnectionError) as caught:
            async with PulseSTT(server.url, model="no-such-model").stream() as stream:
                await stream.send_audio(bytes(3200))
                await _events_until(stream, lambda e: False)
    assert "HTTP 400" in str(caught.value) and "missing or unknown model" in str(caught.value)


async def _events_until(stream: Any, done: Any) -> list[Transcript]:
    seen: list[Transcript] = []
    with anyio.fail_after(15):
        async for event in stream.events():
            if isinstance(event, Transcript):
                seen.append(event)
                if done(event):
                    break
    return seen
