"""A fake TTS for tests: deterministic real PCM, first audio a set delay after the phrase's
flush (as Lightning), then fast.

Every sample it makes is non-zero, so an exact zero in an output means "nothing was queued".
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from voiceagent import audio

AMPLITUDE = 0.3  # of full scale: clearly audible, far from clipping


@dataclass
class TestTTSRecord:
    """One request as TestTTS served it; times are ``time.monotonic()`` seconds."""

    __test__ = False  # not a pytest test class, despite its name

    text: str = ""
    started_at: float = 0.0
    first_fragment_at: float | None = None
    flushed_at: float | None = None  # the input ended (the flush), with text to voice
    first_audio_at: float | None = None
    ended_at: float | None = None
    cancelled: bool = False


class TestTTSError(RuntimeError):
    """A request failed on purpose (``TestTTS.fail``), as a real TTS's error frame or crash."""

    __test__ = False


class TestTTS:
    """``ports.TTS`` with a tone per character: ``ms_per_char`` of audio for each one.

    A phrase is one unbroken tone, spaces and punctuation included, whose pitch changes per
    character. Like Lightning, it synthesises a phrase only at its flush (the end of its
    fragments): the first chunk comes ``first_byte_ms`` after the flush, later ones as fast
    as they are made, ``chunk_ms`` long (the last may be shorter). ``stream_fragments=True``
    voices each fragment as it arrives instead, the first chunk ``first_byte_ms`` after the
    first non-empty fragment (a fragment's last chunk may be shorter). Either way the audio
    of a phrase depends only on its text, not on how it was split into fragments. ``fail``
    arms an error for requests whose text contains given words.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        sample_rate: int = 24000,
        first_byte_ms: float = 150.0,
        ms_per_char: float = 60.0,
        chunk_ms: float = 20.0,
        *,
        stream_fragments: bool = False,
    ) -> None:
        self._sample_rate = sample_rate
        self.first_byte_ms = first_byte_ms
        self.ms_per_char = ms_per_char
        self.chunk_samples = max(1, audio.ms_to_samples(chunk_ms, sample_rate))
        self.stream_fragments = stream_fragments
        self.records: list[TestTTSRecord] = []
        self.closed = False
        self._failures: list[tuple[str, int]] = []  # (words, chunks served before the error)

    def fail(self, containing: str, *, after_chunks: int = 0) -> None:
        """Every request whose text contains ``containing`` raises ``TestTTSError`` once it
        has yielded ``after_chunks`` chunks (0: before any audio), like a TTS's error frame."""
        self._failures.append((containing, after_chunks))

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def requests(self) -> list[str]:
        """The phrase texts served, in the order the requests began."""
        return [record.text for record in self.records]

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        if self.closed:
            raise RuntimeError("TestTTS.synthesize called after aclose()")
        record = TestTTSRecord(started_at=time.monotonic())
        self.records.append(record)
        voice = _Voice(self._sample_rate, self.ms_per_char)
        served = 0
        try:
            async for fragment in fragments:
                if not fragment:
                    continue
                record.text += fragment
                if record.first_fragment_at is None:
                    record.first_fragment_at = time.monotonic()
                if self.stream_fragments:
                    for chunk in self._chunks(voice.say(fragment)):
                        await self._ready(record, served)
                        served += 1
                        yield chunk
            if record.text:
                record.flushed_at = time.monotonic()
            if record.text and not self.stream_fragments:
                for chunk in self._chunks(voice.say(record.text)):
                    await self._ready(record, served)
                    served += 1
                    yield chunk
        except BaseException:
            # Cancelled, or the consumer stopped reading (GeneratorExit): no more audio.
            record.cancelled = True
            raise
        finally:
            record.ended_at = time.monotonic()

    def _chunks(self, pcm: bytes) -> list[bytes]:
        step = 2 * self.chunk_samples
        return [pcm[start : start + step] for start in range(0, len(pcm), step)]

    async def _ready(self, record: TestTTSRecord, served: int) -> None:
        """Until the next chunk may go (``served`` chunks of this request went before)."""
        self._maybe_fail(record.text, served)
        await self._pace(record)
        if record.first_audio_at is None:
            record.first_audio_at = time.monotonic()

    def _maybe_fail(self, text: str, served: int) -> None:
        for words, after_chunks in self._failures:
            if words in text and served >= after_chunks:
                raise TestTTSError(f"TestTTS failed {text!r} on purpose after {served} chunks")

    async def _pace(self, record: TestTTSRecord) -> None:
        began = record.first_fragment_at if self.stream_fragments else record.flushed_at
        if record.first_audio_at is None and began is not None:
            due = began + self.first_byte_ms / 1000.0
            await anyio.sleep(max(0.0, due - time.monotonic()))
        else:
            # Faster than real time, yet a consumer that never awaits elsewhere cannot starve
            # the other tasks, and cancellation lands between chunks.
            await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.closed = True


class _Voice:
    """The tone of one request: phase carried across characters, so no clicks or gaps."""

    def __init__(self, sample_rate: int, ms_per_char: float) -> None:
        self.sample_rate = sample_rate
        self.samples_per_char = ms_per_char * sample_rate / 1000.0
        self.chars = 0
        self.samples = 0
        self.phase = 0.5 * math.pi  # start at the crest: the first sample is already loud

    def say(self, text: str) -> bytes:
        import numpy as np

        pieces = []
        for char in text:
            self.chars += 1
            # Cumulative rounding: the phrase lasts round(chars × ms_per_char) exactly.
            end = round(self.chars * self.samples_per_char)
            n, self.samples = end - self.samples, end
            step = 2.0 * math.pi * _pitch(char) / self.sample_rate
            phases = self.phase + step * np.arange(1, n + 1)
            if n:
                self.phase = float(phases[-1]) % (2.0 * math.pi)
            pieces.append(np.rint(AMPLITUDE * audio.FULL_SCALE * np.sin(phases)))
        if not pieces:
            return b""
        tone = np.concatenate(pieces).astype(np.int16)
        # A sine crosses zero; nudge those samples so that zero always means silence.
        tone[tone == 0] = 1
        return audio.int16_to_pcm(tone)


def _pitch(char: str) -> float:
    """A voice-like pitch per character, 160–460 Hz, the same for the same character."""
    return 160.0 + (ord(char) * 37 % 31) * 10.0
