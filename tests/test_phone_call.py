"""A whole phone call over real websockets: the caller simulator dials the phone server, hears
the greeting, asks a question (Pulse fake), hears filler, tool and answer; then hangs up."""

from __future__ import annotations

import gc
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import anyio
import pytest

from voiceagent import audio
from voiceagent.adapters.phone_server import PhoneServer
from voiceagent.adapters.phone_transport import PhoneTransport
from voiceagent.adapters.pulse import PulseSTT
from voiceagent.agent import Agent
from voiceagent.history import validate_messages
from voiceagent.llm import ElectronClient
from voiceagent.session import Session
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.pulse import PulseServer
from voiceagent.testing.tts import TestTTS
from voiceagent.testing.twilio import TwilioCaller
from voiceagent.toolkit import ToolContext, tool

RATE = 8000
WEATHER = "what is the weather in paris"
GREETING = "Hello, weather line."
SAFETY_S = 60  # a hang guard, not a timing assert

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
seen_metadata: list[dict[str, Any]] = []


@tool(filler="Let me check the weather for you.")
async def get_weather(ctx: ToolContext, city: str) -> dict[str, Any]:
    """Current weather for a city."""
    seen_metadata.append(dict(ctx.metadata))
    return {"city": city, "temperature_c": 21, "conditions": "sunny"}


@cache
def spoken(text: str) -> bytes:
    """PCM16 at 8 kHz of espeak-ng saying ``text``."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
    pcm, native = audio.parse_wav(wav)
    resampler = audio.Resampler(native, RATE)
    return resampler.process(pcm) + resampler.flush()


@dataclass
class Rig:
    server: PhoneServer
    sessions: list[Session] = field(default_factory=list)
    transports: list[PhoneTransport] = field(default_factory=list)


@asynccontextmanager
async def phone_rig(
    agent: Agent | None = None,
    *,
    listen: bool = True,
    ms_per_char: float = 20.0,
    script: list[dict[str, Any]] | None = None,
    **server_options: Any,
) -> AsyncIterator[Rig]:
    """The phone server on a free port; each call a Session with TestTTS at 8 kHz, the
    Electron simulator, and (``listen``) a Pulse fake that knows ``WEATHER``."""
    agent = agent or Agent(instructions="Answer briefly.", tools=[get_weather], greeting=GREETING)
    pulse_server = PulseServer(transcribe="table", eou_timeout_ms=300)
    async with ElectronServer(script=script) as llm, pulse_server as pulse:
        if listen:
            pulse.table.add(spoken(WEATHER), WEATHER, sample_rate=RATE)
        rig: Rig

        async def run_call(transport: PhoneTransport) -> None:
            stt = PulseSTT(pulse.url, sample_rate=RATE) if listen else None
            tts = TestTTS(RATE, first_byte_ms=20, ms_per_char=ms_per_char)
            session = Session(agent, transport, stt, tts, llm=ElectronClient(llm.base_url),
                              idle_timeout_s=None, reprompt=None)  # fmt: skip
            rig.sessions.append(session)
            rig.transports.append(transport)
            await session.run()

        async with PhoneServer(run_call, port=0, **server_options) as server:
            rig = Rig(server)
            yield rig


def played(caller: TwilioCaller) -> list[str]:
    return [name for name, outcome, _ in caller.marks if outcome == "played"]


@needs_espeak
async def test_a_call_greets_answers_a_question_with_a_tool_and_ends_on_stop() -> None:
    seen_metadata.clear()
    async with phone_rig() as rig:
        caller = TwilioCaller(rig.server.url, custom_parameters={"customer": "42"})
        async with caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)  # the greeting
                caller.say(audio.silence(RATE // 5) + spoken(WEATHER) + audio.silence(RATE))
                await caller.wait_for(lambda: len(played(caller)) >= 3)  # filler, answer
        session = rig.sessions[0]
        with anyio.fail_after(SAFETY_S):
            await rig.server.idle()
    assert caller.protocol_errors == []
    assert session.ended == "hang_up"
    assert seen_metadata and seen_metadata[0]["custom_parameters"] == {"customer": "42"}
    assert seen_metadata[0]["call_sid"] == caller.call_sid
    messages = session.history.messages()
    validate_messages(messages)
    assert messages[1] == {"role": "assistant", "content": GREETING}
    assert messages[2]["role"] == "user" and "weather" in messages[2]["content"]
    assert messages[3]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[4]["role"] == "tool"
    assert "21" in messages[5]["content"] or "sunny" in messages[5]["content"].lower()
    assert caller.clears == []
    sent = [m["mark"]["name"] for m in caller.received_events("mark")]
    assert played(caller) == sent  # every segment was confirmed, in order


@needs_espeak
async def test_stop_tears_the_call_down_and_leaves_no_task_behind() -> None:
    import asyncio

    before = {t for t in asyncio.all_tasks() if not t.done()}
    async with phone_rig() as rig:
        async with TwilioCaller(rig.server.url) as caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)
        with anyio.fail_after(SAFETY_S):
            await rig.server.idle()
        assert rig.transports[0].hung_up
        assert rig.sessions[0].ended == "hang_up"
    gc.collect()
    await anyio.sleep(0.05)
    left = {t for t in asyncio.all_tasks() if not t.done()} - before
    assert left == {asyncio.current_task()} or not left - {asyncio.current_task()}
