"""A turn engine wired to real local parts for tests: the Electron-compatible server over a
real socket, the test TTS producing real PCM, and a real-time paced in-memory speaker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np

from voiceagent.adapters.wav_speaker import WavSpeaker
from voiceagent.agent import Agent
from voiceagent.history import History
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.speech import SpeechQueue
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import SessionClock, Timeline, TurnTimeline
from voiceagent.turn import FollowUp, TurnEngine

RATE = 16000


@dataclass
class Rig:
    server: ElectronServer
    engine: TurnEngine
    clock: SessionClock
    speaker: WavSpeaker
    history: History
    tts: TestTTS

    def monotonic(self, turn: TurnTimeline, t_ms: float) -> float:
        """A turn event's time on time.monotonic(), to compare with the server's clock."""
        return self.clock.origin + (turn.start_ms + t_ms) / 1000.0


@asynccontextmanager
async def turn_rig(
    script: Sequence[dict[str, Any]] | None,
    *,
    tools: Sequence[Any] = (),
    follow_up: FollowUp = FollowUp.IMMEDIATE,
    max_tool_rounds: int = 3,
    ttft_ms: float = 0.0,
    token_ms: float = 0.0,
    first_byte_ms: float = 20.0,
    ms_per_char: float = 10.0,
) -> AsyncIterator[Rig]:
    async with ElectronServer(script=script, ttft_ms=ttft_ms, token_ms=token_ms) as server:
        clock = SessionClock()
        agent = Agent(
            instructions="You are a test agent.",
            tools=tools,
            temperature=0,
            max_tool_rounds=max_tool_rounds,
        )
        history = History(agent.instructions, context=agent.context)
        tts = TestTTS(sample_rate=RATE, first_byte_ms=first_byte_ms, ms_per_char=ms_per_char)
        speaker = WavSpeaker(None, sample_rate=RATE, block_ms=20, origin=clock.origin)
        engine = TurnEngine(
            agent,
            ElectronClient(server.base_url, retry=RetryPolicy(scale=0.001)),
            history,
            Timeline(clock),
            speech=SpeechQueue(tts),
            follow_up=follow_up,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(speaker.play, engine.speech)
            yield Rig(server, engine, clock, speaker, history, tts)
            tg.cancel_scope.cancel()


def longest_silence_ms(pcm: bytes, start_ms: float, end_ms: float, threshold: int = 200) -> float:
    """The longest run of near-silence in ``pcm`` between two session times."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    a, b = int(start_ms * RATE / 1000), int(end_ms * RATE / 1000)
    quiet = np.abs(samples[a:b].astype(np.int32)) < threshold
    longest = run = 0
    for is_quiet in quiet:
        run = run + 1 if is_quiet else 0
        longest = max(longest, run)
    return longest * 1000.0 / RATE


def events(turn: TurnTimeline, kind: str, **attrs: Any) -> list[float]:
    """The t_ms of the turn's events of this kind whose attributes match."""
    return [
        e.t_ms
        for e in turn.events
        if e.kind == kind and all(e.attrs.get(k) == v for k, v in attrs.items())
    ]
