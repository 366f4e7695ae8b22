"""EspeakTTS: espeak-ng as a subprocess, one phrase per run, resampled and chunked."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import anyio
import pytest

from voiceagent import audio, ports
from voiceagent.adapters.espeak import EspeakError, EspeakTTS

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (Debian package espeak-ng: apt-get install espeak-ng)",
)


async def fragments_of(*parts: str) -> AsyncIterator[str]:
    for part in parts:
        yield part


async def speak(tts: EspeakTTS, parts: Iterable[str]) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(fragments_of(*parts))]


@needs_espeak
def test_it_is_a_tts_plug() -> None:
    assert isinstance(EspeakTTS(), ports.TTS)


@needs_espeak
async def test_a_phrase_becomes_audible_speech_at_the_requested_rate() -> None:
    pcm = b"".join(await speak(EspeakTTS(sample_rate=24000), ["Hello world, this is a test."]))
    assert 500 < audio.pcm_duration_ms(pcm, 24000) < 5000
    assert audio.rms_dbfs(pcm) > -40


@needs_espeak
async def test_audio_comes_in_twenty_millisecond_chunks() -> None:
    chunks = await speak(EspeakTTS(sample_rate=24000), ["One, two, three."])
    assert len(chunks) > 10
    assert {audio.pcm_samples(chunk) for chunk in chunks[:-1]} == {480}
    assert 0 < audio.pcm_samples(chunks[-1]) <= 480


@needs_espeak
async def test_fragments_are_spoken_as_one_phrase_identically_every_run() -> None:
    tts = EspeakTTS()
    whole = b"".join(await speak(tts, ["The weather in Paris is sunny."]))
    split = b"".join(await speak(tts, ["The wea", "ther in Paris", " is sunny."]))
    assert whole == split


@needs_espeak
async def test_the_output_rate_scales_the_length_of_the_same_speech() -> None:
    at_24k = b"".join(await speak(EspeakTTS(sample_rate=24000), ["Good morning."]))
    at_8k = b"".join(await speak(EspeakTTS(sample_rate=8000), ["Good morning."]))
    assert abs(audio.pcm_samples(at_24k) - 3 * audio.pcm_samples(at_8k)) <= 3


@needs_espeak
async def test_nothing_is_spoken_until_the_phrase_is_complete() -> None:
    send, receive = anyio.create_memory_object_stream[str](10)
    received: list[bytes] = []
    tts = EspeakTTS()

    async def consume() -> None:
        async with receive:
            async for chunk in tts.synthesize(receive):
                received.append(chunk)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await send.send("Wait for ")
            await anyio.sleep(0.05)
            assert received == []
            await send.send("it.")
            await send.aclose()
    assert received


@needs_espeak
async def test_a_phrase_of_blanks_runs_nothing_and_yields_nothing() -> None:
    assert await speak(EspeakTTS(), ["", "  "]) == []


@needs_espeak
async def test_an_unknown_voice_is_an_error_quoting_espeak() -> None:
    with pytest.raises(EspeakError, match="voice does not exist"):
        await speak(EspeakTTS(voice="nosuchvoice"), ["Hello."])


def test_a_missing_program_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EspeakError, match=r"apt-get install espeak-ng"):
        EspeakTTS()


async def test_cancelling_a_phrase_kills_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in espeak-ng that never finishes, and says which process it is.
    pid_file = tmp_path / "pid"
    fake = tmp_path / "espeak-ng"
    fake.write_text(f'#!/bin/sh\necho $$ > "{pid_file}"\nexec sleep 60\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    tts = EspeakTTS()
    assert tts.executable == str(fake)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(speak, tts, ["Never finished."])
            # Polls a file another process writes: there is no event to wait on.
            while not pid_file.exists() or not pid_file.read_text().strip():  # noqa: ASYNC110
                await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    pid = int(pid_file.read_text())
    try:
        # SIGKILL was sent; give the kernel a moment to end it under load.
        with anyio.fail_after(5):
            while is_running(pid):  # noqa: ASYNC110
                await anyio.sleep(0.01)
    finally:
        if is_running(pid):  # don't leave it behind when the test fails
            os.kill(pid, signal.SIGKILL)


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a killed child may wait a moment to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
