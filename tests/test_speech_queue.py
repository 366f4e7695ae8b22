"""The speaker queue, one behaviour each: waiting for it to drain sees segments opened while
waiting, a cut segment's TTS request is closed by its consumer, odd-length TTS chunks keep
their samples whole, and a cut segment whose audio was all handed over still ends on the
timeline. The queue is driven by hand through ``read`` (the speaker's side), so every step is
an ordering, never a timing."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import anyio
import anyio.lowlevel

from voiceagent.speech import SpeechQueue
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import SessionClock, Timeline

RATE = 16000


async def until(condition: object, steps: int = 10_000) -> None:
    """Until ``condition()`` holds, yielding to the loop between checks (a hang guard, no clock)."""
    for _ in range(steps):
        if condition():  # type: ignore[operator]
            return
        await anyio.sleep(0.001)
    raise AssertionError("condition never held")


def play_all(queue: SpeechQueue, position: int) -> int:
    """The speaker reads everything queued now; returns the position after it."""
    while pcm := queue.read(320, position):
        position += len(pcm) // 2
    return position


async def test_a_drain_waiter_wakes_and_waits_for_a_segment_opened_while_it_waited() -> None:
    queue = SpeechQueue(TestTTS(RATE, first_byte_ms=0, ms_per_char=10))
    order: list[str] = []
    async with anyio.create_task_group() as tg:
        first = queue.open(tg, round=1)
        first.send("Thanks for calling.")
        first.end()

        async def hang_up() -> None:
            await queue.drained()
            order.append("drained")

        tg.start_soon(hang_up)
        await anyio.wait_all_tasks_blocked()
        bye = queue.open(tg, round=1)  # "Bye" the splitter held, or a parallel ctx.say()
        bye.send("Bye.")
        bye.end()
        position = 0
        with anyio.fail_after(10):  # a hang guard: before the fix the waiter never woke
            while "drained" not in order:
                position = play_all(queue, position)
                if bye.finished and "bye played" not in order:
                    order.append("bye played")
                await anyio.sleep(0.001)
    assert order == ["bye played", "drained"]


class OddChunksTTS:
    """Real PCM cut into chunks of an odd number of bytes (a TTS's frames need not align)."""

    sample_rate = RATE

    def __init__(self, samples: int) -> None:
        self.pcm = b"".join(i.to_bytes(2, "little", signed=True) for i in range(1, samples + 1))

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        async for _ in fragments:
            pass
        for start in range(0, len(self.pcm), 33):
            yield self.pcm[start : start + 33]
            await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        pass


async def test_an_odd_trailing_byte_is_carried_to_the_next_chunk() -> None:
    tts = OddChunksTTS(samples=500)
    queue = SpeechQueue(tts)
    async with anyio.create_task_group() as tg:
        segment = queue.open(tg, round=1)
        segment.send("Hello there.")
        segment.end()
        await until(lambda: segment.synthesised)
    played = b"".join(iter(lambda: queue.read(320, 0), b""))
    assert played == tts.pcm  # every sample, none shifted by a byte


class WatchedTTS:
    """Endless audio; remembers which task closed its request (its consumer, or the GC's)."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.served_by: object = None
        self.closed_by: object = None

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        self.served_by = anyio.get_current_task().id
        try:
            while True:
                yield b"\x01\x00" * 160
                await anyio.sleep(0.001)
        finally:
            self.closed_by = anyio.get_current_task().id

    async def aclose(self) -> None:
        pass


async def test_a_cut_segment_s_tts_request_is_closed_by_its_consumer() -> None:
    tts = WatchedTTS()
    queue = SpeechQueue(tts)
    async with anyio.create_task_group() as tg:
        segment = queue.open(tg, round=1)
        segment.send("A long answer.")
        await until(lambda: segment.received > 0)
        queue.read(160, 0)
        queue.cancel()  # barge-in
    # closed in the segment's own task, not left to the garbage collector's finalizer task
    assert tts.closed_by is not None and tts.closed_by == tts.served_by


async def test_a_cut_segment_whose_audio_was_all_handed_over_ends_on_the_timeline() -> None:
    timeline = Timeline(SessionClock())
    turn = timeline.start_turn()
    # audio before the segment ends: a voice that speaks each fragment as it comes
    queue = SpeechQueue(TestTTS(RATE, first_byte_ms=0, ms_per_char=10, stream_fragments=True))
    async with anyio.create_task_group() as tg:
        segment = queue.open(tg, round=1, timeline=turn)
        segment.send("Hi")
        await until(lambda: segment.received == 2 * RATE // 100)  # two characters of audio
        position = play_all(queue, 0)  # all of it handed to the speaker...
        segment.end()
        await until(lambda: segment.synthesised)  # ...and then the synthesis ended
        assert segment.finished and segment in queue.pending  # not retired by a read yet
        queue.cancel()  # barge-in before the speaker's next read
    kinds = [e.kind for e in turn.events if e.kind.startswith("audio.")]
    assert kinds == ["audio.start", "audio.end"]
    (end,) = [e for e in turn.events if e.kind == "audio.end"]
    assert end.attrs["segment"] == segment.id and position > 0
