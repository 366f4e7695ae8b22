"""Shared pieces of the Pulse tests: espeak-ng speech, a table-transcribing local server over
real sockets, and helpers to stream audio and collect events (no wall-clock asserts)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import anyio
import pytest

from voiceagent import audio
from voiceagent.adapters.pulse import PulseStream
from voiceagent.ports import STTEvent, Transcript
from voiceagent.testing.pulse import PulseServer

WEATHER = "what is the weather in paris"
BOOKING = "book a table for two people tonight"

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@cache
def spoken(text: str, rate: int = 16000) -> bytes:
    """PCM16 of espeak-ng saying ``text`` at ``rate``."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
    pcm, native = audio.parse_wav(wav)
    resampler = audio.Resampler(native, rate)
    return resampler.process(pcm) + resampler.flush()


def padded(pcm: bytes, rate: int = 16000, before_ms: int = 200, after_ms: int = 600) -> bytes:
    """Speech with silence around it (``after_ms`` > the server's end-of-utterance timeout)."""
    before, after = audio.ms_to_samples(before_ms, rate), audio.ms_to_samples(after_ms, rate)
    return audio.silence(before) + pcm + audio.silence(after)


@asynccontextmanager
async def table_server(**options: Any) -> AsyncIterator[PulseServer]:
    """A Pulse fake that knows WEATHER and BOOKING, with a short end-of-utterance timeout."""
    options = {"transcribe": "table", "eou_timeout_ms": 300, **options}
    async with PulseServer(**options) as server:
        server.table.add(spoken(WEATHER), WEATHER)
        server.table.add(spoken(BOOKING), BOOKING)
        yield server


async def send_in_chunks(stream: PulseStream, data: bytes, chunk_bytes: int = 2222) -> None:
    """Audio in uneven chunks, as fast as the socket takes it (the adapter re-frames it)."""
    for start in range(0, len(data), chunk_bytes):
        await stream.send_audio(data[start : start + chunk_bytes])


async def events_until(stream: PulseStream, done: Any, limit_s: float = 15.0) -> list[STTEvent]:
    """Events until ``done(event)`` is true (a safety limit, not a timing assert)."""
    seen: list[STTEvent] = []
    with anyio.fail_after(limit_s):
        async for event in stream.events():
            seen.append(event)
            if done(event):
                break
    return seen


def is_final(event: STTEvent) -> bool:
    return isinstance(event, Transcript) and event.is_final


def finals(events: list[STTEvent]) -> list[Transcript]:
    return [e for e in events if isinstance(e, Transcript) and e.is_final]


async def wait_for(condition: Any, limit_s: float = 10.0) -> None:
    with anyio.fail_after(limit_s):
        # polls the server's recording, which offers no event to wait on
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)
