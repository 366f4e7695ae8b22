"""A phrase is flushed to the TTS at the token that completes it (DESIGN.md, "A turn, as data
flows", step 3), not at the stream's end: a sentence end that cannot go on, the first
tool-call delta, or a short quiet after a sentence end that could still go on."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from turn_rig import events

from voiceagent.adapters.wav_speaker import WavSpeaker
from voiceagent.agent import Agent
from voiceagent.history import History
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.speech import SpeechQueue
from voiceagent.testing.electron import ElectronServer
from voiceagent.timeline import SessionClock, Timeline, TurnTimeline
from voiceagent.toolkit import tool
from voiceagent.turn import TurnEngine

RATE = 16000
FILLER = "Let me check the weather for you."


class FlushAtEndTTS:
    """``ports.TTS`` that starts only at the flush, like Lightning, and logs when each
    phrase's input ended (``("flush", phrase, time.monotonic())``) into a shared log."""

    def __init__(self, log: list[tuple[str, str, float]]) -> None:
        self.log = log

    @property
    def sample_rate(self) -> int:
        return RATE

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        text = "".join([fragment async for fragment in fragments])
        self.log.append(("flush", text.strip(), time.monotonic()))
        yield np.full(RATE // 100, 3000, dtype=np.int16).tobytes()  # 10 ms, never silent

    async def aclose(self) -> None:
        pass


@dataclass
class FlushRig:
    server: ElectronServer
    engine: TurnEngine
    clock: SessionClock
    log: list[tuple[str, str, float]]  # ("text", delta, t) from the turn, ("flush", …) the TTS

    def order(self) -> list[tuple[str, str]]:
        return [(kind, text) for kind, text, _ in self.log]

    def flushed_at(self, phrase: str) -> float:
        (at,) = [t for kind, text, t in self.log if kind == "flush" and text == phrase]
        return at

    def monotonic(self, turn: TurnTimeline, kind: str, **attrs: Any) -> float:
        """When the turn's first event of this kind happened, on time.monotonic()."""
        return self.clock.origin + (turn.start_ms + events(turn, kind, **attrs)[0]) / 1000.0


@asynccontextmanager
async def flush_rig(
    script: Sequence[dict[str, Any]], *, tools: Sequence[Any] = (), token_ms: float = 20.0
) -> AsyncIterator[FlushRig]:
    async with ElectronServer(script=script, token_ms=token_ms) as server:
        log: list[tuple[str, str, float]] = []
        clock = SessionClock()
        agent = Agent(instructions="You are a test agent.", tools=tools, temperature=0)
        engine = TurnEngine(
            agent,
            ElectronClient(server.base_url, retry=RetryPolicy(scale=0.001)),
            History(agent.instructions),
            Timeline(clock),
            speech=SpeechQueue(FlushAtEndTTS(log)),
            on_text=lambda text: log.append(("text", text, time.monotonic())),
        )
        speaker = WavSpeaker(None, sample_rate=RATE, block_ms=20, origin=clock.origin)
        async with anyio.create_task_group() as tg:
            tg.start_soon(speaker.play, engine.speech)
            yield FlushRig(server, engine, clock, log)
            tg.cancel_scope.cancel()


def weather_tool() -> object:
    @tool
    async def get_weather(city: str) -> dict[str, object]:
        """Current weather for a city."""
        await anyio.sleep(0.05)
        return {"city": city, "temperature_c": 18}

    return get_weather


def tool_turn(text: str) -> list[dict[str, Any]]:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}, "fragments": 4}
    return [{"text": text, "tool_calls": [call]}, {"text": "It is sunny."}]


async def test_in_a_tool_turn_the_first_phrase_is_flushed_before_the_stream_ends() -> None:
    async with flush_rig(tool_turn(FILLER), tools=[weather_tool()]) as rig:
        result = await rig.engine.run("What's the weather in Paris?")
    turn = result.timeline
    flushed = rig.flushed_at(FILLER)
    assert flushed < rig.monotonic(turn, "tool.args_ready", name="get_weather")
    assert flushed < rig.monotonic(turn, "llm.end", round=1)
    assert result.heard == f"{FILLER} It is sunny."


async def test_a_sentence_end_is_flushed_at_its_own_token() -> None:
    async with flush_rig([{"text": "Hello there. How can I help you today?"}]) as rig:
        await rig.engine.run("Hi!")
    order = rig.order()
    assert order.index(("flush", "Hello there.")) < order.index(("text", " How"))


async def test_the_first_tool_call_delta_flushes_an_unfinished_phrase() -> None:
    async with flush_rig(tool_turn("Let me look that up"), tools=[weather_tool()]) as rig:
        result = await rig.engine.run("What's the weather in Paris?")
    turn = result.timeline
    flushed = rig.flushed_at("Let me look that up")
    assert flushed < rig.monotonic(turn, "tool.args_ready", name="get_weather")


async def test_a_sentence_end_that_could_go_on_is_flushed_after_a_quiet() -> None:
    # chunks: the role, "It", " costs", " 3." — then the model goes quiet for a while
    async with flush_rig([{"text": "It costs 3. Then we go."}]) as rig:
        rig.server.faults.pause_after(4, seconds=0.5)
        await rig.engine.run("How much?")
    order = rig.order()
    assert order.index(("flush", "It costs 3.")) < order.index(("text", " Then"))


async def test_a_sentence_end_that_could_go_on_waits_while_the_model_keeps_talking() -> None:
    async with flush_rig([{"text": "It costs 3. Then we go."}]) as rig:
        rig.engine.quiet_flush_ms = 10_000.0  # longer than any gap of this stream
        rig.server.faults.pause_after(4, seconds=0.1)
        await rig.engine.run("How much?")
    order = rig.order()
    assert order.index(("text", " Then")) < order.index(("flush", "It costs 3."))
