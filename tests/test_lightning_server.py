"""The Lightning fake speaks the protocol: accumulation, flush, complete, limits, timeouts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import anyio
import httpx2
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK

from voiceagent import audio
from voiceagent.testing.lightning import LightningServer, voices

CONFIG = {"voice_id": "sophia", "model": "lightning_v3.1", "language": "en", "sample_rate": 24000}


async def _send(ws: ClientConnection, text: str, *, flush: bool = False, **extra: Any) -> None:
    body = {**CONFIG, "text": text, "continue": not flush, "flush": flush, **extra}
    await ws.send(json.dumps(body))


async def _until_complete(ws: ClientConnection) -> list[dict[str, Any]]:
    frames = []
    with anyio.fail_after(10):
        while not frames or frames[-1]["status"] != "complete":
            frames.append(json.loads(await ws.recv()))
    return frames


async def test_fragments_accumulate_until_a_sentence_end_or_the_flush() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        await _send(ws, "Hel", request_id="r1")
        await _send(ws, "lo ", request_id="r1")
        await _send(ws, "", flush=True, request_id="r1", complete_backoff_ms=0)
        frames = await _until_complete(ws)
    assert server.requests[0].pieces == ["Hello "]  # voiced once, as a whole
    assert {f["external_request_id"] for f in frames} == {"r1"}


async def test_complete_comes_after_the_last_chunk_and_its_backoff_then_the_socket_closes() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        await _send(ws, "Hi.", request_id="r1", complete_backoff_ms=200)
        await _send(ws, "", flush=True, request_id="r1")
        frames = await _until_complete(ws)
        with anyio.fail_after(10), pytest.raises(ConnectionClosedOK):
            await ws.recv()  # closed after complete, as the docs say
    assert [f["status"] for f in frames[:-1]] == ["chunk"] * (len(frames) - 1)
    request = server.requests[0]
    assert request.ended_at is not None and request.first_chunk_at is not None
    assert request.ended_at - request.first_chunk_at >= 0.19


async def test_a_second_request_of_the_account_gets_the_limit_error_frame() -> None:
    async with LightningServer(voice="synthetic") as server:
        async with connect(server.ws_url) as one, connect(server.ws_url) as two:
            await _send(one, "Long wait.", flush=True, request_id="a", complete_backoff_ms=5000)
            await one.recv()  # active now
            await _send(two, "Me too.", flush=True, request_id="b")
            error = json.loads(await two.recv())
    assert error["status"] == "error" and error["external_request_id"] == "b"
    assert error["message"] == error["error"]["message"] == "Concurrency limit reached"
    assert server.max_active == 1


async def test_an_idle_socket_is_closed_and_keepalives_reset_the_timer() -> None:
    async with LightningServer(voice="synthetic") as server:
        async with connect(server.ws_url + "?timeout=0.3") as ws:
            for _ in range(5):
                await ws.send(" ")
                await anyio.sleep(0.1)
            with anyio.fail_after(10):
                assert json.loads(await ws.recv())["status"] == "error"
            with anyio.fail_after(10), pytest.raises(ConnectionClosedOK):
                await ws.recv()
    assert (server.keepalives, server.idle_closes) == (5, 1)


async def test_a_bad_message_gets_an_error_frame_and_the_socket_stays_open() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        await _send(ws, "Hi.", sample_rate=22050)
        error = json.loads(await ws.recv())
        await _send(ws, "Hi.", flush=True, complete_backoff_ms=0)
        frames = await _until_complete(ws)
    assert error["status"] == "error" and "sample_rate" in error["message"]
    assert frames[0]["status"] == "chunk"


async def test_a_delayed_first_byte_is_injected_once() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        server.faults.delay_first_byte(300)
        started = time.monotonic()
        await _send(ws, "Slow.", flush=True, complete_backoff_ms=0)
        await _until_complete(ws)
    assert server.requests[0].first_chunk_at is not None
    assert server.requests[0].first_chunk_at - started >= 0.29


@pytest.mark.skipif(not voices.espeak_available(), reason="espeak-ng is not installed")
async def test_the_espeak_voice_speaks_real_audio_at_the_asked_rate() -> None:
    async with LightningServer() as server, httpx2.AsyncClient() as client:
        body = {"text": "Hello world.", "sample_rate": 8000, "output_format": "wav"}
        response = await client.post(server.http_url, json=body)
    pcm, rate = audio.parse_wav(response.content)
    assert rate == 8000 and audio.pcm_duration_ms(pcm, rate) > 300
    assert audio.rms_dbfs(pcm) > -40


def test_the_command_line_prints_its_websocket_url_first() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "voiceagent.testing.lightning", "--port", "0", "--fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert first.startswith("ws://127.0.0.1:") and first.endswith("/waves/v1/tts/live")
