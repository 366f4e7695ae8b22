"""The speaker queue: ordered segments (one phrase = one TTS request = one segment), played
in order, and the record of exactly what was heard (DESIGN.md, "What was heard")."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from voiceagent.ports import TTS

if TYPE_CHECKING:
    from voiceagent.timeline import TurnTimeline

logger = logging.getLogger(__name__)

BYTES_PER_SAMPLE = 2  # PCM16 mono
DEFAULT_MS_PER_CHAR = 60.0  # the speaking rate assumed until the voice has shown its own


@dataclass(eq=False)
class Segment:
    """One phrase on its way to the listener: text in, PCM from the TTS, samples played."""

    id: int
    round: int
    timeline: TurnTimeline | None
    text: str = ""
    received: int = 0  # samples synthesised so far
    played: int = 0  # samples handed to the speaker
    synthesised: bool = False  # the TTS is done with it (all of it made, or stopped short)
    whole: bool = False  # the TTS made all of its audio
    samples_per_char: float = 0.0  # the voice's rate, for the length of a phrase cut short
    cancelled: bool = False
    started: bool = False  # its first sample has played
    failed: bool = False  # the TTS raised: the rest of the phrase will never be heard
    _chunks: deque[bytes] = field(default_factory=deque, repr=False)
    _done: anyio.Event = field(default_factory=anyio.Event, repr=False)
    _fragments: MemoryObjectSendStream[str] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        """Played to its end (or cancelled): nothing more of it will be heard."""
        return self.cancelled or (self.synthesised and self.played >= self.received)

    def send(self, text: str) -> None:
        """A fragment of the phrase, streamed to the TTS at once (never blocks)."""
        self.text += text
        if self._fragments is not None:
            try:
                self._fragments.send_nowait(text)
            except anyio.BrokenResourceError:  # the TTS stopped reading (it failed)
                self._fragments = None

    def end(self) -> None:
        """The phrase is complete: the TTS flushes it."""
        if self._fragments is not None:
            self._fragments.close()
            self._fragments = None

    def correct_played(self, samples: int) -> None:
        """What the listener really heard, when the output knows better than what it read
        (a phone line's marks): never more than was handed over."""
        self.played = max(0, min(samples, self.played))

    def heard_text(self) -> str:
        """The words whose audio has played, in proportion to samples played."""
        if self.played == 0:
            return ""
        if self.whole and self.played >= self.received:
            return self.text.strip()
        words = self.text.split()
        # The words are spread evenly over the phrase's audio. Audio still to come (or
        # never to come, the synthesis stopped short) covers the remaining words: then the
        # whole length is estimated from the voice's rate, never less than what was made.
        total = self.received
        if not self.whole:
            total = max(total, round(len(self.text) * self.samples_per_char))
        share = min(1.0, self.played / max(total, 1))
        return " ".join(words[: math.floor(len(words) * share + 1e-9)])

    async def wait(self) -> None:
        """Until this segment has played to its end or was cancelled."""
        await self._done.wait()


class SpeechQueue:
    """The audio the speaker pulls (a ``ports.AudioSource``), segment after segment.

    Each segment's synthesis runs in the task group its owner passes (the turn's), so
    cancelling the turn cancels its TTS requests; the speaker itself never blocks.
    """

    def __init__(self, tts: TTS) -> None:
        self.tts = tts
        self._segments: deque[Segment] = deque()
        self._next_id = 0
        self.position = 0  # the output's sample index at the end of the last block read
        # Segments whose last sample was handed over but has not played yet, with the
        # output position where it will have: they end when a later block reaches it.
        self._ending: list[tuple[Segment, int]] = []
        self._on_end: Callable[[Segment, int], None] | None = None
        self._idle = anyio.Event()
        self._idle.set()
        self._voiced = (0, 0)  # characters and samples of the phrases synthesised whole
        # set when a speaker asleep in wait_for_audio() has something to do: audio arrived,
        # or a segment's synthesis ended (it may be finished now)
        self._wake = anyio.Event()

    @property
    def sample_rate(self) -> int:
        return self.tts.sample_rate

    @property
    def samples_per_char(self) -> float:
        """The voice's speaking rate: learned from whole phrases, else the default."""
        chars, samples = self._voiced
        return samples / chars if chars else DEFAULT_MS_PER_CHAR * self.sample_rate / 1000.0

    @property
    def pending(self) -> list[Segment]:
        return list(self._segments)

    @property
    def playing(self) -> Segment | None:
        """The segment the speaker is in the middle of, if any."""
        head = self._segments[0] if self._segments else None
        return head if head is not None and head.started and not head.finished else None

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing still sounding."""
        return self._idle.is_set()

    def open(
        self, task_group: TaskGroup, *, round: int, timeline: TurnTimeline | None = None
    ) -> Segment:
        """A new segment queued behind everything already queued; its TTS starts now."""
        self._next_id += 1
        segment = Segment(self._next_id, round, timeline, samples_per_char=self.samples_per_char)
        sender, receiver = anyio.create_memory_object_stream[str](max_buffer_size=math.inf)
        segment._fragments = sender
        self._segments.append(segment)
        if self._idle.is_set():  # an unset event stays: whoever waits on it waits for this too
            self._idle = anyio.Event()
        task_group.start_soon(self._synthesise, segment, receiver, name=f"tts {segment.id}")
        return segment

    async def _synthesise(
        self, segment: Segment, fragments: MemoryObjectReceiveStream[str]
    ) -> None:
        mark(segment, "tts.request")
        carry = b""  # an odd byte of a chunk: the first half of the next chunk's first sample
        try:
            # the receive stream itself, not a generator over it: a generator cut mid-phrase
            # would be left for the garbage collector to close, in a task of no owner
            async with fragments, _closing(self.tts.synthesize(fragments)) as audio:
                async for pcm in audio:
                    if segment.cancelled:
                        break
                    if segment.received == 0 and pcm:
                        mark(segment, "tts.first_audio")
                    pcm = carry + pcm
                    usable = len(pcm) - len(pcm) % BYTES_PER_SAMPLE
                    carry = pcm[usable:]
                    if usable:
                        segment._chunks.append(pcm[:usable])
                        segment.received += usable // BYTES_PER_SAMPLE
                        self._wake.set()
                else:
                    segment.whole = not segment.cancelled
                    if segment.whole and segment.received and segment.text:
                        chars, samples = self._voiced
                        self._voiced = (chars + len(segment.text), samples + segment.received)
        except Exception as error:
            # One phrase is lost, not the call: what of it was made still plays, the rest
            # counts as unheard (it never played), and the turn goes on to its next phrase.
            segment.failed = True
            logger.warning(
                "TTS failed on segment %d (%r) after %d samples; its words are lost: %s",
                segment.id,
                segment.text.strip(),
                segment.received,
                error,
            )
        finally:
            segment.synthesised = True
            segment.end()
            self._wake.set()
            if segment.received == 0 and not segment.cancelled:
                self._drop_silent(segment)

    def _drop_silent(self, segment: Segment) -> None:
        """A segment the TTS gave no audio for (e.g. only punctuation) is simply done."""
        if segment in self._segments:
            self._segments.remove(segment)
        segment._done.set()
        self._check_idle()

    def read(self, n_samples: int, position: int) -> bytes:
        """Up to ``n_samples`` of queued audio; ``position`` is the output's sample index."""
        self.position = position + n_samples
        self._played_up_to(position)
        out = bytearray()
        while len(out) < n_samples * BYTES_PER_SAMPLE and self._segments:
            segment = self._segments[0]
            if segment.finished:
                self._retire(segment, position + len(out) // BYTES_PER_SAMPLE)
                continue
            if not segment._chunks:
                break  # underrun: the TTS has not caught up; the speaker plays silence
            if not segment.started:
                segment.started = True
                at = self._ms(position + len(out) // BYTES_PER_SAMPLE)
                mark(segment, "audio.start", at_ms=at, text=segment.text.strip())
            want = n_samples * BYTES_PER_SAMPLE - len(out)
            chunk = segment._chunks.popleft()
            if len(chunk) > want:
                segment._chunks.appendleft(chunk[want:])
                chunk = chunk[:want]
            out += chunk
            segment.played += len(chunk) // BYTES_PER_SAMPLE
        if self._segments and self._segments[0].finished:
            self._retire(self._segments[0], position + len(out) // BYTES_PER_SAMPLE)
        return bytes(out)

    async def wait_for_audio(self) -> bool:
        """Until a read would play audio or move the queue on (a segment to retire, or one
        whose last sample was handed over and has yet to be reached). A speaker whose read
        gave nothing may sleep here rather than read a silent block every block; when it
        wakes, its next read is at its real-time position (the silence slept through is
        its own to account), so positions and what was heard stay exact. True when it
        waited (False: a read now has something to do)."""
        waited = False
        while not self._has_work():
            if self._wake.is_set():
                self._wake = anyio.Event()
            await self._wake.wait()
            waited = True
        return waited

    def _has_work(self) -> bool:
        if self._ending:
            return True  # its end is reached (and the segment done) only by a later read
        head = self._segments[0] if self._segments else None
        return head is not None and (head.finished or bool(head._chunks))

    def watch_segment_ends(self, callback: Callable[[Segment, int], None] | None) -> None:
        """``callback(segment, end_position)`` as a segment's last sample is handed over, from
        inside ``read``: a phone line sends its mark there (DESIGN.md, "What was heard")."""
        self._on_end = callback

    def _retire(self, segment: Segment, end_position: int) -> None:
        self._segments.popleft()
        if segment.started and not segment.cancelled:
            at = self._ms(end_position)
            mark(segment, "audio.end", at_ms=at, text=segment.text.strip())
            if self._on_end is not None:
                self._on_end(segment, end_position)
        self._ending.append((segment, end_position))

    def _played_up_to(self, position: int) -> None:
        """Segments whose audio has now really played (the speaker reached their end)."""
        still = []
        for segment, end in self._ending:
            if end <= position:
                segment._done.set()
            else:
                still.append((segment, end))
        self._ending = still
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._segments and not self._ending:
            self._idle.set()

    def cancel(self, segments: list[Segment] | None = None) -> None:
        """Stop these segments (default: all) now; the speaker is silent from its next block.

        What already played stays heard; the rest is dropped. The cut segment's audio ends
        where the last block read ended.
        """
        position = self.position
        doomed = list(self._segments) if segments is None else segments
        for segment in doomed:
            # not retired yet (still queued): its audio.end is now, even when all of its audio
            # was handed over (a retired one had its audio.end when its last sample was)
            if segment.started and not segment.cancelled and segment in self._segments:
                mark(segment, "audio.end", at_ms=self._ms(position), text=segment.text.strip())
            segment.cancelled = True
            segment._chunks.clear()
            segment.end()
            segment._done.set()
            if segment in self._segments:
                self._segments.remove(segment)
        self._ending = [(s, end) for s, end in self._ending if s not in doomed]
        self._check_idle()

    async def drained(self) -> None:
        """Until everything queued has played (or was cancelled), including segments opened
        while waiting."""
        while not self._idle.is_set():
            await self._idle.wait()

    def _ms(self, position: int) -> float:
        return position * 1000.0 / self.sample_rate


@asynccontextmanager
async def _closing(audio: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    """The TTS request is closed by its consumer when the segment stops reading it (a cut,
    an error), not left to the garbage collector: its socket or process is released now."""
    try:
        yield audio
    finally:
        aclose = getattr(audio, "aclose", None)
        if aclose is not None:
            await aclose()


def mark(segment: Segment, kind: str, *, at_ms: float | None = None, **attrs: object) -> None:
    if segment.timeline is not None:
        segment.timeline.mark(kind, at_ms=at_ms, segment=segment.id, round=segment.round, **attrs)
