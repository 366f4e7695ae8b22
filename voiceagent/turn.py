"""The turn engine: LLM rounds, text to speech at once, each tool started the moment its
arguments are complete, the follow-up sent the moment the tools finish (its audio queues
behind whatever still plays), bounded rounds, and committing what was heard to history."""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from voiceagent.agent import Agent
from voiceagent.history import History
from voiceagent.llm import ElectronClient, ElectronError
from voiceagent.phrases import QUIET_FLUSH_MS, PhraseSplitter, PhraseText
from voiceagent.reading import read_stream
from voiceagent.rounds import Round, TurnResult, commit_heard
from voiceagent.speech import Segment, SpeechQueue
from voiceagent.stream import (
    Finished,
    StreamParser,
    TextDelta,
    ToolCallReady,
    ToolCallStarted,
    Usage,
)
from voiceagent.timeline import Timeline, TurnTimeline
from voiceagent.toolkit import ToolCall, ToolCallState, ToolContext, ToolExecutor

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, I'm having trouble answering right now. Please try again in a moment."


class FollowUp(enum.Enum):
    """When a tool round's follow-up request is sent."""

    IMMEDIATE = "immediate"  # the moment the tools finish (ours)
    AFTER_PLAYBACK = "after_playback"  # once the filler has played (pipecat, LiveKit): a baseline


class TurnEngine:
    """Runs turns of one agent over one conversation (its history and timeline)."""

    def __init__(
        self,
        agent: Agent,
        llm: ElectronClient,
        history: History,
        timeline: Timeline,
        *,
        speech: SpeechQueue | None = None,
        executor: ToolExecutor | None = None,
        follow_up: FollowUp = FollowUp.IMMEDIATE,
        on_text: Callable[[str], None] | None = None,
        metadata: dict[str, Any] | None = None,
        end_call: Callable[[], Awaitable[None]] | None = None,
        session: object | None = None,
        drain_on_interrupt: bool = False,
        background: TaskGroup | None = None,
        quiet_flush_ms: float = QUIET_FLUSH_MS,
    ) -> None:
        self.agent = agent
        self.llm = llm
        self.history = history
        self.timeline = timeline
        self.speech = speech
        self.executor = executor or ToolExecutor(agent.registry)
        self.follow_up = follow_up
        self.on_text = on_text
        self.metadata = metadata or {}
        self.end_call = end_call
        self.session = session
        # an interrupted stream is read to its end (exact usage) in ``background``, the
        # session's task group; otherwise it is closed and its usage marked estimated
        self.drain_on_interrupt = drain_on_interrupt
        self.background = background
        self.last: TurnResult | None = None  # the latest turn's result, even a cancelled one
        self._muted = False  # interrupted: nothing more of this turn is spoken
        # a held phrase end ("3." may be "3.5") is flushed after this long without a delta
        self.quiet_flush_ms = quiet_flush_ms
        self._quiet: anyio.CancelScope | None = None  # that timer, while one runs

    async def run(
        self,
        text: str | None,
        *,
        trigger: str = "user",
        start_ms: float | None = None,
        speech: tuple[float, float, str] | None = None,
    ) -> TurnResult:
        """One turn: ``text`` from the user (None for a turn the agent starts).

        For spoken input, ``start_ms`` is when the user's speech started (the turn's t=0)
        and ``speech`` is (speech end, final transcript arrival, its text) on the session
        clock, marked as ``user.speech_end`` and ``stt.final``.
        """
        tl = self.timeline.start_turn(trigger=trigger, start_ms=start_ms)
        if speech is not None:
            speech_end, final, transcript = speech
            tl.mark("user.speech_end", at_ms=speech_end)
            tl.mark("stt.final", at_ms=final, text=transcript)
        if text is not None:
            self.history.add_user(text)
        return await self._turn(tl, self._rounds, new_turn=text is None)

    async def speak(self, text: str, *, trigger: str = "greeting") -> TurnResult:
        """A turn of fixed words, no LLM (the greeting, a re-prompt); committed when heard."""
        tl = self.timeline.start_turn(trigger=trigger)

        async def say(tg: TaskGroup, tl: TurnTimeline, rounds: list[Round]) -> str:
            rounds.append(Round(1))
            self._say(tg, tl, rounds[0], text)
            return "completed"

        return await self._turn(tl, say, new_turn=True)

    def interrupt(self) -> None:
        """Barge-in: the running turn speaks no more, from the speaker's next block.

        Its scope is cancelled by the caller; this silences it at once, even while a
        side-effecting tool is still finishing (its result is kept).
        """
        self._muted = True
        if self.speech is not None:
            self.speech.cancel()

    async def _turn(
        self,
        tl: TurnTimeline,
        body: Callable[[TaskGroup, TurnTimeline, list[Round]], Awaitable[str]],
        *,
        new_turn: bool,
    ) -> TurnResult:
        self._muted = False
        rounds: list[Round] = []
        reason = "cancelled"
        try:
            async with anyio.create_task_group() as tg:
                outcome = await body(tg, tl, rounds)
                for rnd in rounds:
                    for segment in rnd.segments:
                        await segment.wait()
                # only once everything has played; a barge-in ends the segments it cuts, so
                # the wait can end before the turn's cancellation arrives: not completed
                reason = "cancelled" if self._muted else outcome
        finally:
            if self.speech is not None:  # nothing of this turn plays after it ends
                self.speech.cancel([s for r in rounds for s in r.segments if not s.finished])
            messages, heard, said = commit_heard(rounds, spoken=self.speech is not None)
            self.history.commit(messages, new_turn=new_turn)
            tl.mark("turn.end", reason=reason)
            self.last = TurnResult(heard, said, [c for r in rounds for c in r.calls], tl, reason)
        return self.last

    async def _rounds(self, tg: TaskGroup, tl: TurnTimeline, rounds: list[Round]) -> str:
        tools = self.agent.registry.catalog() if len(self.agent.registry) else None
        last = self.agent.max_tool_rounds + 1 if tools else 1
        for number in range(1, last + 1):
            if rounds and self.follow_up is FollowUp.AFTER_PLAYBACK:
                for segment in rounds[-1].segments:
                    await segment.wait()
            rnd = Round(number)
            rounds.append(rnd)
            tool_choice = "none" if tools and number == last else None
            try:
                await self._stream(tg, tl, rnd, rounds, tools, tool_choice)
            except ElectronError as error:
                logger.warning("turn round %d failed: %s", number, error)
                self._say(tg, tl, rnd, APOLOGY)
                await self._calls_done(rnd)
                return "error"
            if not rnd.calls:
                return "completed"
            await self._calls_done(rnd)
        return "completed"

    async def _stream(
        self,
        tg: TaskGroup,
        tl: TurnTimeline,
        rnd: Round,
        rounds: list[Round],
        tools: list[dict[str, Any]] | None,
        tool_choice: str | None,
    ) -> None:
        self.history.check_prefix(self.agent.registry.catalog_json)
        messages = self.history.messages()
        for earlier in rounds[:-1]:
            messages.append(earlier.request_message())
            messages.extend(c.tool_message() for c in earlier.calls if c.content is not None)
        agent = self.agent
        parser, splitter = StreamParser(), PhraseSplitter(language=agent.language)
        segment: list[Segment | None] = [None]
        tl.mark("llm.request", round=rnd.number)
        ended = [False]

        def sent(waited_s: float) -> None:
            # a request that waited for a concurrency slot: llm.request → llm.slot is the wait
            if waited_s > 0 and not ended[0]:
                tl.mark("llm.slot", round=rnd.number, waited_ms=round(waited_s * 1000.0, 1))

        drained = False  # the interrupted stream is read to its end in the background
        stream = self.llm.stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            temperature=agent.temperature,
            seed=agent.seed,
            max_tokens=agent.max_tokens,
            stop=agent.stop,
            model=agent.model,
            on_send=sent,
        )
        try:
            async with read_stream(
                stream, tl, self.background if self.drain_on_interrupt else None
            ) as (
                chunks,
                drain,
            ):
                try:
                    async for chunk in chunks:
                        for event in parser.feed(chunk):
                            self._on_event(tg, tl, rnd, event, splitter, segment, tool_choice)
                except anyio.get_cancelled_exc_class():
                    drained = drain()
                    raise
            for event in parser.finish():
                self._on_event(tg, tl, rnd, event, splitter, segment, tool_choice)
            self._speak(tg, tl, rnd, splitter.finish(), segment)
        except ElectronError:
            self._speak(tg, tl, rnd, splitter.finish(), segment)  # what arrived is spoken
            raise
        finally:
            # usage the turn did not read: the stream's (an estimate if it never came, and
            # nothing for a request the server never accepted)
            usage = None if rnd.usage_seen or drained else stream.usage_to_bill()
            if usage is not None:
                tl.add_usage(usage.prompt, usage.completion, usage.cached, usage.estimated)
            ended[0] = True
            tl.mark("llm.end", round=rnd.number)
            if self._quiet is not None:
                self._quiet.cancel()

    def _on_event(
        self,
        tg: TaskGroup,
        tl: TurnTimeline,
        rnd: Round,
        event: object,
        splitter: PhraseSplitter,
        segment: list[Segment | None],
        tool_choice: str | None,
    ) -> None:
        if isinstance(event, (TextDelta, ToolCallStarted)) and not rnd.first_token:
            rnd.first_token = True
            tl.mark("llm.first_token", round=rnd.number)
        if self._quiet is not None:  # the stream went on: the held end is its to decide
            self._quiet.cancel()
            self._quiet = None
        if isinstance(event, TextDelta):
            rnd.content += event.text
            if self.on_text is not None:
                self.on_text(event.text)
            # a phrase is flushed at the token that completes it: Lightning starts only then
            pieces = splitter.feed(event.text) + splitter.flush_complete()
            self._speak(tg, tl, rnd, pieces, segment)
            if splitter.end_pending:
                self._quiet = anyio.CancelScope()
                tg.start_soon(self._flush_when_quiet, tg, tl, rnd, splitter, segment, self._quiet)
        elif isinstance(event, ToolCallStarted):
            self._speak(tg, tl, rnd, splitter.flush(), segment)  # the model's words are done
            if tool_choice == "none":
                return  # the model was told not to call tools: such a call is never run
            call = ToolCall(event.call_id, event.name, index=event.index, round=rnd.number)
            rnd.calls.append(call)
            tool = self.agent.registry.get(event.name)
            if tool is not None and tool.filler and self.speech is not None:
                tg.start_soon(self._filler, tg, tl, rnd, call, tool.filler, tool.filler_delay)
        elif isinstance(event, ToolCallReady):
            call_or_none = next((c for c in rnd.calls if c.id == event.call_id), None)
            if call_or_none is None or call_or_none.state is not ToolCallState.PENDING:
                return
            call_or_none.arguments = event.arguments
            rnd.done[call_or_none.id] = anyio.Event()
            tl.mark("tool.args_ready", name=event.name, call_id=event.call_id, round=rnd.number)
            tg.start_soon(self._run_call, tg, tl, rnd, call_or_none, name=f"tool {event.name}")
        elif isinstance(event, Usage):
            rnd.usage_seen = True
            tl.add_usage(
                prompt=event.prompt,
                completion=event.completion,
                cached=event.cached,
                estimated=event.estimated,
            )
        elif isinstance(event, Finished):
            rnd.finish_reason = event.finish_reason

    def _speak(
        self,
        tg: TaskGroup,
        tl: TurnTimeline,
        rnd: Round,
        pieces: list[PhraseText],
        segment: list[Segment | None],
    ) -> None:
        """Phrase pieces to segments: fragments stream to the TTS, a phrase end flushes."""
        if self.speech is None or self._muted:
            return
        for piece in pieces:
            current = segment[0]
            if current is None:
                current = segment[0] = self.speech.open(tg, round=rnd.number, timeline=tl)
                rnd.segments.append(current)
            current.send(piece.text)
            if piece.end:
                current.end()
                segment[0] = None

    async def _flush_when_quiet(
        self,
        tg: TaskGroup,
        tl: TurnTimeline,
        rnd: Round,
        splitter: PhraseSplitter,
        segment: list[Segment | None],
        scope: anyio.CancelScope,
    ) -> None:
        """A held phrase end that the next delta would decide ("3." or "3.5"): no delta for
        `quiet_flush_ms`, and it is the end (cancelled when a delta comes first)."""
        with scope:
            await anyio.sleep(self.quiet_flush_ms / 1000.0)
            if splitter.end_pending:
                self._speak(tg, tl, rnd, splitter.flush(), segment)

    def _say(self, tg: TaskGroup, tl: TurnTimeline, rnd: Round, text: str) -> None:
        """Speak a whole phrase of ours (a filler, an apology, a tool's ctx.say())."""
        if self._muted:
            return
        rnd.spoken.append(text)
        if self.on_text is not None:
            self.on_text(text)
        if self.speech is None:
            return
        segment = self.speech.open(tg, round=rnd.number, timeline=tl)
        rnd.segments.append(segment)
        segment.send(text)
        segment.end()

    async def _filler(
        self,
        tg: TaskGroup,
        tl: TurnTimeline,
        rnd: Round,
        call: ToolCall,
        filler: str,
        delay: float,
    ) -> None:
        await anyio.sleep(delay)
        if call.is_terminal or rnd.content.strip() or rnd.spoken:
            return  # the model spoke for itself, the call is done, or a filler already plays
        self._say(tg, tl, rnd, filler)

    async def _run_call(self, tg: TaskGroup, tl: TurnTimeline, rnd: Round, call: ToolCall) -> None:
        async def say(text: str) -> None:
            self._say(tg, tl, rnd, text)

        ctx = ToolContext(
            call.id, session=self.session, metadata=self.metadata, say=say, end_call=self.end_call
        )
        attrs: dict[str, Any] = {"name": call.name, "call_id": call.id, "round": rnd.number}
        marked: list[ToolCall] = []

        def on_start(started: ToolCall) -> None:
            marked.append(started)
            tl.mark("tool.start", **attrs)

        try:
            await self.executor.run(call, ctx, on_start=on_start)
        finally:
            if call.started_at is not None:  # a call that never started has no tool events
                if not marked:  # rejected at once (unknown tool, bad arguments)
                    tl.mark("tool.start", **attrs)
                tl.mark("tool.end", state=call.state.value, **attrs)
            rnd.done[call.id].set()

    async def _calls_done(self, rnd: Round) -> None:
        """Until every call of the round that was started has ended (in any state)."""
        for done in list(rnd.done.values()):
            await done.wait()
