"""A conversation over a transport: the greeting, listening, the end of each user turn,
barge-in, the idle re-prompt and hang-up, with events for applications and a transcript."""

from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from voiceagent.agent import Agent
from voiceagent.history import History
from voiceagent.llm import ElectronClient, resolve_llm_endpoint
from voiceagent.ports import STT, TTS, VAD, Transport
from voiceagent.rounds import TurnResult
from voiceagent.session_events import (
    AgentSpeechEnded,
    AgentSpeechStarted,
    BargeIn,
    Broadcast,
    SessionEvent,
    ToolFinished,
    ToolStarted,
    TurnEnded,
    TurnStarted,
    UserSpeechEnded,
    UserSpeechStarted,
    UserTranscript,
    iterate,
)
from voiceagent.speech import SpeechQueue
from voiceagent.timeline import SessionClock, Timeline, TimelineEvent, TurnTimeline
from voiceagent.transcript import Transcript
from voiceagent.turn import FollowUp, TurnEngine
from voiceagent.turn_taking import TurnTaker, Utterance

logger = logging.getLogger(__name__)

REPROMPT = "Are you still there?"


class Session:
    """Runs ``agent`` over ``transport`` until hang-up, an idle limit or a maximum duration.

    ``stt`` and ``vad`` listen (without them only typed text is heard; without a VAD the
    STT's own speech events are used); ``tts`` speaks into the transport's output (without
    it the agent's words are only in the events). ``llm`` defaults to Electron (or
    ``ELECTRON_BASE_URL``) by DESIGN.md's table. Barge-in: user speech while the agent
    speaks (the VAD's minimum speech duration filters clicks and coughs) cancels the turn;
    history keeps only what was heard. The cut LLM stream is closed and its usage marked
    estimated; with ``drain_on_interrupt`` it is read to its end without speaking, in the
    session's task group, when no other request waits for its concurrency slot.
    ``follow_up`` is when a tool round's follow-up request is sent: the moment the tools
    finish (``FollowUp.IMMEDIATE``, the default), or once the filler has played
    (``FollowUp.AFTER_PLAYBACK``, as other frameworks do: a baseline for comparisons).

    ``await session.ready()`` returns once the session is up; ``session.send_text(text)``
    then starts a user turn from text, exactly as a typed line would, over any transport.
    """

    def __init__(
        self,
        agent: Agent,
        transport: Transport,
        stt: STT | None = None,
        tts: TTS | None = None,
        vad: VAD | None = None,
        *,
        llm: ElectronClient | None = None,
        barge_in: bool = True,
        end_of_turn_ms: float = 0.0,
        idle_timeout_s: float | None = 15.0,
        reprompt: str | None = REPROMPT,
        max_duration_s: float | None = None,
        transcript: str | os.PathLike[str] | None = None,
        clock: SessionClock | None = None,
        drain_on_interrupt: bool = False,
        follow_up: FollowUp = FollowUp.IMMEDIATE,
    ) -> None:
        self.agent = agent
        self.transport = transport
        self.stt, self.tts, self.vad = stt, tts, vad
        self.barge_in = barge_in
        self.idle_timeout_s = idle_timeout_s
        self.reprompt = reprompt
        self.max_duration_s = max_duration_s
        self.transcript_path = Path(transcript) if transcript is not None else None
        self._transcript = Transcript(self.transcript_path) if self.transcript_path else None
        origin = getattr(transport.output, "origin", None)
        self.clock = clock or SessionClock(origin if isinstance(origin, float) else None)
        self.timeline = Timeline(self.clock, on_event=self._on_timeline_event)
        self.history = History(agent.instructions, context=agent.context)
        self.speech = SpeechQueue(tts) if tts is not None else None
        self.engine = TurnEngine(
            agent,
            llm or _llm_from_environment(agent),
            self.history,
            self.timeline,
            speech=self.speech,
            metadata=dict(transport.metadata),
            end_call=self.hang_up,
            drain_on_interrupt=drain_on_interrupt,
            follow_up=follow_up,
        )
        self.end_of_turn_ms = end_of_turn_ms
        self.ended: str | None = None  # why the session ended
        self._events = Broadcast()
        self._turn_scope: anyio.CancelScope | None = None
        self._session_scope: anyio.CancelScope | None = None
        self._taker: TurnTaker | None = None
        self._utterances: MemoryObjectSendStream[Utterance] | None = None  # while running
        self._ready = anyio.Event()
        self._not_up: set[str] = set()  # what ready() still waits for
        self._heard_at = 0.0  # session ms of the user's latest sign of life
        # LLM streams open (from the timeline's llm.request / llm.end): what they still say
        # (a phrase the splitter holds until the stream ends) is not queued yet
        self._streaming = 0
        self._streams_ended: anyio.Event | None = None  # unset while a stream is open

    async def ready(self) -> None:
        """Until the session is up: the speaker started, the transport's input being read
        (and the STT's stream open), and the greeting, if any, queued (not played: it may
        still be playing). Returns at once once the session has ended (``self.ended``)."""
        await self._ready.wait()

    def send_text(self, text: str) -> None:
        """The user's turn from ``text``, exactly as a typed line from the transport: a
        barge-in when the agent is talking, then a turn with these words (blank text is
        ignored). Works over any transport; the session must be running (``ready()``)."""
        if self._taker is None or self._utterances is None or self.ended is not None:
            raise RuntimeError("the session is not running: await session.ready() first")
        try:
            self._taker._typed(text, self._utterances)
        except anyio.ClosedResourceError:  # the user hung up a moment ago
            raise RuntimeError("the session is not running: it is ending") from None

    def events(self) -> AsyncIterator[SessionEvent]:
        """The session's events from now on, until it ends (subscribe before ``run``)."""
        return iterate(self._events.subscribe())

    async def run(self) -> None:
        """The whole conversation; returns when it has ended (``self.ended`` says why)."""
        async with anyio.create_task_group() as writing:  # outlives the call: its last lines
            if self._transcript is not None:
                writing.start_soon(self._transcript.run)
            try:
                await self._run()
            finally:
                if self._transcript is not None:
                    self._transcript.close()  # the writer ends once it has written the rest

    async def _run(self) -> None:
        send, utterances = anyio.create_memory_object_stream[Utterance](math.inf)
        taker = TurnTaker(
            self.clock,
            self.transport.input_rate,
            stt=self.stt,
            vad=self.vad,
            end_of_turn_ms=self.end_of_turn_ms,
            publish=self._publish,
            on_speech=self._user_spoke,
        )
        self._taker, self._utterances = taker, send
        greets = bool(self.agent.greeting) and self.speech is not None
        self._not_up = {"listening", "greeting"} if greets else {"listening"}
        try:
            with anyio.move_on_after(self.max_duration_s or math.inf) as limit:
                async with anyio.create_task_group() as tg:
                    self._session_scope = tg.cancel_scope
                    self.engine.background = tg  # where interrupted streams are drained
                    if self.speech is not None:
                        tg.start_soon(self.transport.output.play, self.speech)
                    tg.start_soon(self._listen, taker, send)
                    await self._converse(utterances)
                    tg.cancel_scope.cancel()
            if limit.cancelled_caught:
                self.ended = "max_duration"
        finally:
            self.ended = self.ended or "hang_up"
            self._ready.set()  # nobody waits for a session that has ended
            self._events.close()
            with anyio.CancelScope(shield=True):
                await self.transport.aclose()

    def interrupt(self) -> None:
        """Barge-in: silence the agent from the speaker's next block and cancel the turn."""
        if self._turn_scope is None or self._turn_scope.cancel_called:
            return
        now = self.clock.now_ms()
        playing = self.speech.playing if self.speech is not None else None
        segment = playing.id if playing is not None else 0
        flush = getattr(self.transport.output, "interrupt", None)
        if callable(flush):  # e.g. a phone line: `clear`, and what was heard corrected first
            flush()
        self.engine.interrupt()
        turn = self.timeline.turns[-1] if self.timeline.turns else None
        if turn is not None:
            turn.mark("barge_in", segment=segment)
        self._publish(BargeIn(segment, now))
        self._turn_scope.cancel()

    async def hang_up(self) -> None:
        """End the session (e.g. the ``end_call`` of a tool): what the model is still saying
        and everything queued play first (a goodbye behind the tool call is heard)."""
        self.ended = self.ended or "hang_up"
        await self._said_everything()
        if self._session_scope is not None:
            self._session_scope.cancel()

    async def _said_everything(self) -> None:
        """Until no LLM stream is open and everything queued has played, both at once: a
        segment opened while waiting is waited for too."""
        while True:
            while self._streams_ended is not None and not self._streams_ended.is_set():
                await self._streams_ended.wait()
            if self.speech is not None:
                await self.speech.drained()
            if not self._streaming:
                return

    def _up(self, part: str) -> None:
        self._not_up.discard(part)
        if not self._not_up:
            self._ready.set()

    async def _listen(self, taker: TurnTaker, send: Any) -> None:
        # the taker reads its first input once the STT's stream is open
        incoming = _FirstRead(self.transport.incoming(), lambda: self._up("listening"))
        async with send:
            await taker.run(incoming, send)
        self.ended = self.ended or "hang_up"
        if self._session_scope is not None:
            self._session_scope.cancel()  # the caller is gone: nothing more to say

    async def _converse(self, utterances: MemoryObjectReceiveStream[Utterance]) -> None:
        if self.agent.greeting and self.speech is not None:
            greeting = self.engine.speak(self.agent.greeting, trigger="greeting")
            try:
                await self._scoped("greeting", None, greeting)
            finally:
                self._up("greeting")  # cut before it was queued (a barge-in): up all the same
        reprompted = False
        while True:
            try:
                utterance = await self._next_utterance(utterances)
            except anyio.EndOfStream:
                return
            if utterance is None:
                if reprompted or not self.reprompt:
                    self.ended = "idle"
                    return
                reprompted = True
                reprompt = self.engine.speak(self.reprompt, trigger="reprompt")
                await self._scoped("reprompt", None, reprompt)
                continue
            reprompted = False
            self._log("user", utterance.text, True, utterance.start_ms, utterance.final_ms)
            spoken = utterance.end_ms != utterance.start_ms  # typed text has no speech timings
            turn = self.engine.run(
                utterance.text,
                start_ms=utterance.start_ms,
                speech=(utterance.end_ms, utterance.final_ms, utterance.text) if spoken else None,
            )
            await self._scoped("user", utterance.text, turn)

    async def _next_utterance(
        self, utterances: MemoryObjectReceiveStream[Utterance]
    ) -> Utterance | None:
        """The user's next turn, or None after ``idle_timeout_s`` of silence from them."""
        limit = self.idle_timeout_s or math.inf
        waited_from = self.clock.now_ms()
        while True:
            quiet_since = max(waited_from, self._heard_at)
            remaining = limit - (self.clock.now_ms() - quiet_since) / 1000
            with anyio.move_on_after(max(0.0, remaining)):
                return await utterances.receive()
            if self._taker is None or not self._taker.busy:
                if (self.clock.now_ms() - max(waited_from, self._heard_at)) / 1000 >= limit:
                    return None

    async def _scoped(self, trigger: str, text: str | None, turn: Awaitable[TurnResult]) -> None:
        """Run one turn in its own cancel scope, so a barge-in is one ``cancel()``."""
        self._publish(TurnStarted(trigger, text, self.clock.now_ms()))
        previous = self.engine.last
        with anyio.CancelScope() as scope:
            self._turn_scope = scope
            try:
                await turn
            finally:
                self._turn_scope = None
                result = self.engine.last
                if result is not None and result is not previous:  # the turn got under way
                    self._turn_ended(result)

    def _turn_ended(self, result: TurnResult) -> None:
        tl = result.timeline
        end = next((e.t_ms for e in reversed(tl.events) if e.kind == "turn.end"), 0.0)
        if result.heard:
            self._log("agent", result.heard, True, tl.start_ms, tl.start_ms + end)
        unheard = _unheard(result.said, result.heard)
        if unheard:
            self._log("agent", unheard, False, tl.start_ms, tl.start_ms + end)
        self._publish(TurnEnded(result))

    def _user_spoke(self, at_ms: float) -> None:
        if self.barge_in and self._turn_scope is not None:
            self.interrupt()

    def _on_timeline_event(self, turn: TurnTimeline, event: TimelineEvent) -> None:
        attrs = event.attrs
        if event.kind == "tts.request" and turn.trigger == "greeting":
            self._up("greeting")  # queued: its TTS request is under way
        elif event.kind == "llm.request":
            self._streaming += 1
            if self._streams_ended is None or self._streams_ended.is_set():
                self._streams_ended = anyio.Event()
        elif event.kind == "llm.end":
            self._streaming -= 1
            if not self._streaming and self._streams_ended is not None:
                self._streams_ended.set()
        elif event.kind == "tool.start":
            self._publish(ToolStarted(attrs["name"], attrs["call_id"]))
        elif event.kind == "tool.end":
            self._publish(ToolFinished(attrs["name"], attrs["call_id"], attrs.get("state", "")))
        elif event.kind == "audio.start":
            self._publish(AgentSpeechStarted(attrs["segment"], attrs["text"]))
        elif event.kind == "audio.end":
            self._publish(AgentSpeechEnded(attrs["segment"], attrs["text"]))

    def _publish(self, event: SessionEvent) -> None:
        if isinstance(event, (UserSpeechStarted, UserSpeechEnded, UserTranscript)):
            self._heard_at = self.clock.now_ms()
        self._events.publish(event)

    def _log(self, who: str, text: str, heard: bool, start_ms: float, end_ms: float) -> None:
        """One line of the transcript (JSON lines), appended as it happens."""
        if self._transcript is None:
            return
        line = {"who": who, "text": text, "heard": heard, "start_ms": round(start_ms, 1),
                "end_ms": round(end_ms, 1)}  # fmt: skip
        self._transcript.write(line)


class _FirstRead:
    """An async iterator that calls ``on_first`` before its first item is asked for (a
    class, not a generator: nothing is left for the garbage collector to close)."""

    def __init__(self, inner: AsyncIterator[bytes | str], on_first: Callable[[], None]) -> None:
        self._inner = inner
        self._on_first: Callable[[], None] | None = on_first

    def __aiter__(self) -> _FirstRead:
        return self

    async def __anext__(self) -> bytes | str:
        if self._on_first is not None:
            self._on_first()
            self._on_first = None
        return await self._inner.__anext__()


def _unheard(said: str, heard: str) -> str:
    """What was said but not heard: the words of ``said`` that ``heard`` does not hold, in
    order (the tail a barge-in cut, and a phrase the TTS failed in the middle of a turn)."""
    said_words, heard_words = said.split(), heard.split()
    matcher = difflib.SequenceMatcher(a=said_words, b=heard_words, autojunk=False)
    kept = {
        i for block in matcher.get_matching_blocks() for i in range(block.a, block.a + block.size)
    }
    return " ".join(word for i, word in enumerate(said_words) if i not in kept)


def _llm_from_environment(agent: Agent) -> ElectronClient:
    endpoint = resolve_llm_endpoint(None, None, os.environ)
    if endpoint.base_url is None:
        raise ValueError(
            "no LLM endpoint: set ELECTRON_BASE_URL or SMALLEST_API_KEY, or pass "
            "llm=ElectronClient(...) (voiceagent.testing.ElectronServer is a local simulator)"
        )
    return ElectronClient(endpoint.base_url, endpoint.api_key, model=agent.model)
