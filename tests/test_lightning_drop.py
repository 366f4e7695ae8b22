"""A socket dropped mid-segment loses no text: the segment goes again under a new id."""

from __future__ import annotations

import anyio

from tests.lightning_rig import expected, parts, speak
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer

TEXT = "The weather in Paris is sunny, with a light breeze from the west."


async def test_a_drop_mid_audio_is_resent_and_no_sample_is_lost_or_repeated() -> None:
    async with LightningServer(voice="synthetic", close_after_complete=False) as server:
        server.faults.drop_after(5)
        async with LightningTTS(server.ws_url) as tts:
            pcm = await speak(
                tts, "The weather in Paris ", "is sunny, with a light ", "breeze from the west."
            )
    assert pcm == expected(TEXT)
    first, second = server.requests
    assert (first.status, second.status) == ("dropped", "complete")
    assert first.request_id != second.request_id
    assert first.chunks == 5 and second.text == TEXT
    assert server.connections == 2


async def test_a_drop_while_fragments_still_stream_resends_the_text_so_far() -> None:
    first_audio = anyio.Event()
    async with LightningServer(voice="synthetic", close_after_complete=False) as server:
        server.faults.drop_after(2)
        async with LightningTTS(server.ws_url) as tts:
            stream = parts("Hello there. ", "How are ", "you today?", before={1: first_audio.wait})
            chunks = []
            with anyio.fail_after(20):
                async for pcm in tts.synthesize(stream):
                    chunks.append(pcm)
                    first_audio.set()
    assert b"".join(chunks) == expected("Hello there. How are you today?")
    dropped, resent = server.requests
    assert dropped.status == "dropped" and resent.status == "complete"
    assert resent.text == "Hello there. How are you today?"
    assert resent.fragments[0].startswith("Hello there. ")  # the text so far, at once


async def test_repeated_drops_without_progress_end_in_an_error() -> None:
    from voiceagent.adapters.lightning import LightningError

    async with LightningServer(voice="synthetic") as server:
        server.faults.drop_after(0, times=10)
        async with LightningTTS(server.ws_url) as tts:
            try:
                await speak(tts, "Never heard.")
            except LightningError as error:
                assert "dropped" in str(error)
            else:
                raise AssertionError("expected a LightningError")
