"""The user's side of a conversation: input audio through VAD and STT into utterances (the
end of the user's turn), and speech onsets the session may treat as barge-in."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from voiceagent import audio
from voiceagent.ports import STT, VAD, SpeechEnded, SpeechStarted, STTStream, Transcript
from voiceagent.session_events import (
    SessionEvent,
    UserSpeechEnded,
    UserSpeechStarted,
    UserTranscript,
)
from voiceagent.timeline import SessionClock

logger = logging.getLogger(__name__)

# The most audio held for an STT that is not taking it (a stalled socket, a reconnect): long
# enough to ride out a reconnect with backoff without losing a word, short enough to bound a
# call's memory (160 kB at 16 kHz) and the catch-up after it.
STT_BUFFER_S = 5.0


@dataclass(frozen=True, slots=True)
class Utterance:
    """One turn of the user's: their words and when (session clock, ms)."""

    text: str
    start_ms: float  # speech started (t=0 of the turn it starts)
    end_ms: float  # speech ended
    final_ms: float  # the final transcript arrived


class TurnTaker:
    """Reads a transport's input; sends each finished user turn as an ``Utterance``.

    Audio goes to the STT (resampled or μ-law encoded to what it takes) and to the VAD;
    without a VAD, the STT's own speech events are used. The VAD's hangover (its minimum
    silence) decides that speech ended; ``end_of_turn_ms`` more of input audio may be
    waited for on top of it (default 0); then the STT is finalized and its final ends the
    turn. Typed text ends a turn at once.

    The VAD sees each frame first and the STT is fed from its own task, so a stalled STT
    never delays a barge-in. Its backlog holds at most ``stt_buffer_s`` of audio; past that
    the oldest is dropped (counted in ``stt_dropped_ms``): once the STT is back, the words
    the user is saying now and the end of their turn matter more than stale audio.
    """

    def __init__(
        self,
        clock: SessionClock,
        input_rate: int,
        *,
        stt: STT | None,
        vad: VAD | None,
        end_of_turn_ms: float,
        publish: Callable[[SessionEvent], None],
        on_speech: Callable[[float], None],
        stt_buffer_s: float = STT_BUFFER_S,
    ) -> None:
        self.clock = clock
        self.input_rate = input_rate
        self.stt = stt
        self.vad = vad
        self.end_of_turn_ms = end_of_turn_ms
        self.publish = publish
        self.on_speech = on_speech  # the user started speaking (or typed): maybe barge-in
        self._to_stt = _Converter(input_rate, stt) if stt is not None else None
        self._to_vad = (
            audio.Resampler(input_rate, vad.sample_rate)
            if vad is not None and vad.sample_rate != input_rate
            else None
        )
        self._t0: float | None = None  # session ms of the first input sample
        self._fed_ms = 0.0  # input audio received so far
        self._speaking = False
        self._start_ms: float | None = None
        self._end_ms: float | None = None
        self._finalize_at: float | None = None  # input ms at which to finalize
        self._finals: list[str] = []
        self.stt_buffer_s = stt_buffer_s
        self._feed: _STTFeed | None = None

    @property
    def stt_dropped_ms(self) -> float:
        """Audio the STT never got: dropped from a full backlog while it was stalled."""
        return self._feed.dropped_ms if self._feed is not None else 0.0

    @property
    def busy(self) -> bool:
        """The user is speaking, or their turn is ending (the final not in yet)."""
        return self._speaking or self._start_ms is not None

    async def run(
        self, incoming: AsyncIterator[bytes | str], out: MemoryObjectSendStream[Utterance]
    ) -> None:
        async with AsyncExitStack() as stack:
            stream = await stack.enter_async_context(self.stt.stream()) if self.stt else None
            async with anyio.create_task_group() as tg:
                if stream is not None:
                    self._feed = _STTFeed(stream, self.stt_buffer_s * 1000.0)
                    tg.start_soon(self._feed.run)
                    tg.start_soon(self._read_stt, stream, out)
                async for item in incoming:
                    if isinstance(item, str):
                        self._typed(item, out)
                    else:
                        await self._heard(item)
                # hang-up: the backlog and what the STT still holds are flushed, then the
                # reader ends
                if stream is not None and self._feed is not None:
                    with anyio.move_on_after(5):
                        await self._feed.drained()
                        await stream.close()
                tg.cancel_scope.cancel()

    def _typed(self, text: str, out: MemoryObjectSendStream[Utterance]) -> None:
        text = text.strip()
        if not text:
            return
        now = self.clock.now_ms()
        self.on_speech(now)
        self.publish(UserTranscript(text, True, now))
        out.send_nowait(Utterance(text, now, now, now))

    async def _heard(self, pcm: bytes) -> None:
        duration = audio.samples_to_ms(audio.pcm_samples(pcm), self.input_rate)
        if self._t0 is None:
            self._t0 = self.clock.now_ms() - duration  # the frame's first sample
        self._fed_ms += duration
        if self.vad is not None:  # first: a barge-in never waits for the STT
            vad_pcm = self._to_vad.process(pcm) if self._to_vad is not None else pcm
            for event in self.vad.process(vad_pcm):
                self._speech_event(event)
        due = False
        if self._feed is not None and self._to_stt is not None:
            due = self._feed.audio(self._to_stt.convert(pcm), duration)
        self._maybe_finalize()
        if due:  # the feed sends now (the STT gets the audio as it comes, not after more)
            await anyio.lowlevel.checkpoint()

    def _maybe_finalize(self) -> None:
        """Finalize the STT once the end of turn is due (checked on audio and on STT events):
        queued behind the audio before it."""
        if self._finalize_at is not None and self._fed_ms >= self._finalize_at:
            self._finalize_at = None
            if self._feed is not None:
                self._feed.finalize()

    def _speech_event(self, event: SpeechStarted | SpeechEnded) -> None:
        at = (self._t0 or 0.0) + event.at_ms
        if isinstance(event, SpeechStarted):
            self._speaking = True
            self._finalize_at = None  # the same turn goes on
            if self._start_ms is None:
                self._start_ms = at
            self.publish(UserSpeechStarted(at))
            self.on_speech(at)
        else:
            self._speaking = False
            self._end_ms = at
            # counted from when the VAD said so (its hangover has passed), not from the end
            # it dates, which lies a hangover earlier
            self._finalize_at = self._fed_ms + self.end_of_turn_ms
            self.publish(UserSpeechEnded(at))

    async def _read_stt(self, stream: STTStream, out: MemoryObjectSendStream[Utterance]) -> None:
        async for event in stream.events():
            if isinstance(event, (SpeechStarted, SpeechEnded)):
                if self.vad is None:  # the STT's own VAD stands in for ours
                    self._speech_event(event)
                    self._maybe_finalize()  # now, not at the next input frame
                continue
            assert isinstance(event, Transcript)
            now = self.clock.now_ms()
            self.publish(UserTranscript(event.text, event.is_final, now))
            if event.is_final and event.text.strip():
                self._finals.append(event.text.strip())
            if event.is_final and (event.from_finalize or event.is_last):
                self._deliver(now, out)

    def _deliver(self, now: float, out: MemoryObjectSendStream[Utterance]) -> None:
        text = " ".join(self._finals)
        self._finals = []
        start = self._start_ms if self._start_ms is not None else now
        end = self._end_ms if self._end_ms is not None else now
        self._start_ms = self._end_ms = None
        if text:
            out.send_nowait(Utterance(text, start, end, now))
        else:
            logger.info("a user turn with no words (noise?) was ignored")


class _STTFeed:
    """The STT's input, sent by its own task in order: audio, and a finalize behind the audio
    before it. Holds at most ``max_ms`` of audio; past that the oldest is dropped, counted.

    An STT stream that sends audio in whole frames of ``frame_bytes`` (Pulse: 100 ms), holding
    the rest until more comes or a finalize, says so with that attribute: the task is then
    woken when the audio queued completes one of the stream's frames (or at a finalize), not
    for every piece of input, so each frame leaves exactly when it did before. Waking it per
    40 ms piece cost a task switch and two events per piece per call (bench/phone_load.py).
    """

    def __init__(self, stream: STTStream, max_ms: float) -> None:
        self.stream = stream
        self.max_ms = max_ms
        self.dropped_ms = 0.0
        self._queue: deque[tuple[bytes, float] | None] = deque()  # None: finalize
        self._queued_ms = 0.0
        self._frame_bytes = max(0, int(getattr(stream, "frame_bytes", 0) or 0))
        self._queued_bytes = 0  # audio in the queue
        self._partial = 0  # audio the stream holds short of a frame (as it frames it)
        self._wake: anyio.Event | None = None  # set while the task waits for more
        self._sending = False  # the task holds an item it has not finished sending
        self._flushed: anyio.Event | None = None  # for ``drained``: set when nothing is left

    def audio(self, pcm: bytes, ms: float) -> bool:
        """Queue ``pcm``; True if the sending task has something to send now (woken, or
        still busy with what came before): the caller lets it run."""
        self._queue.append((pcm, ms))
        self._queued_ms += ms
        self._queued_bytes += len(pcm)
        while self._queued_ms > self.max_ms:
            oldest = next(i for i, item in enumerate(self._queue) if item is not None)
            dropped = self._queue[oldest]
            del self._queue[oldest]
            assert dropped is not None
            if not self.dropped_ms:
                logger.warning(
                    "the STT is not taking audio: more than %.1f s is queued, the oldest is "
                    "dropped",
                    self.max_ms / 1000,
                )
            self._queued_ms -= dropped[1]
            self._queued_bytes -= len(dropped[0])
            self.dropped_ms += dropped[1]
        if self._partial + self._queued_bytes < self._frame_bytes:
            return False  # no frame of the stream's is complete yet: it would only hold it
        self._wake_task()
        return True

    def finalize(self) -> None:
        self._queue.append(None)
        self._wake_task()

    def _wake_task(self) -> None:
        if self._wake is not None:  # else the task is sending: it takes the rest when done
            self._wake.set()
            self._wake = None

    async def run(self) -> None:
        while True:
            if not self._queue:
                if self._flushed is not None:
                    self._flushed.set()
                self._wake = wake = anyio.Event()
                await wake.wait()
                continue
            item = self._queue.popleft()
            self._sending = True
            try:
                if item is None:
                    await self.stream.finalize()
                    self._partial = 0  # what it held went with the finalize
                else:
                    pcm = self._take_audio(item)
                    await self.stream.send_audio(pcm)
                    if self._frame_bytes:
                        self._partial = (self._partial + len(pcm)) % self._frame_bytes
            finally:
                self._sending = False

    def _take_audio(self, first: tuple[bytes, float]) -> bytes:
        """``first`` and, for a stream that frames, the audio queued right behind it: one
        send for what a wake-up found (the pieces of a frame), not one per piece."""
        pieces, ms = [first[0]], first[1]
        if self._frame_bytes:
            while self._queue and (behind := self._queue[0]) is not None:
                self._queue.popleft()
                pieces.append(behind[0])
                ms += behind[1]
        self._queued_ms -= ms
        pcm = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._queued_bytes -= len(pcm)
        return pcm

    async def drained(self) -> None:
        """Until everything queued has been sent (or dropped)."""
        self._wake_task()  # audio short of a frame goes now: nothing more is coming
        while self._queue or self._sending:
            self._flushed = flushed = anyio.Event()
            await flushed.wait()


class _Converter:
    """PCM16 at the input's rate → what the STT takes (its rate; μ-law when it asks)."""

    def __init__(self, input_rate: int, stt: STT) -> None:
        self.encoding = stt.encoding
        rate = stt.sample_rate
        self.resampler = audio.Resampler(input_rate, rate) if rate != input_rate else None

    def convert(self, pcm: bytes) -> bytes:
        if self.resampler is not None:
            pcm = self.resampler.process(pcm)
        if self.encoding == "mulaw":
            return audio.ulaw_encode(pcm)
        if self.encoding == "alaw":
            return audio.alaw_encode(pcm)
        return pcm
