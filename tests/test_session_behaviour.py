"""A Session, one behaviour each: the greeting, barge-in by typing, the idle re-prompt, the
maximum duration, hang-up, a tool ending the call, the order of events, a side-effecting
call finishing through a barge-in, and the transcript. Orderings and counts, never timings.

The caller types into a ConsoleTransport; the agent speaks through TestTTS into a
VirtualSpeaker (virtual playback: as fast as the loop allows) and asks a local
ElectronServer that follows a script.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from session_rig import needs_offline, spoken

from voiceagent.adapters.console import ConsoleTransport
from voiceagent.adapters.virtual_speaker import VirtualSpeaker
from voiceagent.agent import Agent
from voiceagent.history import validate_messages
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.session import Session
from voiceagent.session_events import (
    AgentSpeechEnded,
    AgentSpeechStarted,
    BargeIn,
    SessionEvent,
    ToolFinished,
    ToolStarted,
    TurnEnded,
    TurnStarted,
)
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS
from voiceagent.toolkit import ToolContext, tool

RATE = 16000
GREETING = "Hello, thanks for calling Luigi's. How can I help you today?"
LONG_ANSWER = (
    "We are open every day from noon until eleven, and on Fridays and Saturdays we stay "
    "open until midnight, with live music on the terrace when the weather allows it."
)

Lines = MemoryObjectSendStream[str]
Caller = Callable[[Session, Lines, AsyncIterator[SessionEvent]], Awaitable[None]]


@dataclass
class Conversation:
    session: Session
    events: list[SessionEvent]  # everything the session published, in order
    server: ElectronServer

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.session.history.messages()


async def talk(
    caller: Caller,
    script: Sequence[dict[str, Any]] = (),
    *,
    tools: Sequence[Any] = (),
    greeting: str | None = None,
    token_ms: float = 0.0,
    ms_per_char: float = 20.0,
    **options: Any,
) -> Conversation:
    """Run a session until it ends while ``caller`` types lines and watches its events."""
    async with ElectronServer(script=list(script), token_ms=token_ms) as server:
        send, lines = anyio.create_memory_object_stream[str](math.inf)
        options = {"idle_timeout_s": None, "reprompt": None} | options
        session = Session(
            Agent(instructions="You answer for Luigi's.", tools=tools, greeting=greeting),
            ConsoleTransport(VirtualSpeaker(RATE), lines=lines),
            tts=TestTTS(RATE, first_byte_ms=1, ms_per_char=ms_per_char),
            llm=ElectronClient(server.base_url, retry=RetryPolicy(scale=0.001)),
            **options,
        )
        seen: list[SessionEvent] = []
        recorded, watched = session.events(), session.events()

        async def record() -> None:
            async for event in recorded:
                seen.append(event)

        async with send, anyio.create_task_group() as tg:
            tg.start_soon(record)
            tg.start_soon(caller, session, send, watched)
            await session.run()
    return Conversation(session, seen, server)


async def turns_ended(events: AsyncIterator[SessionEvent], count: int) -> None:
    """Until ``count`` turns have ended."""
    async for event in events:
        count -= isinstance(event, TurnEnded)
        if count == 0:
            return


async def test_the_greeting_plays_first_and_is_history_s_first_assistant_message() -> None:
    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        await turns_ended(events, 1)
        lines.close()

    call = await talk(caller, greeting=GREETING)
    first = call.events[0]
    assert isinstance(first, TurnStarted) and first.trigger == "greeting"
    assert [e.text for e in call.of(AgentSpeechEnded)] == [GREETING]
    assert call.history[1:] == [{"role": "assistant", "content": GREETING}]


async def test_typing_during_the_greeting_barges_in() -> None:
    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        async for event in events:
            if isinstance(event, AgentSpeechStarted) and event.text == GREETING:
                lines.send_nowait("Do you have a table tonight?")
            elif isinstance(event, TurnEnded) and event.result.timeline.trigger == "user":
                lines.close()

    call = await talk(caller, [{"text": "Yes, we do."}], greeting=GREETING, ms_per_char=60)
    (barge,) = call.of(BargeIn)
    greeting = call.of(TurnEnded)[0].result
    assert greeting.timeline.trigger == "greeting" and greeting.reason == "cancelled"
    assert len(greeting.heard) < len(GREETING) and GREETING.startswith(greeting.heard)
    assert call.events.index(barge) < call.events.index(call.of(TurnEnded)[0])
    roles = [m["role"] for m in call.history]
    assert roles[-2:] == ["user", "assistant"] and call.history[-1]["content"] == "Yes, we do."


async def test_silence_brings_one_reprompt_then_the_session_ends_as_idle() -> None:
    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        async for _ in events:  # says nothing at all
            pass

    call = await talk(caller, idle_timeout_s=0.2, reprompt="Are you still there?")
    assert call.session.ended == "idle"
    assert [e.trigger for e in call.of(TurnStarted)] == ["reprompt"]
    assert call.history[1:] == [{"role": "assistant", "content": "Are you still there?"}]


async def test_the_maximum_duration_ends_the_session() -> None:
    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        async for _ in events:
            pass

    call = await talk(caller, max_duration_s=0.2)
    assert call.session.ended == "max_duration"
    assert call.of(TurnStarted) == []


async def test_hanging_up_mid_answer_ends_the_session_and_commits_what_was_heard(
    tmp_path: Path,
) -> None:
    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        lines.send_nowait("When are you open?")
        async for event in events:
            if isinstance(event, AgentSpeechEnded):
                lines.close()  # the line goes dead after the answer's first phrase

    transcript = tmp_path / "call.jsonl"
    call = await talk(caller, [{"text": LONG_ANSWER}], ms_per_char=60, transcript=transcript)
    assert call.session.ended == "hang_up"
    (ended,) = call.of(TurnEnded)
    assert ended.result.reason == "cancelled"
    heard = ended.result.heard
    assert heard and len(heard) < len(LONG_ANSWER) and LONG_ANSWER.startswith(heard)
    validate_messages(call.history)
    assert call.history[-1] == {"role": "assistant", "content": heard}
    logged = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert [(line["who"], line["heard"]) for line in logged] == [
        ("user", True),
        ("agent", True),
        ("agent", False),  # the rest of the answer: said, never heard
    ]
    assert " ".join([logged[1]["text"], logged[2]["text"]]) == LONG_ANSWER


async def test_a_tool_ending_the_call_hangs_up_after_what_is_queued_has_played() -> None:
    goodbye = "Thanks for calling, goodbye!"

    @tool
    async def end_call(ctx: ToolContext) -> str:
        """Hang up."""
        await ctx.end_call()
        return "ended"

    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        lines.send_nowait("That's all, bye.")
        async for _ in events:  # never hangs up itself
            pass

    script = [{"text": goodbye, "tool_calls": [{"name": "end_call", "arguments": {}}]}]
    call = await talk(caller, script, tools=[end_call], ms_per_char=60)
    assert call.session.ended == "hang_up"
    assert [e.text for e in call.of(AgentSpeechEnded)] == [goodbye]  # played to its end
    (finished,) = call.of(ToolFinished)
    assert call.events.index(call.of(AgentSpeechEnded)[0]) < call.events.index(finished)
    assert call.history[2]["content"] == goodbye


async def test_a_tool_turn_publishes_its_events_in_order() -> None:
    @tool
    async def check_table(people: int) -> str:
        """Check for a free table."""
        await anyio.sleep(0.02)
        return "free"

    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        lines.send_nowait("A table for two?")
        await turns_ended(events, 1)
        lines.close()

    script = [
        {
            "text": "Let me check.",
            "tool_calls": [{"name": "check_table", "arguments": {"people": 2}, "fragments": 5}],
        },
        {"text": "Yes, a table for two is free."},
    ]
    call = await talk(caller, script, tools=[check_table], token_ms=20)
    kinds = [type(e).__name__ for e in call.events if not type(e).__name__.startswith("User")]
    assert kinds[0] == "TurnStarted" and kinds[-1] == "TurnEnded"
    assert kinds.count("AgentSpeechStarted") == kinds.count("AgentSpeechEnded") == 2
    filler = kinds.index("AgentSpeechStarted")
    answer = kinds.index("AgentSpeechStarted", filler + 1)
    # the filler plays while the arguments still stream; the answer is asked for (and so
    # heard) only once the tool has finished
    assert filler < kinds.index("ToolStarted") < kinds.index("ToolFinished") < answer
    (started,), (finished,) = call.of(ToolStarted), call.of(ToolFinished)
    assert started.call_id == finished.call_id and finished.state == "done"


async def test_a_side_effecting_call_running_at_barge_in_finishes_before_the_next_turn() -> None:
    booked: list[str] = []

    @tool  # side-effecting by default
    async def book_table(people: int) -> str:
        """Book a table."""
        await anyio.sleep(0.2)
        booked.append(f"{people} people")
        return "booked"

    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        lines.send_nowait("Book a table for four.")
        async for event in events:
            if isinstance(event, ToolStarted):
                session.interrupt()  # the caller cuts in while the booking runs
                lines.send_nowait("Actually, make it five.")
            elif isinstance(event, TurnEnded) and event.result.reason == "completed":
                lines.close()  # after the second turn

    script = [
        {
            "text": "Booking that now.",
            "tool_calls": [{"name": "book_table", "arguments": {"people": 4}}],
        },
        {"text": "Done."},
        {"text": "Changed to five."},
    ]
    call = await talk(caller, script, tools=[book_table])
    assert booked == ["4 people"]  # it ran once, to its end
    history = call.history
    validate_messages(history)
    made, answered, next_user = history[2:5]
    (booking,) = made["tool_calls"]
    answer = {"role": "tool", "tool_call_id": booking["id"], "content": "booked"}
    assert answered == answer  # committed before the next user message
    assert next_user == {"role": "user", "content": "Actually, make it five."}
    (barge,) = call.of(BargeIn)
    (finished,) = call.of(ToolFinished)
    assert call.events.index(barge) < call.events.index(finished)
    # and the request for the new turn waited for it
    asked = next(r.messages for r in call.server.requests if "five" in json.dumps(r.messages))
    assert answer in asked


async def test_the_transcript_has_one_json_line_per_utterance(tmp_path: Path) -> None:
    async def caller(session: Session, lines: Lines, events: AsyncIterator[SessionEvent]) -> None:
        lines.send_nowait("Are you open today?")
        await turns_ended(events, 1)
        lines.close()

    transcript = tmp_path / "call.jsonl"
    await talk(caller, [{"text": "Yes, from noon."}], transcript=transcript)
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert [(line["who"], line["text"], line["heard"]) for line in lines] == [
        ("user", "Are you open today?", True),
        ("agent", "Yes, from noon.", True),
    ]
    for line in lines:
        assert set(line) == {"who", "text", "heard", "start_ms", "end_ms"}
        assert 0 <= line["start_ms"] <= line["end_ms"]
    assert lines[0]["start_ms"] <= lines[1]["start_ms"]


@needs_offline
async def test_the_end_of_turn_wait_counts_from_when_the_vad_said_speech_ended() -> None:
    """``end_of_turn_ms`` is waited for on top of the VAD's hangover, not swallowed by it."""
    from contextlib import asynccontextmanager

    from voiceagent.adapters.vad_webrtc import WebRTCVAD
    from voiceagent.adapters.whisper import WhisperSTT
    from voiceagent.session_events import UserSpeechEnded
    from voiceagent.timeline import SessionClock
    from voiceagent.turn_taking import TurnTaker

    whisper = WhisperSTT()
    fed: list[int] = [0]  # samples sent to the STT so far
    finalized_at: list[int] = []

    class ObservedSTT:  # the real whisper stream, with its audio and finalize counted
        sample_rate, encoding = whisper.sample_rate, whisper.encoding

        @asynccontextmanager
        async def stream(self) -> Any:
            async with whisper.stream() as real:
                send, finalize = real.send_audio, real.finalize

                async def counted_send(audio: bytes) -> None:
                    fed[0] += len(audio) // 2
                    await send(audio)

                async def counted_finalize() -> None:
                    finalized_at.append(fed[0])
                    await finalize()

                real.send_audio, real.finalize = counted_send, counted_finalize  # type: ignore[method-assign]
                yield real

    ended_at: list[int] = []

    def publish(event: object) -> None:
        if isinstance(event, UserSpeechEnded):
            ended_at.append(fed[0])

    pcm = bytes(3200) + spoken("hello there") + bytes(64000)  # speech, then 2 s of silence
    taker = TurnTaker(
        SessionClock(),
        RATE,
        stt=ObservedSTT(),  # type: ignore[arg-type]
        vad=WebRTCVAD(RATE, min_silence_ms=300),
        end_of_turn_ms=400.0,
        publish=publish,
        on_speech=lambda at: None,
    )

    async def frames() -> Any:
        for i in range(0, len(pcm), 640):
            yield pcm[i : i + 640]

    send, _ = anyio.create_memory_object_stream[Any](10)
    await taker.run(frames(), send)
    assert len(ended_at) == 1 and len(finalized_at) >= 1
    waited = (finalized_at[0] - ended_at[0]) * 1000 / RATE
    assert 400 <= waited <= 420  # 400 ms of input after the VAD's word, to the next frame
