"""What must not end (or fail to end) a call: ``end_call`` hangs up after the goodbye has played,
even when the goodbye is queued after the hang-up began; a TTS error costs only the words it
could not speak; the transcript is written off the event loop. Orderings and counts only.

The caller types into a ConsoleTransport and reads the session's events; the agent asks a
local ElectronServer and speaks through a real TTS (TestTTS, or the Lightning fake).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream

from voiceagent.adapters.console import ConsoleTransport
from voiceagent.adapters.virtual_speaker import NullSpeaker, VirtualSpeaker
from voiceagent.agent import Agent
from voiceagent.history import validate_messages
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.ports import TTS, AudioSink
from voiceagent.session import Session
from voiceagent.session_events import AgentSpeechEnded, SessionEvent, ToolFinished, TurnEnded
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS
from voiceagent.toolkit import ToolContext, tool

RATE = 16000

Lines = MemoryObjectSendStream[str]
Caller = Callable[[Session, Lines, AsyncIterator[SessionEvent]], Awaitable[None]]


@dataclass
class Call:
    session: Session
    events: list[SessionEvent]

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.session.history.messages()


async def call(
    caller: Caller,
    script: Sequence[dict[str, Any]],
    *,
    tts: TTS,
    speaker: AudioSink | None = None,
    tools: Sequence[Any] = (),
    token_ms: float = 0.0,
    **options: Any,
) -> Call:
    """A session until it ends, while ``caller`` types lines and watches its events."""
    async with ElectronServer(script=list(script), token_ms=token_ms) as server:
        send, lines = anyio.create_memory_object_stream[str](math.inf)
        session = Session(
            Agent(instructions="You answer for Luigi's.", tools=tools),
            ConsoleTransport(speaker or VirtualSpeaker(tts.sample_rate), lines=lines),
            tts=tts,
            llm=ElectronClient(server.base_url, retry=RetryPolicy(scale=0.001)),
            **({"idle_timeout_s": None, "reprompt": None} | options),
        )
        seen: list[SessionEvent] = []
        recorded, watched = session.events(), session.events()

        async def record() -> None:
            async for event in recorded:
                seen.append(event)

        with anyio.fail_after(60):  # a hang guard only: a healthy call takes a second or two
            async with send, anyio.create_task_group() as tg:
                tg.start_soon(record)
                tg.start_soon(caller, session, send, watched)
                await session.run()
    return Call(session, seen)


def says(*lines: str) -> Caller:
    """A caller who types each line after the previous turn ended, then hangs up."""

    async def caller(session: Session, send: Lines, events: AsyncIterator[SessionEvent]) -> None:
        for line in lines:
            send.send_nowait(line)
            async for event in events:
                if isinstance(event, TurnEnded):
                    break
        send.close()

    return caller


async def never_hangs_up(
    session: Session, send: Lines, events: AsyncIterator[SessionEvent]
) -> None:
    send.send_nowait("That's all, bye.")
    async for _ in events:
        pass


@tool
async def end_call(ctx: ToolContext) -> str:
    """Hang up."""
    await ctx.end_call()
    return "ended"


# -- end_call --------------------------------------------------------------------------------


async def test_end_call_waits_for_a_goodbye_the_splitter_still_holds() -> None:
    # "Bye" may be the start of a longer word: the splitter holds it until the stream ends,
    # after end_call began (and after the first sentence played: the queue looked idle)
    script = [
        {"text": "Thanks for calling. Bye", "tool_calls": [{"name": "end_call", "arguments": {}}]}
    ]
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=20)
    done = await call(never_hangs_up, script, tts=tts, tools=[end_call], token_ms=30)
    assert done.session.ended == "hang_up"
    assert [e.text for e in done.of(AgentSpeechEnded)] == ["Thanks for calling.", "Bye"]
    (finished,) = done.of(ToolFinished)
    assert finished.state == "done"  # hung up by the tool, not after its timeout
    assert done.events.index(done.of(AgentSpeechEnded)[-1]) < done.events.index(finished)


async def test_end_call_waits_for_a_segment_queued_while_the_queue_still_played() -> None:
    # paced in real time: the first clause still plays when the hang-up starts waiting, and
    # "goodbye" is queued while it waits
    script = [
        {
            "text": "Thanks so much for calling Luigi's today, goodbye",
            "tool_calls": [{"name": "end_call", "arguments": {}}],
        }
    ]
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=20)
    speaker = NullSpeaker(RATE)
    done = await call(
        never_hangs_up, script, tts=tts, speaker=speaker, tools=[end_call], token_ms=30
    )
    assert done.session.ended == "hang_up"
    assert [e.text for e in done.of(AgentSpeechEnded)][-1] == "goodbye"
    (finished,) = done.of(ToolFinished)
    assert finished.state == "done"


# -- a TTS error -----------------------------------------------------------------------------

MENU = [{"text": "Let me check the menu. We have pizza tonight."}, {"text": "You're welcome."}]


async def test_a_phrase_the_tts_fails_is_skipped_and_the_call_goes_on() -> None:
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=20)
    tts.fail("Let")  # an error before any of its audio
    done = await call(says("What's on tonight?", "Thanks."), MENU, tts=tts)
    assert done.session.ended == "hang_up"  # the caller hung up: the error did not end it
    first, second = [e.result for e in done.of(TurnEnded)]
    assert first.reason == "completed" and first.heard == "We have pizza tonight."
    assert second.heard == "You're welcome."
    assert [e.text for e in done.of(AgentSpeechEnded)] == [
        "We have pizza tonight.",
        "You're welcome.",
    ]
    validate_messages(done.history)
    assistant = [m["content"] for m in done.history if m["role"] == "assistant"]
    assert assistant == ["We have pizza tonight.", "You're welcome."]  # only what was heard


async def test_a_phrase_failing_halfway_counts_only_the_words_that_played(tmp_path: Path) -> None:
    # The voice speaks at the rate the engine assumes before it has learned one (60 ms a
    # character), so the share of the phrase that played is the share of its words heard.
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=60, chunk_ms=20)
    tts.fail("check the menu", after_chunks=33)  # 660 ms of its 1,320 ms, made at its flush
    transcript = tmp_path / "call.jsonl"
    done = await call(says("What's on tonight?"), MENU, tts=tts, transcript=transcript)
    (turn,) = [e.result for e in done.of(TurnEnded)]
    heard_first = turn.heard.removesuffix("We have pizza tonight.").split()
    assert 0 < len(heard_first) < len("Let me check the menu.".split())
    assert turn.heard.endswith("We have pizza tonight.")  # the next phrase still played
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    unheard = [line["text"] for line in lines if line["who"] == "agent" and not line["heard"]]
    assert unheard and "menu" in unheard[0]


async def test_a_lightning_error_frame_costs_one_phrase_not_the_call() -> None:
    from voiceagent.adapters.lightning import LightningTTS
    from voiceagent.testing.lightning import LightningServer

    async with LightningServer(voice="synthetic") as server:
        server.faults.error_next(message="Voice not found", code="invalid_voice")
        async with LightningTTS(server.ws_url) as tts:
            done = await call(says("What's on tonight?", "Thanks."), MENU, tts=tts)
    assert done.session.ended == "hang_up"
    first, second = [e.result for e in done.of(TurnEnded)]
    assert first.heard == "We have pizza tonight." and second.heard == "You're welcome."
    validate_messages(done.history)


# -- the transcript --------------------------------------------------------------------------


async def test_the_transcript_is_written_off_the_event_loop_in_order(tmp_path: Path) -> None:
    # a FIFO nobody reads yet: opening it blocks until a reader comes; written on the loop,
    # the whole session would freeze there
    transcript = tmp_path / "call.jsonl"
    os.mkfifo(transcript)
    turn_ended = threading.Event()
    read: list[str] = []

    def reader() -> bool:
        progressed = turn_ended.wait(timeout=20)  # the loop went on while nobody read
        with transcript.open(encoding="utf-8") as fifo:
            read.extend(fifo)  # to EOF: the session closed it
        return progressed

    async def caller(session: Session, send: Lines, events: AsyncIterator[SessionEvent]) -> None:
        await says("Are you open today?")(session, send, events)
        turn_ended.set()

    async with anyio.create_task_group() as tg:
        result: list[bool] = []

        async def read_in_thread() -> None:
            result.append(await anyio.to_thread.run_sync(reader))

        tg.start_soon(read_in_thread)
        await call(caller, [{"text": "Yes, from noon."}], tts=TestTTS(RATE), transcript=transcript)
    assert result == [True]
    assert [(json.loads(line)["who"], json.loads(line)["text"]) for line in read] == [
        ("user", "Are you open today?"),
        ("agent", "Yes, from noon."),
    ]


async def test_repeated_lightning_drops_cost_one_phrase_not_the_call() -> None:
    from voiceagent.adapters.lightning import LightningTTS
    from voiceagent.testing.lightning import LightningServer

    async with LightningServer(voice="synthetic") as server:
        server.faults.drop_after(0, times=20)  # more than any retry budget
        async with LightningTTS(server.ws_url) as tts:

            async def caller(
                session: Session, send: Lines, events: AsyncIterator[SessionEvent]
            ) -> None:
                await says("What's on tonight?")(session, send, events)

            first = await call(caller, MENU, tts=tts)
    (turn,) = [e.result for e in first.of(TurnEnded)]
    assert first.session.ended == "hang_up" and turn.reason == "completed"
    assert turn.heard == ""  # nothing could be spoken: the turn ended quietly, the call did not
    validate_messages(first.history)
