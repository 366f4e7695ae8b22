"""Regressions the barge-in fuzz found: what a phrase cut short counts as heard, and a tool
call cancelled in the instant it takes its slot."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import anyio
import anyio.lowlevel

from voiceagent.speech import DEFAULT_MS_PER_CHAR, SpeechQueue
from voiceagent.toolkit import ToolCall, ToolCallState, ToolExecutor, ToolRegistry, tool

RATE = 16000
PHRASE = "Let me check that for you."


class SlowTTS:
    """One 20 ms chunk at the default speaking rate per step, then waits for the next pull."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.first_chunk = anyio.Event()

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        text = "".join([f async for f in fragments])
        samples = round(len(text) * DEFAULT_MS_PER_CHAR * RATE / 1000)
        for _ in range(0, samples, 320):
            self.first_chunk.set()
            yield b"\x01\x00" * 320
            await anyio.sleep(0.01)

    async def aclose(self) -> None:
        pass


async def test_a_phrase_cut_before_its_synthesis_ended_counts_only_the_words_played() -> None:
    tts = SlowTTS()
    queue = SpeechQueue(tts)
    async with anyio.create_task_group() as tg:
        segment = queue.open(tg, round=1)
        segment.send(PHRASE)
        segment.end()
        await tts.first_chunk.wait()
        queue.read(320, 0)  # the speaker plays all the audio made so far: one chunk
        queue.cancel()  # barge-in while the TTS is still at the start of the phrase
    assert segment.played == segment.received == 320
    # 320 samples of the phrase's 26 × 960: not one of its six words has been heard
    # (before the fix, audio all played + synthesis stopped counted as the whole phrase).
    assert segment.heard_text() == ""


async def test_a_phrase_synthesised_whole_and_played_to_its_end_is_heard_verbatim() -> None:
    queue = SpeechQueue(SlowTTS())
    async with anyio.create_task_group() as tg:
        segment = queue.open(tg, round=1)
        segment.send(PHRASE)
        segment.end()
        position = 0
        while not segment.finished:
            position += len(queue.read(320, position)) // 2 or 0
            await anyio.sleep(0.001)
    assert segment.whole and segment.heard_text() == PHRASE


async def test_a_call_cancelled_while_it_takes_its_slot_never_runs() -> None:
    ran: list[str] = []

    @tool  # side-effecting: once started it is shielded, so it must not start at all
    async def book_table() -> str:
        """Book a table."""
        ran.append("book_table")
        return "booked"

    registry = ToolRegistry([book_table])
    executor = ToolExecutor(registry)
    call = ToolCall("call_1", "book_table", "{}")
    async with anyio.create_task_group() as tg:
        tg.start_soon(executor.run, call)
        await anyio.lowlevel.checkpoint()  # the call's task takes its slot, yields (shielded)
        tg.cancel_scope.cancel()  # the barge-in lands in that instant
    assert ran == []
    assert call.state is ToolCallState.CANCELLED and call.started_at is None
    assert executor.in_flight == 0
