"""Barge-in at any observable point of a tool turn leaves the conversation as DESIGN.md's
"What was heard" says: history the API accepts, assistant text equal to the heard audio,
no side-effecting call run twice, no finished result lost, nothing left running.

A Session over a ConsoleTransport (the user's typed turns) speaks through TestTTS into a
VirtualSpeaker (fast, virtual playback) and asks a local ElectronServer that scripts a
tool turn: spoken filler, several tool calls streamed in fragments, a follow-up answer.
Hypothesis draws the script and the cut: an index into the turn's observable events —
timeline events, LLM chunks (seen by a client subclass that only counts them) and audio
blocks (seen by a speaker subclass that only counts them) — where the caller barges in.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import numpy as np
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from voiceagent import ports
from voiceagent.adapters.console import ConsoleTransport
from voiceagent.adapters.virtual_speaker import VirtualSpeaker
from voiceagent.agent import Agent
from voiceagent.history import validate_messages
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.session import Session
from voiceagent.session_events import TurnEnded
from voiceagent.speech import DEFAULT_MS_PER_CHAR, Segment, SpeechQueue
from voiceagent.testing.electron import ElectronServer, Script
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import TimelineEvent, TurnTimeline
from voiceagent.toolkit import ToolContext, tool

RATE = 16000
# TestTTS speaks at the rate the engine assumes before it has learned the voice's own, so
# its estimate of a phrase cut before its synthesis ended is exact: the test can be too.
MS_PER_CHAR = DEFAULT_MS_PER_CHAR
CANCELLED = {"error": "cancelled"}
FILLERS = ["Let me check that for you.", "One moment, I am looking that up now.", ""]
ANSWERS = [
    "Done, your table is booked and the menu has carbonara.",
    "All set. Anything else, or shall I read you the menu?",
]
LATER = "Sure, anything else?"  # every round after the tool turn's two
SMS_FILLER = "Sending that now."
USER_1, USER_2 = "Book Luigi's for four and check the menu.", "Actually, wait."

# -- tools that record every execution ----------------------------------------------------

Execution = tuple[str, str, str]  # ("start" | "finish", tool name, call id)
EXECUTIONS: list[Execution] = []  # one example at a time (hypothesis runs them in turn)


def _ran(what: str, name: str, ctx: ToolContext) -> None:
    EXECUTIONS.append((what, name, ctx.call_id))


@tool
async def book_table(ctx: ToolContext, ref: str, ms: int) -> str:
    """Book a table (side-effecting)."""
    _ran("start", "book_table", ctx)
    await anyio.sleep(ms / 1000)
    _ran("finish", "book_table", ctx)
    return f"booked {ref}"


@tool(filler=SMS_FILLER, filler_delay=0.002)
async def send_sms(ctx: ToolContext, ref: str, ms: int) -> str:
    """Text the caller a confirmation (side-effecting, with a filler of its own)."""
    _ran("start", "send_sms", ctx)
    await anyio.sleep(ms / 1000)
    _ran("finish", "send_sms", ctx)
    return f"sent {ref}"


@tool(interruptible=True)
async def search_menu(ctx: ToolContext, ref: str, ms: int) -> str:
    """Search the menu (safe to cancel)."""
    _ran("start", "search_menu", ctx)
    await anyio.sleep(ms / 1000)
    _ran("finish", "search_menu", ctx)
    return f"found {ref}"


@tool(interruptible=True)
def convert_units(ctx: ToolContext, ref: str, ms: int) -> str:
    """Convert units (a sync tool: a barge-in abandons it)."""
    _ran("start", "convert_units", ctx)
    time.sleep(ms / 1000)
    _ran("finish", "convert_units", ctx)
    return f"converted {ref}"


TOOLS = [book_table, send_sms, search_menu, convert_units]
RESULTS = {  # what each returns, by its ref
    "book_table": "booked {}",
    "send_sms": "sent {}",
    "search_menu": "found {}",
    "convert_units": "converted {}",
}
SIDE_EFFECTING = {"book_table", "send_sms"}
INTERRUPTIBLE_ASYNC = {"search_menu"}
SYNC = {"convert_units"}

# -- observers: a client and a speaker that count what passes, and change nothing ---------


class CountingClient(ElectronClient):
    """An ElectronClient that reports every chunk it hands to the engine."""

    def __init__(self, base_url: str, on_chunk: Any) -> None:
        super().__init__(base_url, retry=RetryPolicy(scale=0.001))
        self.on_chunk = on_chunk

    def stream(self, messages: Any, **options: Any) -> Any:  # the same stream, observed
        return _CountedStream(super().stream(messages, **options), self.on_chunk)


class _CountedStream:
    def __init__(self, inner: Any, on_chunk: Any) -> None:
        self.inner, self.on_chunk = inner, on_chunk

    async def __aenter__(self) -> _CountedStream:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    def __aiter__(self) -> _CountedStream:
        return self

    async def __anext__(self) -> Any:
        chunk = await self.inner.__anext__()
        self.on_chunk(chunk)
        return chunk


class CountingSpeaker(VirtualSpeaker):
    """A VirtualSpeaker that reports every block with audio in it as it plays it, and keeps
    the segments it was offered (for their texts: what was heard comes from the samples)."""

    def __init__(self, on_block: Any) -> None:
        super().__init__(RATE, block_ms=20)
        self.on_block = on_block
        self.segments: dict[int, Segment] = {}

    async def play(self, source: ports.AudioSource) -> None:
        assert isinstance(source, SpeechQueue)
        await super().play(_Tap(source, self))


@dataclass
class _Tap:
    source: SpeechQueue
    speaker: CountingSpeaker

    @property
    def sample_rate(self) -> int:
        return self.source.sample_rate

    def read(self, n_samples: int, position: int) -> bytes:
        for segment in self.source.pending:
            self.speaker.segments.setdefault(segment.id, segment)
        pcm = self.source.read(n_samples, position)
        if pcm:
            self.speaker.on_block()
        return pcm


def chunk_kind(chunk: Any) -> str:
    if not chunk.choices:
        return "chunk.usage"
    choice = chunk.choices[0]
    if choice.finish_reason:
        return "chunk.finish"
    if choice.delta.tool_calls:
        return "chunk.tool_name" if choice.delta.tool_calls[0].id else "chunk.arguments"
    return "chunk.content" if choice.delta.content else "chunk.role"


# -- one conversation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    tool: str
    fragments: int
    ms: int


@dataclass(frozen=True)
class Case:
    filler: str
    calls: tuple[Call, ...]
    answer: str
    token_ms: float
    cut: int  # index into turn 1's observable events; past its end means no barge-in

    def script(self) -> list[dict[str, Any]]:
        tool_calls = [
            {"name": c.tool, "arguments": {"ref": f"c{i}", "ms": c.ms}, "fragments": c.fragments}
            for i, c in enumerate(self.calls)
        ]
        first: dict[str, Any] = {"tool_calls": tool_calls}
        if self.filler:
            first["text"] = self.filler
        return [first, {"text": self.answer}, *[{"text": LATER}] * 4]


@dataclass
class Outcome:
    case: Case
    session: Session
    server: ElectronServer
    tts: TestTTS
    speaker: CountingSpeaker
    observed: list[str]  # turn 1's observable events, in order
    cut_at: int | None  # how many of them had happened when the caller barged in
    executions_at_cut: int  # len(EXECUTIONS) then
    turn1: TurnTimeline | None = None
    boundary: int = 0  # speaker samples when turn 1 ended: its audio is before this
    in_flight_at_end: int = 0
    tasks_left: list[str] = field(default_factory=list)


async def converse(case: Case, server: ElectronServer) -> Outcome:
    """Turn 1, a barge-in at the drawn event, turn 2 to its end, then hang up."""
    server.script = Script.from_data(case.script())
    del server.requests[:]  # this example's requests only
    EXECUTIONS.clear()
    observed: list[str] = []
    cut = anyio.Event()
    turn1_over = anyio.Event()
    state: dict[str, Any] = {"turn1": None}

    def observe(kind: str) -> None:
        if turn1_over.is_set() or state["turn1"] is None:
            return
        observed.append(kind)
        if len(observed) == case.cut:
            cut.set()

    speaker = CountingSpeaker(lambda: observe("audio.block"))
    send, lines = anyio.create_memory_object_stream[str](math.inf)
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=MS_PER_CHAR)
    session = Session(
        Agent(instructions="You book tables.", tools=TOOLS, temperature=0),
        ConsoleTransport(speaker, lines=lines),
        tts=tts,
        llm=CountingClient(server.base_url, lambda chunk: observe(chunk_kind(chunk))),
        idle_timeout_s=None,
        reprompt=None,
    )
    outcome = Outcome(case, session, server, tts, speaker, observed, None, 0)
    publish = session.timeline.on_event

    def on_event(turn: TurnTimeline, event: TimelineEvent) -> None:
        if state["turn1"] is None:
            state["turn1"] = outcome.turn1 = turn
        if turn is outcome.turn1:
            observe(event.kind)
            if event.kind == "turn.end":
                outcome.boundary = speaker.position
                turn1_over.set()
        assert publish is not None
        publish(turn, event)

    session.timeline.on_event = on_event
    ended = session.events()

    async def caller() -> None:
        async with anyio.create_task_group() as race:

            async def barge_in() -> None:
                await cut.wait()
                if not turn1_over.is_set():
                    outcome.cut_at = len(observed)
                    outcome.executions_at_cut = len(EXECUTIONS)
                    session.interrupt()
                race.cancel_scope.cancel()

            async def wait_turn1() -> None:
                await turn1_over.wait()
                race.cancel_scope.cancel()

            race.start_soon(barge_in)
            race.start_soon(wait_turn1)
        send.send_nowait(USER_2)
        turns = 0
        async for happened in ended:  # until the session ends
            turns += isinstance(happened, TurnEnded)
            if turns == 2:
                send.close()  # the caller hangs up after the second turn

    before = set(asyncio.all_tasks())
    send.send_nowait(USER_1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await session.run()
    outcome.in_flight_at_end = session.engine.executor.in_flight
    await anyio.lowlevel.checkpoint()
    outcome.tasks_left = sorted(
        t.get_name() for t in set(asyncio.all_tasks()) - before if not _server_task(t)
    )
    return outcome


def _server_task(task: asyncio.Task[Any]) -> bool:
    """The simulator's own connection handlers (the client's pooled connections stay open)."""
    return "voiceagent.testing._http" in task.get_name()


# -- what was heard, from the samples the speaker played -----------------------------------


@functools.cache
def tone(text: str) -> bytes:
    """TestTTS's audio for ``text`` (deterministic: it depends on the text only)."""
    voice = TestTTS(RATE, first_byte_ms=0, ms_per_char=MS_PER_CHAR)

    async def collect() -> bytes:
        async def one() -> AsyncIterator[str]:
            yield text

        return b"".join([pcm async for pcm in voice.synthesize(one())])

    return asyncio.run(collect()) if text else b""


def common_prefix(a: bytes, b: bytes) -> int:
    """Length in whole samples of the common prefix of two PCM16 strings."""
    n = min(len(a), len(b))
    lo, hi = 0, n // 2
    while lo < hi:  # binary search on equal prefixes
        mid = (lo + hi + 1) // 2
        if a[: 2 * mid] == b[: 2 * mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class Heard:
    round: int
    text: str  # the segment's text
    played: int  # samples of it the speaker played
    total: int  # samples of its whole audio

    @property
    def words(self) -> str:
        """Its heard words by DESIGN.md's rule: all of it, or in proportion to samples."""
        if self.played >= self.total:
            return self.text.strip()
        words = self.text.split()
        return " ".join(words[: math.floor(len(words) * self.played / self.total + 1e-9)])


def heard_segments(outcome: Outcome) -> list[Heard]:
    """Turn 1's segments in order, with the samples of each the speaker really played."""
    assert outcome.turn1 is not None
    pcm = np.frombuffer(outcome.speaker.samples[: 2 * outcome.boundary], np.int16)
    audio = pcm[pcm != 0].tobytes()  # TestTTS never makes a zero: zeros are silence
    heard, at, cut = [], 0, False
    for e in outcome.turn1.events:
        if e.kind != "tts.request":
            continue
        segment = outcome.speaker.segments.get(e.attrs["segment"])
        text = segment.text if segment is not None else ""  # never offered: never played
        whole = tone(text)
        played = 0 if cut else common_prefix(audio[2 * at :], whole)
        at += played
        heard.append(Heard(e.attrs["round"], text, played, len(whole) // 2))
        cut = cut or played < len(whole) // 2
    assert 2 * at == len(audio), "the speaker played audio no segment accounts for"
    return heard


# -- the properties -----------------------------------------------------------------------


def check(outcome: Outcome) -> None:
    session = outcome.session
    history = session.history.messages()
    note(f"observed: {outcome.observed}")
    note(f"cut at: {outcome.cut_at}; executions: {EXECUTIONS}")
    note("history:\n" + "\n".join(json.dumps(m) for m in history))

    # The API's rules, for the history and for every request the engine sent.
    validate_messages(history)
    for request in outcome.server.requests:
        assert request.status == 200
        validate_messages(request.messages)
    roles = [m["role"] for m in history]
    assert roles[:2] == ["system", "user"] and roles.count("user") == 2
    second = roles.index("user", 2)
    assert history[1]["content"] == USER_1 and history[second]["content"] == USER_2
    turn1, turn2 = history[2:second], history[second + 1 :]

    # Assistant text equals the heard text, segment by segment, round by round.
    assert outcome.turn1 is not None
    segments = heard_segments(outcome)
    note("heard: " + repr([(h.text, h.played, h.total) for h in segments]))
    said = [m for m in turn1 if m["role"] == "assistant"]
    made_any = any(m.get("tool_calls") for m in said)
    heard = {
        number: " ".join(" ".join(h.words for h in segments if h.round == number).split())
        for number in sorted({h.round for h in segments})
    }
    expected = [heard.get(1, "")] if heard.get(1) or made_any else []
    expected += [text for number, text in heard.items() if number > 1 and text]
    assert [m["content"] or "" for m in said] == expected
    assert all(not m.get("tool_calls") for m in said[1:])
    for message in turn2:  # turn 2 was not cut: all of it was heard
        if message["role"] == "assistant" and message["content"]:
            texts = {outcome.case.filler, outcome.case.answer, LATER, SMS_FILLER}
            assert message["content"] in texts

    # Executions: none twice; each call that ran answered with its own result, or cancelled
    # only where DESIGN.md allows it; every call answered before the next user message.
    starts = [call_id for what, _, call_id in EXECUTIONS if what == "start"]
    finishes = {call_id for what, _, call_id in EXECUTIONS if what == "finish"}
    assert len(starts) == len(set(starts)), "a tool call ran twice"
    answers = {m["tool_call_id"]: parsed(m["content"]) for m in history if m["role"] == "tool"}
    calls = {
        c["id"]: (c["function"]["name"], json.loads(c["function"]["arguments"])["ref"])
        for m in history
        if m["role"] == "assistant"
        for c in m.get("tool_calls", [])
    }
    assert set(starts) <= set(calls), "a call that ran has no answer in history"
    for call_id, (name, ref) in calls.items():
        answer = answers[call_id]
        if name not in SYNC:
            assert call_id in starts, "a call in history never ran"
        if answer == CANCELLED:
            assert name not in SIDE_EFFECTING, "a side-effecting call was not let finish"
            if name in INTERRUPTIBLE_ASYNC:
                assert call_id not in finishes, "a finished result was lost"
            # a sync call: abandoned in its thread, or cancelled before its thread began
        else:
            assert call_id in finishes and answer == RESULTS[name].format(ref)
    turn1_ids = {e.attrs["call_id"] for e in outcome.turn1.events if e.kind == "tool.args_ready"}
    made = [call_id for call_id in calls if call_id in turn1_ids]
    asked = next(r.messages for r in outcome.server.requests if USER_2 in json.dumps(r.messages))
    assert {m.get("tool_call_id") for m in asked} >= set(made)
    # A call that had not started when the caller barged in never runs.
    if outcome.cut_at is not None:
        late = [
            (name, call_id)
            for what, name, call_id in EXECUTIONS[outcome.executions_at_cut :]
            if what == "start" and call_id in turn1_ids and name not in SYNC
        ]
        assert not late, f"calls of the discarded generation started after the barge-in: {late}"

    # A turn that was barged in did not complete.
    (end,) = [e for e in outcome.turn1.events if e.kind == "turn.end"]
    assert end.attrs["reason"] == ("completed" if outcome.cut_at is None else "cancelled")

    # Nothing left running but abandoned sync tools, which still hold their slots.
    assert not outcome.tasks_left
    abandoned = [c for c in calls if calls[c][0] in SYNC and answers[c] == CANCELLED]
    assert outcome.in_flight_at_end <= len(abandoned)
    if abandoned:
        event("abandoned a sync tool")


def parsed(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content  # a tool's plain-text result


# -- the property test ----------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> Case:
    names = [t.name for t in TOOLS]
    calls = draw(
        st.lists(
            st.builds(
                Call,
                st.sampled_from(names),
                st.integers(1, 6),
                st.sampled_from([0, 3, 15, 40]),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return Case(
        filler=draw(st.sampled_from(FILLERS)),
        calls=tuple(calls),
        answer=draw(st.sampled_from(ANSWERS)),
        token_ms=draw(st.sampled_from([0.0, 1.0])),
        # Half the cuts fall among the first events (the stream, the filler, the tools),
        # the rest anywhere in the turn, the follow-up's audio included, or past its end.
        cut=draw(st.one_of(st.integers(3, 60), st.integers(1, 180))),
    )


@contextmanager
def simulator() -> Iterator[tuple[BlockingPortal, ElectronServer]]:
    """One event loop and one Electron simulator for all examples (each sets its script)."""
    with start_blocking_portal() as portal:
        server = ElectronServer(script=[])
        with portal.wrap_async_context_manager(server):
            yield portal, server


def phase(outcome: Outcome) -> str:
    """Where the cut fell, for hypothesis's statistics."""
    if outcome.cut_at is None:
        return "no cut"
    seen = outcome.observed[: outcome.cut_at]
    last = seen[-1] if seen else ""
    if "llm.first_token" not in seen:
        return "before the first token"
    if seen.count("llm.request") > 1:
        return "during the follow-up"
    if last == "chunk.arguments":
        return "mid-arguments"
    if last == "audio.block":
        return "mid-filler"
    if seen.count("tool.start") > seen.count("tool.end"):
        return "while tools run"
    return "mid-stream"


EXAMPLES = 200 if os.environ.get("CI") else 50


def test_a_barge_in_at_any_point_of_a_tool_turn_keeps_history_true() -> None:
    with simulator() as (portal, server):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(cases())
        def barge(case: Case) -> None:
            outcome = portal.call(converse, case, server)
            event(f"cut {phase(outcome)}")
            check(outcome)
            wait_for_abandoned_threads()

        barge()


def wait_for_abandoned_threads() -> None:
    """Abandoned sync tools end on their own; the next example starts without them."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        running = {c for w, n, c in EXECUTIONS if w == "start" and n in SYNC} - {
            c for w, _, c in EXECUTIONS if w == "finish"
        }
        if not running:
            return
        time.sleep(0.005)
    raise AssertionError(f"sync tools still running long after the session: {running}")
