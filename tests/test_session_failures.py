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


@tool(timeout=5.0)  # a hang-up that never comes fails the call in 5 s, not 10
async def end_call(ctx: ToolContext) -> str:
    """Hang up."""
    await ctx.end_call()
    return "ended"


def hung_up_by_the_tool(done: Call, goodbye: str) -> None:
    """The call ended through end_call, after the goodbye had played: the tool's hang-up
    returned (not its timeout; the caller hangs up only once the turn is over), and the
    goodbye's audio ended before the tool did."""
    finished = [e for e in done.of(ToolFinished) if e.name == "end_call"]
    assert [e.state for e in finished] == ["done"]  # "failed": it timed out waiting
    assert goodbye in [e.text for e in done.of(AgentSpeechEnded)], "the goodbye never played"
    (heard,) = [e for e in done.of(AgentSpeechEnded) if e.text == goodbye]
    assert done.events.index(heard) < done.events.index(finished[0])
    assert done.session.ended == "hang_up"
    # the session ended inside the tool's round: no follow-up was answered after the results
    assert done.history[-1]["role"] == "tool"


# -- end_call --------------------------------------------------------------------------------


async def test_end_call_waits_for_a_goodbye_the_model_says_after_the_call() -> None:
    # The model calls end_call first and says goodbye after it, in the same stream: when
    # the tool hangs up, nothing is queued (the queue is idle) and the goodbye is not even
    # a phrase yet. The hang-up must wait for the stream to end, then for what it queued.
    script = [{"tool_calls": [{"name": "end_call", "arguments": {}}], "text_after": "Goodbye!"}]
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=20)
    done = await call(says("That's all, bye."), script, tts=tts, tools=[end_call], token_ms=30)
    hung_up_by_the_tool(done, "Goodbye!")


async def test_end_call_waits_for_a_segment_queued_while_it_waits_for_the_queue() -> None:
    # The hang-up is already waiting for the queue to drain (the stream has ended, the first
    # phrase still plays, paced in real time) when a parallel tool's ctx.say() queues the
    # goodbye: the drain it waits for must include that segment.
    sessions: list[Session] = []
    hanging_up = anyio.Event()

    @tool(timeout=5.0)
    async def hang_up(ctx: ToolContext) -> str:
        """Hang up."""
        hanging_up.set()
        await ctx.end_call()
        return "ended"

    @tool(timeout=5.0)
    async def say_goodbye(ctx: ToolContext) -> str:
        """Say goodbye."""
        await hanging_up.wait()
        turn = sessions[0].timeline.turns[-1]
        # until the stream has ended (the timeline only calls back into the session)
        while not any(e.kind == "llm.end" for e in turn.events):  # noqa: ASYNC110
            await anyio.sleep(0.005)
        await anyio.sleep(0.005)  # ... and the hang-up, woken by it, waits on the queue now
        assert sessions[0].speech is not None and not sessions[0].speech.idle  # still playing
        await ctx.say("Goodbye!")
        return "said"

    async def caller(session: Session, send: Lines, events: AsyncIterator[SessionEvent]) -> None:
        sessions.append(session)
        await says("That's all, bye.")(session, send, events)

    script = [
        {
            "text": "Thanks so much for calling Luigi's today.",
            "tool_calls": [{"name": "hang_up"}, {"name": "say_goodbye"}],
        }
    ]
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=40)  # the first phrase plays for 1.6 s
    done = await call(
        caller,
        script,
        tts=tts,
        speaker=NullSpeaker(RATE),
        tools=[hang_up, say_goodbye],
        token_ms=30,
    )
    finished = {e.name: e.state for e in done.of(ToolFinished)}
    assert finished == {"hang_up": "done", "say_goodbye": "done"}
    texts = [e.text for e in done.of(AgentSpeechEnded)]
    assert texts == ["Thanks so much for calling Luigi's today.", "Goodbye!"]
    (hung_up,) = [e for e in done.of(ToolFinished) if e.name == "hang_up"]
    assert done.events.index(done.of(AgentSpeechEnded)[-1]) < done.events.index(hung_up)
    assert done.history[-1]["role"] == "tool"  # no follow-up round after the results


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
