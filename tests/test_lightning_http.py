"""The HTTP adapter: whole phrases POSTed, WAV asked for explicitly, 429 queued and retried."""

from __future__ import annotations

import anyio
import httpx2

from tests.lightning_rig import expected, parts
from voiceagent.adapters.lightning_http import LightningHTTPTTS
from voiceagent.testing.lightning import LightningServer


async def _say(tts: LightningHTTPTTS, *texts: str) -> bytes:
    with anyio.fail_after(20):
        return b"".join([pcm async for pcm in tts.synthesize(parts(*texts))])


async def test_a_phrase_is_posted_whole_and_comes_back_as_pcm_at_the_asked_rate() -> None:
    async with LightningServer(voice="synthetic") as server:
        async with LightningHTTPTTS(server.http_url, sample_rate=8000) as tts:
            pcm = await _say(tts, "Hello ", "from HTTP.")
    assert pcm == expected("Hello from HTTP.", 8000)
    (request,) = server.requests
    assert request.transport == "http" and request.text == "Hello from HTTP."
    assert request.config["output_format"] == "wav" and request.accept == "audio/wav"
    assert request.config["sample_rate"] == 8000 and request.config["voice_id"] == "sophia"


async def test_a_429_is_queued_and_retried_not_failed() -> None:
    async with LightningServer(voice="synthetic") as server:
        server.faults.error_next(2)
        async with LightningHTTPTTS(server.http_url) as tts:
            assert await _say(tts, "Patience.") == expected("Patience.")
    assert [r.status for r in server.requests] == ["refused", "refused", "complete"]


async def test_the_server_answers_429_while_the_account_is_busy() -> None:
    async with LightningServer(voice="synthetic", first_byte_ms=300) as server:
        body = {"text": "Busy.", "sample_rate": 24000, "output_format": "pcm"}
        statuses: list[int] = []
        async with httpx2.AsyncClient() as client:

            async def post() -> None:
                statuses.append((await client.post(server.http_url, json=body)).status_code)

            async with anyio.create_task_group() as tg:
                tg.start_soon(post)
                tg.start_soon(post)
    assert sorted(statuses) == [200, 429]
