"""TestTTS, the shipped fake: real PCM, a tone per character, first audio a set delay after
the flush (or, with ``stream_fragments``, after the first fragment)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import numpy as np
import pytest

from voiceagent import audio, ports
from voiceagent.testing import TestTTS


async def fragments_of(*parts: str) -> AsyncIterator[str]:
    for part in parts:
        yield part


async def synthesize(tts: TestTTS, parts: Iterable[str]) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(fragments_of(*parts))]


def test_it_is_a_tts_plug() -> None:
    assert isinstance(TestTTS(), ports.TTS)
    assert TestTTS(sample_rate=16000).sample_rate == 16000


async def test_each_character_lasts_ms_per_char_spaces_and_punctuation_included() -> None:
    tts = TestTTS(sample_rate=24000, first_byte_ms=0, ms_per_char=60)
    pcm = b"".join(await synthesize(tts, ["Hi, you."]))
    assert audio.pcm_samples(pcm) == 8 * 1440


async def test_the_tone_has_no_silent_sample_anywhere_in_a_phrase() -> None:
    tts = TestTTS(first_byte_ms=0)
    pcm = b"".join(await synthesize(tts, ["a  b . ", " c"]))
    samples = audio.pcm_to_int16(pcm)
    assert np.all(samples != 0)
    assert audio.peak_dbfs(pcm) == pytest.approx(20 * np.log10(0.3), abs=0.1)


async def test_the_pitch_changes_from_one_character_to_the_next() -> None:
    tts = TestTTS(first_byte_ms=0, ms_per_char=100)
    samples = audio.pcm_to_int16(b"".join(await synthesize(tts, ["ab"])))
    first, second = samples[:2400], samples[2400:]

    def crossings(part: np.ndarray[Any, Any]) -> int:
        return int(np.count_nonzero(np.diff(np.sign(part))))

    assert crossings(first) != crossings(second)


@pytest.mark.parametrize("stream_fragments", [False, True])
async def test_the_audio_depends_on_the_text_only_not_on_how_it_was_split(
    stream_fragments: bool,
) -> None:
    whole = b"".join(await synthesize(TestTTS(first_byte_ms=0), ["Hello there."]))
    tts = TestTTS(first_byte_ms=0, stream_fragments=stream_fragments)
    split = b"".join(await synthesize(tts, ["Hel", "", "lo th", "ere."]))
    assert whole == split


@pytest.mark.parametrize("stream_fragments", [False, True])
async def test_audio_comes_in_chunks_of_chunk_ms(stream_fragments: bool) -> None:
    tts = TestTTS(
        sample_rate=24000,
        first_byte_ms=0,
        ms_per_char=60,
        chunk_ms=20,
        stream_fragments=stream_fragments,
    )
    chunks = await synthesize(tts, ["abc", "de"])
    assert [audio.pcm_samples(chunk) for chunk in chunks] == [480] * 15


async def test_only_the_last_chunk_of_a_phrase_may_be_shorter() -> None:
    tts = TestTTS(sample_rate=24000, first_byte_ms=0, ms_per_char=50, chunk_ms=20)
    chunks = await synthesize(tts, ["abc", "de"])  # 250 ms: 12 chunks of 20 ms and 10 ms
    assert [audio.pcm_samples(chunk) for chunk in chunks] == [480] * 12 + [240]


async def test_the_first_chunk_waits_first_byte_ms_after_the_flush() -> None:
    tts = TestTTS(first_byte_ms=50)

    async def slow_fragments() -> AsyncIterator[str]:
        yield "Hello "
        await anyio.sleep(0.05)
        yield "there."

    chunks = [chunk async for chunk in tts.synthesize(slow_fragments())]
    record = tts.records[0]
    assert chunks and record.first_fragment_at is not None
    assert record.flushed_at is not None and record.first_audio_at is not None
    assert record.flushed_at - record.first_fragment_at >= 0.049
    # (less a millisecond: the event loop may wake a timer by its clock resolution early)
    assert record.first_audio_at - record.flushed_at >= 0.049


async def test_nothing_is_voiced_before_the_flush() -> None:
    send, receive = anyio.create_memory_object_stream[str](10)
    tts = TestTTS(first_byte_ms=0, ms_per_char=20)
    received: list[bytes] = []

    async def consume() -> None:
        async for chunk in tts.synthesize(receive):
            received.append(chunk)

    with anyio.fail_after(5):
        async with receive, anyio.create_task_group() as group:
            group.start_soon(consume)
            await send.send("Hi")
            await send.send(" there")
            await anyio.sleep(0.05)
            assert received == [] and tts.requests == ["Hi there"]
            assert tts.records[0].flushed_at is None
            await send.aclose()
    assert audio.pcm_samples(b"".join(received)) == 8 * 480
    assert tts.records[0].flushed_at is not None


async def test_streaming_fragments_waits_first_byte_ms_after_the_first_fragment() -> None:
    tts = TestTTS(first_byte_ms=50, stream_fragments=True)
    await synthesize(tts, ["Hello."])
    record = tts.records[0]
    assert record.first_fragment_at is not None and record.first_audio_at is not None
    # (less a millisecond: the event loop may wake a timer by its clock resolution early)
    assert record.first_audio_at - record.first_fragment_at >= 0.049


@pytest.mark.parametrize("stream_fragments", [False, True])
async def test_after_the_first_chunk_it_never_waits(
    monkeypatch: pytest.MonkeyPatch, stream_fragments: bool
) -> None:
    events: list[str] = []
    real_sleep = anyio.sleep

    async def recording_sleep(delay: float) -> None:
        events.append("sleep")
        await real_sleep(delay)

    monkeypatch.setattr(anyio, "sleep", recording_sleep)
    tts = TestTTS(first_byte_ms=10, ms_per_char=60, stream_fragments=stream_fragments)
    async for _ in tts.synthesize(fragments_of("A long phrase, ", "many seconds of it.")):
        events.append("chunk")
    first_chunk = events.index("chunk")
    assert "sleep" in events[:first_chunk]
    assert "sleep" not in events[first_chunk:]


async def test_streaming_fragments_voices_each_before_the_next_one_arrives() -> None:
    send, receive = anyio.create_memory_object_stream[str](10)
    tts = TestTTS(first_byte_ms=0, ms_per_char=20, stream_fragments=True)
    with anyio.fail_after(5):  # a TTS that waited for the whole phrase would hang here
        async with send, receive:
            await send.send("Hi")
            audio_stream = tts.synthesize(receive)
            first = await audio_stream.__anext__()
            assert tts.requests == ["Hi"]
            await send.send(" there")
            await send.aclose()
            rest = [chunk async for chunk in audio_stream]
    assert audio.pcm_samples(first + b"".join(rest)) == 8 * 480


async def test_requests_are_recorded_in_order_with_their_full_text() -> None:
    tts = TestTTS(first_byte_ms=0)
    await synthesize(tts, ["Let me ", "check."])
    await synthesize(tts, ["It is ", "sunny."])
    assert tts.requests == ["Let me check.", "It is sunny."]
    first, second = tts.records
    assert first.ended_at is not None and first.ended_at <= second.started_at
    assert not first.cancelled and not second.cancelled


async def test_a_phrase_with_no_text_yields_no_audio() -> None:
    tts = TestTTS()
    assert await synthesize(tts, ["", ""]) == []
    assert tts.requests == [""]
    assert tts.records[0].first_audio_at is None


async def test_cancelling_while_waiting_for_first_audio_yields_nothing() -> None:
    tts = TestTTS(first_byte_ms=10_000)
    received: list[bytes] = []
    handed_over = anyio.Event()

    async def fragments() -> AsyncIterator[str]:
        handed_over.set()  # the TTS records the fragment before its next await
        yield "Never heard."

    async def consume() -> None:
        async for chunk in tts.synthesize(fragments()):
            received.append(chunk)

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await handed_over.wait()
        group.cancel_scope.cancel()
    assert received == []
    assert tts.records[0].cancelled and tts.records[0].first_audio_at is None


async def test_a_consumer_that_stops_reading_ends_the_request() -> None:
    tts = TestTTS(first_byte_ms=0)
    stream = tts.synthesize(fragments_of("A long phrase that is not heard to the end."))
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert tts.records[0].cancelled and tts.records[0].ended_at is not None


async def test_a_closed_tts_refuses_new_requests() -> None:
    tts = TestTTS()
    await tts.aclose()
    with pytest.raises(RuntimeError, match="aclose"):
        await synthesize(tts, ["Too late."])
