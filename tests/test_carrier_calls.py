"""Whole calls through each carrier's simulator against the real phone server: the greeting
heard, a question answered, a barge-in that clears the carrier's buffer; by path and on "/"."""

from __future__ import annotations

import anyio
import pytest
from test_phone_barge_in import SCRIPT, SENTENCES
from test_phone_call import GREETING, SAFETY_S, WEATHER, needs_espeak, phone_rig, played, spoken

from voiceagent import audio
from voiceagent.agent import Agent
from voiceagent.history import validate_messages
from voiceagent.session_events import AgentSpeechStarted, SessionEvent, TurnEnded
from voiceagent.testing import CarrierCaller

RATE = 8000
CARRIERS = ["telnyx", "plivo", "exotel"]
CLEAR_EVENT = {"telnyx": "clear", "plivo": "clearAudio", "exotel": "clear"}


def _url(port: int, carrier: str, detect: bool) -> str:
    return f"ws://127.0.0.1:{port}/{'' if detect else carrier}"


@needs_espeak
@pytest.mark.parametrize("detect", [False, True], ids=["by-path", "detected"])
@pytest.mark.parametrize("carrier", CARRIERS)
async def test_a_call_greets_and_answers_a_question(carrier: str, detect: bool) -> None:
    async with phone_rig() as rig:
        # Telnyx's side delivers every 3rd media frame late: the server reorders them
        caller = CarrierCaller(_url(rig.server.port, carrier, detect), carrier=carrier,
                               custom_parameters={"customer": "42"},
                               out_of_order=3 if carrier == "telnyx" else 0)  # fmt: skip
        async with caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)  # the greeting
                caller.say(audio.silence(RATE // 5) + spoken(WEATHER) + audio.silence(RATE))
                await caller.wait_for(lambda: len(played(caller)) >= 3)  # filler, answer
        with anyio.fail_after(SAFETY_S):
            await rig.server.idle()
    assert caller.protocol_errors == []
    transport, session = rig.transports[0], rig.sessions[0]
    assert transport.metadata["carrier"] == carrier
    assert transport.metadata["call_sid"] == caller.call_sid
    assert transport.metadata["custom_parameters"] == {"customer": "42"}
    assert session.ended == "hang_up"
    messages = session.history.messages()
    validate_messages(messages)
    assert messages[1] == {"role": "assistant", "content": GREETING}
    assert messages[2]["role"] == "user" and "weather" in messages[2]["content"]
    assert messages[3]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert "21" in messages[5]["content"] or "sunny" in messages[5]["content"].lower()
    assert caller.clears == [] and rig.server.malformed == {}
    if carrier == "telnyx":
        reorder = transport.speaker.serializer.reorder  # type: ignore[attr-defined]
        assert reorder.late == reorder.duplicates == reorder.skipped == 0
        assert reorder.reordered > 10  # frames did arrive out of order, and were put back


@needs_espeak
@pytest.mark.parametrize("carrier", CARRIERS)
async def test_barge_in_clears_the_carriers_buffer_and_keeps_the_confirmed_segments(
    carrier: str,
) -> None:
    agent = Agent(instructions="Answer.")
    async with phone_rig(agent, script=SCRIPT, ms_per_char=60.0) as rig:
        events: list[SessionEvent] = []
        caller = CarrierCaller(_url(rig.server.port, carrier, False), carrier=carrier)
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
                caller.say(spoken(WEATHER) + audio.silence(RATE), at=caller.now() + 1.5)
                await caller.wait_for(lambda: bool(caller.clears))
                await caller.wait_for(lambda: any(isinstance(e, TurnEnded) for e in events))
            tg.cancel_scope.cancel()
        cut = next(e.result for e in events if isinstance(e, TurnEnded))
    assert caller.protocol_errors == []
    assert caller.received_events(CLEAR_EVENT[carrier])
    assert cut.reason == "cancelled"
    started = {e.segment: e.text for e in events if isinstance(e, AgentSpeechStarted)}
    confirmed = played(caller)
    assert confirmed == [str(min(started))]
    assert started[int(confirmed[0])] == SENTENCES[0]
    heard_words = cut.heard.split()
    first = SENTENCES[0].split()
    assert heard_words[: len(first)] == first  # the confirmed segment, whole
    rest = heard_words[len(first) :]
    assert rest == SENTENCES[1].split()[: len(rest)]
    assert len(rest) < len(SENTENCES[1].split())
    assert {"role": "assistant", "content": cut.heard} in session.history.messages()
