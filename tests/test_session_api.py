"""The Session's small conveniences, one behaviour each: ``send_text`` starts a user turn,
``ready()`` says the session is up, ``follow_up=`` chooses when a tool round's follow-up is
sent, and a console session plays a voice at any rate. Orderings, never timings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from voiceagent.adapters.console import ConsoleTransport
from voiceagent.adapters.virtual_speaker import NullSpeaker, VirtualSpeaker
from voiceagent.agent import Agent
from voiceagent.llm import ElectronClient
from voiceagent.session import Session
from voiceagent.session_events import (
    AgentSpeechEnded,
    SessionEvent,
    TurnEnded,
    TurnStarted,
    UserTranscript,
)
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import SessionClock
from voiceagent.toolkit import tool
from voiceagent.turn import FollowUp

RATE = 16000
GREETING = "Hello, thanks for calling Luigi's."


async def silent_user() -> AsyncIterator[str]:
    """A console user who never types: input only through ``send_text``."""
    await anyio.sleep_forever()
    yield "never"


def session_for(server: ElectronServer, **options: Any) -> Session:
    agent = Agent(instructions="You answer for Luigi's.", greeting=options.pop("greeting", None))
    options = {"idle_timeout_s": None, "reprompt": None} | options
    return Session(
        agent,
        options.pop("transport", None)
        or ConsoleTransport(VirtualSpeaker(RATE), lines=silent_user()),
        tts=options.pop("tts", None) or TestTTS(RATE, first_byte_ms=1, ms_per_char=10),
        llm=ElectronClient(server.base_url),
        **options,
    )


async def first_turn_ended(events: AsyncIterator[SessionEvent], trigger: str) -> TurnEnded:
    async for event in events:
        if isinstance(event, TurnEnded) and event.result.timeline.trigger == trigger:
            return event
    raise AssertionError(f"the session ended before a {trigger} turn ended")


async def one_typed_turn(session: Session, text: str) -> list[SessionEvent]:
    """Run ``session``, send ``text`` once it is ready, and hang up after that turn: every
    event the session published until the turn ended."""
    seen: list[SessionEvent] = []
    events = session.events()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            await session.ready()
            session.send_text(text)
            async for event in events:
                seen.append(event)
                if isinstance(event, TurnEnded):
                    break
            await session.hang_up()
    return seen


async def test_send_text_starts_a_user_turn_with_that_text_as_a_typed_line_would() -> None:
    async with ElectronServer(script=[{"text": "Yes, we do."}]) as server:
        session = session_for(server)
        seen = await one_typed_turn(session, "  Do you have a table tonight? ")
    started = [e for e in seen if isinstance(e, TurnStarted)]
    assert [(e.trigger, e.text) for e in started] == [("user", "Do you have a table tonight?")]
    transcripts = [e for e in seen if isinstance(e, UserTranscript)]
    assert [(e.text, e.final) for e in transcripts] == [("Do you have a table tonight?", True)]
    assert session.history.messages()[-2:] == [
        {"role": "user", "content": "Do you have a table tonight?"},
        {"role": "assistant", "content": "Yes, we do."},
    ]


async def test_send_text_outside_a_running_session_is_an_error() -> None:
    async with ElectronServer() as server:
        session = session_for(server)
        with pytest.raises(RuntimeError, match="not running"):
            session.send_text("hello")


async def test_ready_returns_once_the_greeting_is_queued_and_before_any_user_turn() -> None:
    async with ElectronServer() as server:
        session = session_for(server, greeting=GREETING)
        seen: list[SessionEvent] = []
        events = session.events()

        async def record() -> None:
            async for event in events:
                seen.append(event)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(record)
                tg.start_soon(session.run)
                await session.ready()
                assert session.speech is not None
                queued = [s.text for s in session.speech.pending]
                assert queued == [GREETING]  # queued, not played yet: ready() does not wait for it
                assert [(e.trigger, e.text) for e in seen if isinstance(e, TurnStarted)] == [
                    ("greeting", None)
                ]
                assert not any(isinstance(e, TurnEnded) for e in seen)
                await session.hang_up()


async def test_ready_without_a_greeting_returns_once_listening() -> None:
    async with ElectronServer() as server:
        session = session_for(server)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                await session.ready()
                assert session.ended is None
                await session.hang_up()


async def test_ready_returns_when_the_session_ends_before_it_was_up() -> None:
    async def no_lines() -> AsyncIterator[str]:
        return
        yield  # pragma: no cover

    async with ElectronServer() as server:
        session = session_for(
            server, transport=ConsoleTransport(VirtualSpeaker(RATE), lines=no_lines())
        )
        with anyio.fail_after(10):
            await session.run()
            await session.ready()  # never hangs on a session that has ended
        assert session.ended == "hang_up"


@tool
async def check_table(people: int) -> str:
    """Check for a free table."""
    return "free"


TOOL_SCRIPT = [
    {
        "text": "Let me check that for you.",
        "tool_calls": [{"name": "check_table", "arguments": {"people": 2}}],
    },
    {"text": "Yes, a table for two is free."},
]


async def tool_turn(follow_up: FollowUp | None) -> list[tuple[str, dict[str, Any]]]:
    """One tool turn over a real-time speaker: its timeline as (kind, attributes)."""
    async with ElectronServer(script=TOOL_SCRIPT) as server:
        clock = SessionClock()
        options: dict[str, Any] = {} if follow_up is None else {"follow_up": follow_up}
        session = Session(
            Agent(instructions="You answer for Luigi's.", tools=[check_table]),
            ConsoleTransport(NullSpeaker(RATE, origin=clock.origin), lines=silent_user()),
            tts=TestTTS(RATE, first_byte_ms=1, ms_per_char=10),
            llm=ElectronClient(server.base_url),
            idle_timeout_s=None,
            reprompt=None,
            clock=clock,
            **options,
        )
        events = session.events()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                await session.ready()
                session.send_text("A table for two?")
                ended = await first_turn_ended(events, "user")
                await session.hang_up()
    return [(e.kind, e.attrs) for e in ended.result.timeline.events]


def follow_up_order(timeline: list[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
    """Where the filler's audio.end and the round-2 request sit on the timeline."""
    filler_end = next(
        i for i, (kind, a) in enumerate(timeline) if kind == "audio.end" and a["round"] == 1
    )
    request = next(
        i for i, (kind, a) in enumerate(timeline) if kind == "llm.request" and a["round"] == 2
    )
    return filler_end, request


async def test_follow_up_after_playback_asks_again_only_once_the_filler_has_played() -> None:
    filler_end, request = follow_up_order(await tool_turn(FollowUp.AFTER_PLAYBACK))
    assert filler_end < request


async def test_the_follow_up_is_immediate_by_default() -> None:
    filler_end, request = follow_up_order(await tool_turn(None))
    assert request < filler_end


async def test_a_console_session_plays_a_16_khz_voice_on_its_default_speaker() -> None:
    async with ElectronServer(script=[{"text": "Yes, we do."}]) as server:
        transport = ConsoleTransport(lines=silent_user())  # the default speaker: NullSpeaker()
        session = session_for(server, transport=transport, tts=TestTTS(16000, first_byte_ms=1))
        seen = await one_typed_turn(session, "A table tonight?")
    assert [e.text for e in seen if isinstance(e, AgentSpeechEnded)] == ["Yes, we do."]
    assert transport.output.sample_rate == 16000


async def test_a_virtual_speaker_takes_its_sources_rate_unless_given_one() -> None:
    async with ElectronServer(script=[{"text": "Yes, we do."}]) as server:
        speaker = VirtualSpeaker()
        transport = ConsoleTransport(speaker, lines=silent_user())
        session = session_for(server, transport=transport, tts=TestTTS(8000, first_byte_ms=1))
        events = session.events()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                await session.ready()
                session.send_text("A table tonight?")
                ended = await first_turn_ended(events, "user")
                await session.hang_up()
    assert ended.result.heard == "Yes, we do."
    assert speaker.sample_rate == 8000
