"""A session's speaker sleeps while nothing is queued and starts at once when audio arrives,
through real sessions: few reads while idle, the first audio read within a few event-loop
steps of the TTS giving it, and the WAV still holding every silence at its place."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np

from voiceagent import audio, ports
from voiceagent.adapters.console import ConsoleTransport
from voiceagent.adapters.virtual_speaker import NullSpeaker, VirtualSpeaker
from voiceagent.adapters.wav_speaker import WavSpeaker
from voiceagent.agent import Agent
from voiceagent.llm import ElectronClient
from voiceagent.session import Session
from voiceagent.session_events import SessionEvent, TurnEnded
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import SessionClock

RATE = 16000
IDLE_S = 0.5  # 25 blocks of 20 ms


async def silent_user() -> AsyncIterator[str]:
    await anyio.sleep_forever()
    yield "never"


class CountedSource:
    """The session's audio source, seen by the speaker through this: counts every read (and
    those that gave audio); anything else (a wake-up signal) is the source's own."""

    def __init__(self, inner: ports.AudioSource) -> None:
        self.inner = inner
        self.reads = 0
        self.audio_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def read(self, n_samples: int, position: int) -> bytes:
        pcm = self.inner.read(n_samples, position)
        self.reads += 1
        self.audio_reads += bool(pcm)
        return pcm


class Counted:
    """Mixed into a speaker: ``source`` counts what it reads."""

    source: CountedSource

    async def play(self, source: ports.AudioSource) -> None:
        self.source = CountedSource(source)
        await super().play(self.source)  # type: ignore[misc]


class CountedNullSpeaker(Counted, NullSpeaker):
    pass


class CountedWavSpeaker(Counted, WavSpeaker):
    pass


class CountedVirtualSpeaker(Counted, VirtualSpeaker):
    pass


def session_for(server: ElectronServer, speaker: ports.AudioSink, clock: SessionClock) -> Session:
    return Session(
        Agent(instructions="You answer for Luigi's."),
        ConsoleTransport(speaker, lines=silent_user()),
        tts=TestTTS(RATE, first_byte_ms=1, ms_per_char=5),
        llm=ElectronClient(server.base_url),
        idle_timeout_s=None,
        reprompt=None,
        clock=clock,
    )


async def turn(session: Session, events: AsyncIterator[SessionEvent], text: str) -> TurnEnded:
    session.send_text(text)
    async for event in events:
        if isinstance(event, TurnEnded):
            return event
    raise AssertionError("the session ended first")


async def reads_while_idle(speaker: Counted, seconds: float) -> int:
    before = speaker.source.reads
    await anyio.sleep(seconds)
    return speaker.source.reads - before


async def test_an_idle_real_time_speaker_does_not_read_a_block_every_20_ms() -> None:
    clock = SessionClock()
    speaker = CountedNullSpeaker(RATE, origin=clock.origin)
    async with ElectronServer(script=[{"text": "Yes, we do."}]) as server:
        session = session_for(server, speaker, clock)
        events = session.events()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                await session.ready()
                before = await reads_while_idle(speaker, IDLE_S)
                await turn(session, events, "A table tonight?")  # then idle again
                after = await reads_while_idle(speaker, IDLE_S)
                await session.hang_up()
    assert speaker.source.audio_reads > 0
    assert before <= 3 and after <= 3  # a ticking speaker reads about 25


async def test_an_idle_virtual_speaker_sleeps_rather_than_reading_every_millisecond() -> None:
    clock = SessionClock()
    speaker = CountedVirtualSpeaker(RATE)
    async with ElectronServer(script=[{"text": "Yes, we do."}]) as server:
        session = session_for(server, speaker, clock)
        events = session.events()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                await session.ready()
                ended = await turn(session, events, "A table tonight?")
                idle = await reads_while_idle(speaker, IDLE_S)
                await session.hang_up()
    assert ended.result.heard == "Yes, we do."
    assert idle <= 3  # a speaker waiting 1 ms per idle block reads hundreds


class PromptTTS:
    """A voice that, right after yielding a phrase's first audio, lets the event loop run a
    few steps and notes whether the speaker has read that audio by then."""

    def __init__(self, speaker: Counted, steps: int = 10) -> None:
        self.speaker = speaker
        self.steps = steps
        self.read_at_once: list[bool] = []

    @property
    def sample_rate(self) -> int:
        return RATE

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        text = "".join([fragment async for fragment in fragments])
        pcm = audio.int16_to_pcm(np.full(len(text) * 80, 3000, dtype=np.int16))
        yield pcm[: len(pcm) // 2]
        for _ in range(self.steps):
            await anyio.lowlevel.checkpoint()
        self.read_at_once.append(self.speaker.source.audio_reads > 0)
        yield pcm[len(pcm) // 2 :]

    async def aclose(self) -> None:
        pass


async def test_first_audio_is_read_at_once_not_at_the_next_block() -> None:
    clock = SessionClock()
    # a block longer than the turn: the audio always comes inside the silent block the
    # speaker read before it slept, and a speaker that kept that block (or waited for its
    # next one) would read it a block later
    speaker = CountedNullSpeaker(RATE, block_ms=2000, origin=clock.origin)
    tts = PromptTTS(speaker)
    async with ElectronServer(script=[{"text": "Yes, we do."}]) as server:
        session = Session(
            Agent(instructions="You answer for Luigi's."),
            ConsoleTransport(speaker, lines=silent_user()),
            tts=tts,
            llm=ElectronClient(server.base_url),
            idle_timeout_s=None,
            reprompt=None,
            clock=clock,
        )
        events = session.events()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                await session.ready()
                await anyio.sleep(0.05)  # asleep, mid-block
                ended = await turn(session, events, "A table tonight?")
                await session.hang_up()
    assert tts.read_at_once == [True]
    kinds = [e.kind for e in ended.result.timeline.events]
    # never heard before it existed
    assert kinds.index("tts.first_audio") < kinds.index("audio.start")
    assert ended.result.heard == "Yes, we do."


async def test_the_wav_holds_the_silence_the_speaker_slept_through(tmp_path: Path) -> None:
    clock = SessionClock()
    path = tmp_path / "reply.wav"
    speaker = CountedWavSpeaker(path, RATE, origin=clock.origin)
    async with ElectronServer(script=[{"text": "Yes, we do."}]) as server:
        session = session_for(server, speaker, clock)
        events = session.events()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                await session.ready()
                await anyio.sleep(IDLE_S)
                ended = await turn(session, events, "A table tonight?")
                idle = await reads_while_idle(speaker, IDLE_S)
                hung_up_ms = clock.now_ms()
                await session.hang_up()
        ended_ms = clock.now_ms()
    assert idle <= 3
    pcm, rate = audio.read_wav(path)
    samples = np.frombuffer(pcm, np.int16)
    # as long as the session: the silence it slept through, to the end, is in the file
    assert hung_up_ms <= len(samples) * 1000 / rate <= ended_ms
    # the answer sits exactly where the timeline says it was heard
    tl = ended.result.timeline
    start = next(e for e in tl.events if e.kind == "audio.start")
    at = round((tl.start_ms + start.t_ms) * rate / 1000)
    first_sound = int(np.flatnonzero(samples)[0])
    assert abs(first_sound - at) <= 2  # the timeline's ms are rounded
    assert not samples[:first_sound].any()
