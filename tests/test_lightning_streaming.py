"""The Lightning adapter streams a phrase's fragments in and its audio out."""

from __future__ import annotations

import anyio

from tests.lightning_rig import expected, parts, speak
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer


async def test_fragments_go_out_with_continue_and_the_phrase_ends_with_flush() -> None:
    async with LightningServer(voice="synthetic") as server, LightningTTS(server.ws_url) as tts:
        await speak(tts, "Let me ", "check ", "that.")
    (request,) = server.requests
    sent = [(m["text"], m["continue"], m["flush"]) for m in request.messages]
    assert sent == [
        ("Let me ", True, False),
        ("check ", True, False),
        ("that.", True, False),
        ("", False, True),
    ]


async def test_audio_arrives_before_the_flush_when_a_sentence_is_complete() -> None:
    first_audio = anyio.Event()
    async with LightningServer(voice="synthetic") as server, LightningTTS(server.ws_url) as tts:
        # The rest of the phrase is held back until audio of its first sentence has come.
        stream = parts("Hello there. ", "How are you?", before={1: first_audio.wait})
        with anyio.fail_after(10):
            async for _ in tts.synthesize(stream):
                first_audio.set()
    assert server.requests[0].pieces == ["Hello there. ", "How are you?"]


async def test_chunks_decode_to_the_exact_samples_of_the_phrase() -> None:
    async with LightningServer(voice="synthetic") as server, LightningTTS(server.ws_url) as tts:
        pcm = await speak(tts, "One, ", "two, ", "three.")
    assert pcm == expected("One, two, three.")
    assert server.requests[0].chunks > 1


async def test_phone_rate_and_pro_model_defaults_go_on_the_wire() -> None:
    async with LightningServer(voice="synthetic") as server:
        async with LightningTTS(server.ws_url, model="lightning_v3.1_pro", sample_rate=8000) as tts:
            pcm = await speak(tts, "Hi.")
    config = server.requests[0].config
    assert (config["voice_id"], config["model"], config["sample_rate"]) == (
        "meher",
        "lightning_v3.1_pro",
        8000,
    )
    assert config["complete_backoff_ms"] == 100
    assert pcm == expected("Hi.", 8000)


async def test_a_phrase_of_only_spaces_sends_nothing() -> None:
    async with LightningServer(voice="synthetic") as server, LightningTTS(server.ws_url) as tts:
        assert await speak(tts, " ", "  ") == b""
    assert server.requests == [] and server.connections == 0
