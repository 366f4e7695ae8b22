"""An error frame that NAMES a request after its audio began (``faults.error_after``) fails that
segment, and only that one: the fake names it as it names every frame (``response_ids``), and
the adapter routes it as it routes chunks, by ``external_request_id``, by an echoed
``request_id``, or by the server UUID it learnt from the request's chunks."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect

from tests.lightning_rig import expected, parts, speak
from voiceagent.adapters.lightning import LightningError, LightningTTS
from voiceagent.testing.lightning import LightningServer

LONG = "A long answer that is cut off by the server partway through its audio. " * 2
CONFIG = {"voice_id": "sophia", "model": "lightning_v3.1", "language": "en", "sample_rate": 24000}


async def test_the_fake_names_the_failed_request_in_each_response_shape() -> None:
    shapes: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    for mode in ("server", "uuid-only", "echo"):
        server = LightningServer(voice="synthetic", response_ids=mode, close_after_complete=False)
        server.faults.error_after(2, message="Synthesis failed", code="synthesis_error")
        async with server, connect(server.ws_url) as ws:
            message = {**CONFIG, "text": LONG, "flush": True, "request_id": "mine"}
            await ws.send(json.dumps(message))
            frames: list[dict[str, Any]] = []
            with anyio.fail_after(10):
                while not frames or frames[-1]["status"] != "error":
                    frames.append(json.loads(await ws.recv()))
            with anyio.move_on_after(0.3):
                frames.append(json.loads(await ws.recv()))  # nothing more should come
        (record,) = server.requests
        assert (record.status, record.error, record.chunks) == ("failed", "synthesis_error", 2)
        shapes[mode] = frames[:-1], frames[-1]
        assert len(frames) == 3, f"{mode}: no audio and no complete after the error"
    chunks, error = shapes["server"]
    assert error["external_request_id"] == "mine"
    assert error["request_id"] == chunks[0]["request_id"] != "mine"  # the server's UUID
    assert error["error"] == {"message": "Synthesis failed", "code": "synthesis_error"}
    chunks, error = shapes["uuid-only"]
    assert "external_request_id" not in error
    assert error["request_id"] == chunks[0]["request_id"] != "mine"
    _, error = shapes["echo"]
    assert error["request_id"] == "mine" and "external_request_id" not in error


async def _heard_until_failed(tts: LightningTTS, text: str) -> tuple[bytes, LightningError]:
    heard = b""
    with anyio.fail_after(10), pytest.raises(LightningError) as caught:
        async for pcm in tts.synthesize(parts(text)):
            heard += pcm
    return heard, caught.value


@pytest.mark.parametrize("mode", ["server", "uuid-only", "echo"])
async def test_a_named_error_mid_speech_fails_that_segment_with_its_code(mode: str) -> None:
    server = LightningServer(voice="synthetic", response_ids=mode, close_after_complete=False)
    server.faults.error_after(3, message="Synthesis failed", code="synthesis_error")
    async with server, LightningTTS(server.ws_url) as tts:
        heard, error = await _heard_until_failed(tts, LONG)
        assert await speak(tts, "Next.") == expected("Next.")  # the socket still serves
    assert error.code == "synthesis_error" and "Synthesis failed" in str(error)
    assert 0 < len(heard) < len(expected(LONG))  # it was mid-speech
    assert expected(LONG).startswith(heard)
    assert [r.status for r in server.requests] == ["failed", "complete"]
    assert server.connections == 1  # failed, not re-sent on a new socket


@pytest.mark.parametrize("mode", ["server", "uuid-only"])
async def test_a_named_error_fails_only_its_segment_not_the_next_one_on_the_socket(
    mode: str,
) -> None:
    # No limit on either side: the second segment is sent on the same socket while the first
    # is speaking, and waits there for the audio; the first is then failed by name.
    server = LightningServer(
        voice="synthetic", response_ids=mode, close_after_complete=False, account_limit=0, pace=1.0
    )
    server.faults.error_after(8, code="synthesis_error")
    second: list[bytes] = []

    async def speak_second(tts: LightningTTS) -> None:
        second.append(await speak(tts, "Second."))

    async with server, LightningTTS(server.ws_url, max_concurrent=0) as tts:
        async with anyio.create_task_group() as tg:
            heard = b""
            with anyio.fail_after(10), pytest.raises(LightningError) as caught:
                async for pcm in tts.synthesize(parts(LONG)):
                    if not heard:
                        tg.start_soon(speak_second, tts)
                    heard += pcm
    assert caught.value.code == "synthesis_error"
    assert second == [expected("Second.")]
    first, later = server.requests
    assert (first.status, later.status) == ("failed", "complete")
    assert first.connection == later.connection
    assert first.ended_at is not None and later.started_at < first.ended_at  # both were live
