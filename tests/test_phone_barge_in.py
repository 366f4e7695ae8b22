"""Barge-in on a phone: the bot sends ``clear``, and history holds exactly the segments whose
marks Twilio confirmed, plus the estimated part of the one that was playing."""

from __future__ import annotations

import anyio
from test_phone_call import SAFETY_S, WEATHER, needs_espeak, phone_rig, played, spoken

from voiceagent import audio
from voiceagent.agent import Agent
from voiceagent.session_events import AgentSpeechStarted, SessionEvent, TurnEnded
from voiceagent.testing.twilio import TwilioCaller

RATE = 8000
SENTENCES = [
    "The first sentence is short.",
    "The second sentence is rather longer, so that the caller cuts into it halfway.",
    "The third sentence is never heard at all.",
]
SCRIPT = [{"text": " ".join(SENTENCES)}, {"text": "Sorry, go ahead."}]


@needs_espeak
async def test_barge_in_clears_and_history_keeps_only_the_confirmed_segments() -> None:
    agent = Agent(instructions="Answer.")
    async with phone_rig(agent, script=SCRIPT, ms_per_char=60.0) as rig:
        events: list[SessionEvent] = []
        caller = TwilioCaller(rig.server.url)
        async with caller, anyio.create_task_group() as tg:
            caller.say(audio.silence(RATE // 5) + spoken(WEATHER) + audio.silence(RATE))
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: bool(rig.sessions))
                session = rig.sessions[0]

                async def watch() -> None:
                    async for event in session.events():
                        events.append(event)

                tg.start_soon(watch)
                await caller.wait_for(lambda: len(played(caller)) >= 1)  # sentence one heard
                # cuts into sentence two (4.7 s long) about 1.5 s in
                caller.say(spoken(WEATHER) + audio.silence(RATE), at=caller.now() + 1.5)
                await caller.wait_for(lambda: bool(caller.clears))
                await caller.wait_for(lambda: any(isinstance(e, TurnEnded) for e in events))
            tg.cancel_scope.cancel()
        cut = next(e.result for e in events if isinstance(e, TurnEnded))
    assert caller.protocol_errors == []
    assert cut.reason == "cancelled"
    started = {e.segment: e.text for e in events if isinstance(e, AgentSpeechStarted)}
    confirmed = played(caller)
    cleared = [name for name, outcome, _ in caller.marks if outcome == "cleared"]
    assert confirmed == [str(min(started))]
    assert started[int(confirmed[0])] == SENTENCES[0]
    heard_words = cut.heard.split()
    first = SENTENCES[0].split()
    assert heard_words[: len(first)] == first  # the confirmed segment, whole
    rest = heard_words[len(first) :]
    assert rest == SENTENCES[1].split()[: len(rest)]  # a part of the interrupted one
    assert 0 < len(rest) < len(SENTENCES[1].split())
    assert all(name not in confirmed for name in cleared)
    history = session.history.messages()
    assert {"role": "assistant", "content": cut.heard} in history
