"""The barge-in fuzz's rig (tests/test_barge_in_fuzz.py): tools that record every run, an
LLM client and a speaker that only count what passes, a TTS that can fail a segment, one
drawn conversation run to its end, and DESIGN.md's "What was heard" checked against the
samples the speaker really played.

A Session over a ConsoleTransport (the user's typed turns) speaks through TestTTS into a
VirtualSpeaker (fast, virtual playback) and asks a local ElectronServer that scripts a
tool turn: spoken filler, several tool calls streamed in fragments, a follow-up answer.
The caller types three turns; in each of the first two it may barge in at a drawn index
into that turn's observable events — timeline events, LLM chunks (seen by a client
subclass that only counts them) and audio blocks (seen by a speaker subclass that only
counts them).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import sys
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
from hypothesis import event, note

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
from voiceagent.testing.electron.faults import Faults
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import TimelineEvent, TurnTimeline
from voiceagent.toolkit import ToolContext, tool
from voiceagent.turn import APOLOGY

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
SAY = "I am putting that through."  # a tool's ctx.say()
GOODBYE = "Goodbye, and thank you for calling."  # the end_call tool's last words
USERS = ("Book Luigi's for four and check the menu.", "Actually, wait.", "Thanks, that is all.")
EXAMPLE_TIMEOUT_S = 30.0  # a conversation that hangs fails its example, not the whole run

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


@tool
async def transfer(ctx: ToolContext, ref: str, ms: int) -> str:
    """Put the booking through, saying so (side-effecting; speaks with ctx.say)."""
    _ran("start", "transfer", ctx)
    await ctx.say(SAY)
    await anyio.sleep(ms / 1000)
    _ran("finish", "transfer", ctx)
    return f"transferred {ref}"


@tool(timeout=5)
async def end_call(ctx: ToolContext, ref: str, ms: int) -> str:
    """Say goodbye and hang up (side-effecting)."""
    _ran("start", "end_call", ctx)
    await ctx.say(GOODBYE)
    await ctx.end_call()  # returns once what is queued has played
    _ran("finish", "end_call", ctx)
    return f"ended {ref}"


TOOLS = [book_table, send_sms, search_menu, convert_units, transfer, end_call]
RESULTS = {  # what each returns, by its ref
    "book_table": "booked {}",
    "send_sms": "sent {}",
    "search_menu": "found {}",
    "convert_units": "converted {}",
    "transfer": "transferred {}",
    "end_call": "ended {}",
}
SIDE_EFFECTING = {"book_table", "send_sms", "transfer", "end_call"}
INTERRUPTIBLE_ASYNC = {"search_menu"}
SYNC = {"convert_units"}
ORDINARY = ["book_table", "send_sms", "search_menu", "convert_units", "transfer"]

# -- the drawn case -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    tool: str
    fragments: int
    ms: int


@dataclass(frozen=True)
class LLMFault:
    """A fault of the Electron fake, armed for the session's ``request``-th LLM request."""

    request: int  # 1-based, in the order the engine asks
    # "fail" (``times`` × ``status``), "cut" (after ``chunks`` SSE events), "stall" (the
    # headers ``seconds`` late), "pause" (quiet for ``seconds`` after ``chunks`` events)
    kind: str
    status: int = 503
    times: int = 1
    chunks: int = 0
    seconds: float = 0.0

    def arm(self, faults: Faults) -> None:
        if self.kind == "fail":
            faults.fail_next(self.times, status=self.status)
        elif self.kind == "cut":
            faults.cut_after(self.chunks)
        elif self.kind == "stall":
            faults.stall_next(seconds=self.seconds)
        elif self.kind == "pause":
            faults.pause_after(self.chunks, seconds=self.seconds)
        else:
            raise ValueError(self.kind)


@dataclass(frozen=True)
class TTSFault:
    """Every TTS request whose phrase contains ``words`` fails after ``after`` audio chunks
    (``TestTTS.fail``: a TTS's error frame, a crashed synthesiser)."""

    words: str
    after: int


@dataclass(frozen=True)
class Case:
    filler: str
    calls: tuple[Call, ...]
    answer: str
    token_ms: float
    # Turn 1's and turn 2's barge-in: an index into that turn's observable events (past its
    # end: no barge-in), or None: that turn is never cut. Turn 3 is never cut.
    cuts: tuple[int | None, int | None]
    drain: bool = False  # Session(drain_on_interrupt=...)
    llm_fault: LLMFault | None = None
    tts_fault: TTSFault | None = None

    def script(self) -> list[dict[str, Any]]:
        tool_calls = [
            {"name": c.tool, "arguments": {"ref": f"c{i}", "ms": c.ms}, "fragments": c.fragments}
            for i, c in enumerate(self.calls)
        ]
        first: dict[str, Any] = {"tool_calls": tool_calls}
        if self.filler:
            first["text"] = self.filler
        return [first, {"text": self.answer}, *[{"text": LATER}] * 8]


# -- observers: a client and a speaker that count what passes, and change nothing ---------


class CountingClient(ElectronClient):
    """An ElectronClient that reports each request as it is made and every chunk it hands
    to the engine, tagged with the request's number."""

    def __init__(self, base_url: str, on_request: Any, on_chunk: Any) -> None:
        super().__init__(base_url, retry=RetryPolicy(scale=0.001))
        self.on_request, self.on_chunk = on_request, on_chunk

    def stream(self, messages: Any, **options: Any) -> Any:  # the same stream, observed
        tag = self.on_request()
        return _CountedStream(super().stream(messages, **options), self.on_chunk, tag)


class _CountedStream:
    """The wrapped stream in every respect (``contended``, ``usage``, …), chunks counted."""

    def __init__(self, inner: Any, on_chunk: Any, tag: Any) -> None:
        self.inner, self.on_chunk, self.tag = inner, on_chunk, tag

    def __getattr__(self, name: str) -> Any:  # only for what is not defined here
        return getattr(self.inner, name)

    async def __aenter__(self) -> _CountedStream:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    def __aiter__(self) -> _CountedStream:
        return self

    async def __anext__(self) -> Any:
        chunk = await self.inner.__anext__()
        self.on_chunk(chunk, self.tag)
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


@dataclass
class Turn:
    """One user turn as the caller saw it."""

    index: int  # 0-based: USERS[index] started it
    timeline: TurnTimeline
    start: int  # speaker samples when it began: its audio is between this and ``boundary``
    observed: list[str] = field(default_factory=list)  # its observable events, in order
    requests: list[int] = field(default_factory=list)  # its LLM requests' numbers
    cut_at: int | None = None  # how many of them had happened when the caller barged in
    executions_at_cut: int = 0  # len(EXECUTIONS) then
    boundary: int = 0


@dataclass
class Outcome:
    case: Case
    session: Session
    server: ElectronServer
    tts: TestTTS
    speaker: CountingSpeaker
    turns: list[Turn] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)  # each TurnEnded's TurnResult
    in_flight_at_end: int = 0
    tasks_left: list[str] = field(default_factory=list)
    unclosed: list[str] = field(default_factory=list)  # async generators never closed


async def converse(case: Case, server: ElectronServer) -> Outcome:
    """Up to three user turns, each of the first two cut at its drawn event (if any), then
    the caller hangs up — unless the agent hung up first (``end_call``)."""
    server.script = Script.from_data(case.script())
    server.token_ms = case.token_ms
    server.faults.clear()
    del server.requests[:]  # this example's requests only
    EXECUTIONS.clear()
    n = len(USERS)
    cut = [anyio.Event() for _ in range(n)]
    over = [anyio.Event() for _ in range(n)]
    cuts = [*case.cuts, None][:n]
    requests = [0]
    outcome: Outcome

    def current() -> Turn | None:
        turns = outcome.turns
        return turns[-1] if turns and not over[turns[-1].index].is_set() else None

    def observe(kind: str, turn: Turn | None = None) -> None:
        now = current()
        if now is None or (turn is not None and turn is not now):
            return  # between turns, or a drained stream of an earlier turn
        now.observed.append(kind)
        if len(now.observed) == cuts[now.index]:
            cut[now.index].set()

    def on_request() -> Turn | None:
        requests[0] += 1
        now = current()
        if now is not None:
            now.requests.append(requests[0])
        fault = case.llm_fault
        if fault is not None and fault.request == requests[0]:
            fault.arm(server.faults)
        return now

    speaker = CountingSpeaker(lambda: observe("audio.block"))
    send, lines = anyio.create_memory_object_stream[str](math.inf)
    tts = TestTTS(RATE, first_byte_ms=1, ms_per_char=MS_PER_CHAR)
    if case.tts_fault is not None:
        tts.fail(case.tts_fault.words, after_chunks=case.tts_fault.after)
    session = Session(
        Agent(instructions="You book tables.", tools=TOOLS, temperature=0),
        ConsoleTransport(speaker, lines=lines),
        tts=tts,
        llm=CountingClient(
            server.base_url, on_request, lambda chunk, turn: observe(chunk_kind(chunk), turn)
        ),
        idle_timeout_s=None,
        reprompt=None,
        drain_on_interrupt=case.drain,
    )
    outcome = Outcome(case, session, server, tts, speaker)
    publish = session.timeline.on_event

    def on_event(timeline: TurnTimeline, event: TimelineEvent) -> None:
        turns = outcome.turns
        if not any(t.timeline is timeline for t in turns):  # a user turn begins
            turns.append(Turn(len(turns), timeline, speaker.position))
        now = current()
        if now is not None and timeline is now.timeline:
            observe(event.kind)
            if event.kind == "turn.end":
                now.boundary = speaker.position
                over[now.index].set()
        assert publish is not None
        publish(timeline, event)

    session.timeline.on_event = on_event
    ended = session.events()

    async def caller() -> None:
        send.send_nowait(USERS[0])
        for k in range(n):
            async with anyio.create_task_group() as race:

                async def barge_in(k: int = k) -> None:
                    await cut[k].wait()
                    turn = outcome.turns[k]
                    if not over[k].is_set():
                        turn.cut_at = len(turn.observed)
                        turn.executions_at_cut = len(EXECUTIONS)
                        session.interrupt()
                    race.cancel_scope.cancel()

                async def wait_over(k: int = k) -> None:
                    await over[k].wait()
                    race.cancel_scope.cancel()

                race.start_soon(barge_in)
                race.start_soon(wait_over)
            if k + 1 < n:  # the next turn at once, even while a cut turn still winds down
                with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    send.send_nowait(USERS[k + 1])
        send.close()  # the caller hangs up after the last turn

    async def listen() -> None:
        async for happened in ended:  # until the session ends
            if isinstance(happened, TurnEnded):
                outcome.results.append(happened.result)

    before = set(asyncio.all_tasks())
    libraries: set[asyncio.Task[Any]] = set()
    hooks = sys.get_asyncgen_hooks()
    loop = asyncio.get_running_loop()

    def finalizer(agen: Any) -> None:  # an async generator dropped without being closed
        frame = agen.ag_frame
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "?"
        if "site-packages" not in where:
            outcome.unclosed.append(f"{agen.__qualname__} at {where}")
        if loop.is_closed():  # collected after its loop ended: no task closes it now
            return
        if "site-packages" in where:  # openai's and httpx's SSE readers are left to the GC
            # closed as asyncio would (a task made at the loop's next turn), but known: the
            # task is the library's, not one of ours left running
            loop.call_soon_threadsafe(lambda: libraries.add(loop.create_task(agen.aclose())))
        else:
            assert hooks.finalizer is not None
            hooks.finalizer(agen)  # asyncio closes it in a task of its own

    # The hook stays until the tasks left are counted: a generator the collector finalizes
    # in between is sorted too (a library's closing task is not ours; ours is unclosed),
    # not counted as a task left running (once seen: 'async_generator_athrow').
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        await _run(session, listen, caller)
        outcome.in_flight_at_end = session.engine.executor.in_flight
        await anyio.lowlevel.checkpoint()
        outcome.tasks_left = sorted(
            f"{t.get_name()} ({_where(t)})"
            for t in set(asyncio.all_tasks()) - before - libraries
            if not _server_task(t)
        )
    finally:
        sys.set_asyncgen_hooks(*hooks)
    server.faults.clear()
    return outcome


async def _run(session: Session, listen: Any, caller: Any) -> None:
    """The session, the caller and the events' listener, until the session ends."""
    calling = anyio.CancelScope()

    async def call() -> None:
        with calling:
            await caller()

    with anyio.fail_after(EXAMPLE_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            tg.start_soon(call)
            await session.run()
            calling.cancel()  # the agent hung up: the caller's later turns never come


def _where(task: asyncio.Task[Any]) -> str:
    """What a task runs and where it waits, to find whose it is."""
    frames = task.get_stack()
    at = f"{frames[-1].f_code.co_filename}:{frames[-1].f_lineno}" if frames else "not started"
    coro = task.get_coro()  # an unclosed async generator's aclose() when GC finalised it
    return f"{getattr(coro, '__qualname__', type(coro).__name__)} at {at}"


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
    segment: int
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


def heard_segments(outcome: Outcome, turn: Turn) -> list[Heard]:
    """A turn's segments in order, with the samples of each the speaker really played.

    A segment plays after the one before it has played to its end, was cut, or failed (its
    TTS stopped short: the next one follows what of it had been made)."""
    pcm = np.frombuffer(outcome.speaker.samples[2 * turn.start : 2 * turn.boundary], np.int16)
    audio = pcm[pcm != 0].tobytes()  # TestTTS never makes a zero: zeros are silence
    heard, at = [], 0
    for e in turn.timeline.events:
        if e.kind != "tts.request":
            continue
        segment = outcome.speaker.segments.get(e.attrs["segment"])
        text = segment.text if segment is not None else ""  # never offered: never played
        whole = tone(text)
        played = common_prefix(audio[2 * at :], whole)
        if segment is not None:  # never more than its TTS made (a failed one made less)
            played = min(played, segment.received)
        at += played
        heard.append(Heard(e.attrs["segment"], e.attrs["round"], text, played, len(whole) // 2))
    assert 2 * at == len(audio), "the speaker played audio no segment accounts for"
    return heard


# -- the properties -----------------------------------------------------------------------


def check(outcome: Outcome) -> None:
    session, case = outcome.session, outcome.case
    history = session.history.messages()
    for turn in outcome.turns:
        note(f"turn {turn.index + 1} observed: {turn.observed}")
        note(f"turn {turn.index + 1} cut at: {turn.cut_at}; requests {turn.requests}")
    note(f"executions: {EXECUTIONS}")
    note("history:\n" + "\n".join(json.dumps(m) for m in history))

    # The API's rules, for the history and for every request the engine sent.
    validate_messages(history)
    for request in outcome.server.requests:
        validate_messages(request.messages)
    # Each turn that happened is in history, in order; the session did not end early.
    roles = [m["role"] for m in history]
    users = [i for i, role in enumerate(roles) if role == "user"]
    assert roles[0] == "system" and users[0] == 1
    assert [history[i]["content"] for i in users] == list(USERS[: len(users)])
    assert len(outcome.turns) == len(users) == len(outcome.results)
    ended_by = [hung_up(outcome, turn) for turn in outcome.turns]
    if any(ended_by):
        assert ended_by.index(True) == len(users) - 1, "the session went on after end_call"
    else:
        assert len(users) == len(USERS), "the session ended early"

    calls = {
        c["id"]: (c["function"]["name"], json.loads(c["function"]["arguments"])["ref"])
        for m in history
        if m["role"] == "assistant"
        for c in m.get("tool_calls", [])
    }
    answers = {m["tool_call_id"]: parsed(m["content"]) for m in history if m["role"] == "tool"}
    bounds = [*users[1:], len(history)]
    for turn, first, end in zip(outcome.turns, users, bounds, strict=True):
        check_turn(outcome, turn, history[first + 1 : end], calls, answers)

    # Executions: none twice; each call that ran answered with its own result, or cancelled
    # only where DESIGN.md allows it.
    starts = [call_id for what, _, call_id in EXECUTIONS if what == "start"]
    finishes = {call_id for what, _, call_id in EXECUTIONS if what == "finish"}
    assert len(starts) == len(set(starts)), "a tool call ran twice"
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

    # Nothing left running but abandoned sync tools, which still hold their slots.
    assert not outcome.tasks_left, f"tasks left running: {outcome.tasks_left}"
    assert not outcome.unclosed, f"async generators never closed: {outcome.unclosed}"
    abandoned = [c for c in calls if calls[c][0] in SYNC and answers[c] == CANCELLED]
    assert outcome.in_flight_at_end <= len(abandoned)
    if abandoned:
        event("abandoned a sync tool")
    if case.llm_fault is not None:
        event(f"LLM fault: {case.llm_fault.kind}")
    if case.tts_fault is not None:
        event("TTS fault")


def check_turn(
    outcome: Outcome,
    turn: Turn,
    messages: list[dict[str, Any]],
    calls: dict[str, tuple[str, str]],
    answers: dict[str, Any],
) -> None:
    """One turn's messages: its assistant text equals its heard text, segment by segment,
    round by round; its calls answered before the next user message; its end's reason."""
    number = turn.index + 1
    segments = heard_segments(outcome, turn)
    note(f"turn {number} heard: " + repr([(h.text, h.played, h.total) for h in segments]))
    said = [m for m in messages if m["role"] == "assistant"]
    made_any = any(m.get("tool_calls") for m in said)
    heard = {
        rnd: " ".join(" ".join(h.words for h in segments if h.round == rnd).split())
        for rnd in sorted({h.round for h in segments})
    }
    expected = [heard.get(1, "")] if heard.get(1) or made_any else []
    expected += [text for rnd, text in heard.items() if rnd > 1 and text]
    assert [m["content"] or "" for m in said] == expected, f"turn {number}: not what was heard"
    assert all(not m.get("tool_calls") for m in said[1:])

    ids = {e.attrs["call_id"] for e in turn.timeline.events if e.kind == "tool.args_ready"}
    made = [call_id for call_id in calls if call_id in ids]
    if number < len(outcome.turns):  # every call answered before the next user message
        after = USERS[number]
        asked = next(r.messages for r in outcome.server.requests if after in json.dumps(r.messages))
        assert {m.get("tool_call_id") for m in asked} >= set(made)
    # A call that had not started when the caller barged in never runs.
    if turn.cut_at is not None:
        late = [
            (name, call_id)
            for what, name, call_id in EXECUTIONS[turn.executions_at_cut :]
            if what == "start" and call_id in ids and name not in SYNC
        ]
        assert not late, f"calls of the discarded generation started after the barge-in: {late}"

    # Why the turn ended: cut, hung up (its speech played first), failed (with an apology
    # said), or completed.
    (end,) = [e for e in turn.timeline.events if e.kind == "turn.end"]
    reason = end.attrs["reason"]
    result = outcome.results[turn.index]
    if turn.cut_at is not None:
        assert reason == "cancelled"
    elif hung_up(outcome, turn):
        goodbye = [h for h in segments if h.text == GOODBYE]
        fault = outcome.case.tts_fault
        if fault is None or fault.words not in GOODBYE:  # else it failed: never heard whole
            assert goodbye and all(h.played == h.total for h in goodbye), "no goodbye heard"
    elif reason == "error":
        fault = outcome.case.llm_fault
        # armed as the engine opens request N, it hits the next request sent (N itself, or
        # a later one when a barge-in before N was open meant N was never sent)
        assert fault is not None and max(turn.requests) >= fault.request
        assert APOLOGY in result.said, "a failed turn said no apology"
    else:
        assert reason == "completed"


def hung_up(outcome: Outcome, turn: Turn) -> bool:
    """An end_call of this turn ran: the session ends with it."""
    ids = {e.attrs["call_id"] for e in turn.timeline.events if e.kind == "tool.args_ready"}
    return any(w == "start" and n == "end_call" and c in ids for w, n, c in EXECUTIONS)


def parsed(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content  # a tool's plain-text result


def phase(outcome: Outcome, turn: Turn) -> str:
    """Where a turn's cut fell, for hypothesis's statistics."""
    if turn.cut_at is None:
        return "no cut"
    seen = turn.observed[: turn.cut_at]
    last = seen[-1] if seen else ""
    if "llm.first_token" not in seen:
        return "before the first token"
    if seen.count("llm.request") > 1:
        return "during the follow-up"
    if last == "chunk.arguments":
        return "mid-arguments"
    if last == "audio.block":
        return "mid-speech"
    if seen.count("tool.start") > seen.count("tool.end"):
        return "while tools run"
    return "mid-stream"


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
