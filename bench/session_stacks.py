"""What ``bench/session.py`` runs: spoken conversations (espeak-ng utterances laid out in a
WAV, with each one's true onset and end), the two stacks, stamps of when the VAD's events
and the STT's ``finalize`` really happened (session clock, ms), and one session run."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np

from voiceagent import audio
from voiceagent.adapters.wav_transport import WavTransport
from voiceagent.agent import Agent
from voiceagent.llm import ElectronClient
from voiceagent.ports import (
    STT,
    TTS,
    VAD,
    SpeechEnded,
    SpeechStarted,
    STTEvent,
    STTStream,
    VADEvent,
)
from voiceagent.session import Session
from voiceagent.session_events import SessionEvent
from voiceagent.timeline import SessionClock
from voiceagent.toolkit import tool
from voiceagent.tools import calculate, current_time

IN_RATE = 16000  # the caller's WAV
OUT_RATE = 24000  # the recording (DESIGN.md: 24 kHz unless a component needs another)
HANGOVER_MS = 300  # both VADs: silence that ends speech
END_OF_TURN_MS = 200.0  # Session's default
VOICED = 200  # |sample| above this is speech, for the true onset and end in the WAV
TOOL_S = 0.2  # the weather tool's run time
OFFLINE_EXTRA = "the offline extra (pip install 'voiceagent[offline]') and espeak-ng"


def have_offline_stack() -> bool:
    modules = ("faster_whisper", "webrtcvad", "piper")
    found = all(importlib.util.find_spec(name) is not None for name in modules)
    return found and shutil.which("espeak-ng") is not None


@tool
async def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city."""
    await anyio.sleep(TOOL_S)  # a local stand-in: the shipped tool asks Open-Meteo
    return {"city": city, "temperature_c": 18, "conditions": "sunny"}


# --- the caller's WAV --------------------------------------------------------------------


def spoken(text: str) -> bytes:
    """``text`` said by espeak-ng, as PCM16 mono at ``IN_RATE``."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True
    ).stdout
    pcm, rate = audio.parse_wav(wav)
    resampler = audio.Resampler(rate, IN_RATE)
    return resampler.process(pcm) + resampler.flush()


@dataclass(frozen=True)
class Line:
    """One utterance placed in the WAV; ``onset_ms``/``end_ms``: its first and last voiced
    sample on the session clock (0 = the WAV's first sample)."""

    text: str
    pcm: bytes
    start_ms: float

    def _voiced(self) -> np.ndarray:
        return np.flatnonzero(np.abs(np.frombuffer(self.pcm, np.int16)) > VOICED)

    @property
    def onset_ms(self) -> float:
        return self.start_ms + 1000.0 * int(self._voiced()[0]) / IN_RATE

    @property
    def end_ms(self) -> float:
        return self.start_ms + 1000.0 * (int(self._voiced()[-1]) + 1) / IN_RATE


@dataclass
class Conversation:
    lines: list[Line] = field(default_factory=list)
    length_ms: float = 0.0

    def say(self, text: str, after_s: float) -> Line:
        """``text`` starting ``after_s`` after the previous line's last voiced sample."""
        last = self.lines[-1].end_ms if self.lines else 0.0
        line = Line(text, spoken(text), last + 1000.0 * after_s)
        self.lines.append(line)
        return line

    def write(self, path: Path, tail_s: float) -> Path:
        total = int((self.lines[-1].end_ms / 1000.0 + tail_s) * IN_RATE)
        pcm = bytearray(audio.silence(total))
        for line in self.lines:
            at = 2 * audio.ms_to_samples(line.start_ms, IN_RATE)
            pcm[at : at + len(line.pcm)] = line.pcm
        audio.write_wav(path, bytes(pcm[: 2 * total]), IN_RATE)
        self.length_ms = 1000.0 * total / IN_RATE
        return path


# --- stamps: when the VAD spoke and the STT was finalized, on the session clock ----------


@dataclass
class Stamps:
    clock: SessionClock
    started: list[float] = field(default_factory=list)  # a SpeechStarted reached the session
    ended: list[float] = field(default_factory=list)  # a SpeechEnded reached the session
    finalized: list[float] = field(default_factory=list)  # the session called finalize()

    def heard(self, event: STTEvent | VADEvent) -> None:
        if isinstance(event, SpeechStarted):
            self.started.append(self.clock.now_ms())
        elif isinstance(event, SpeechEnded):
            self.ended.append(self.clock.now_ms())


class StampedVAD:
    """A ``ports.VAD`` that stamps each event as it leaves the detector."""

    def __init__(self, inner: VAD, stamps: Stamps) -> None:
        self.inner, self.stamps = inner, stamps

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def process(self, pcm: bytes) -> list[VADEvent]:
        events = self.inner.process(pcm)
        for event in events:
            self.stamps.heard(event)
        return events

    def reset(self) -> None:
        self.inner.reset()


class StampedSTT:
    """A ``ports.STT`` whose streams stamp ``finalize()`` and the STT's own speech events."""

    def __init__(self, inner: STT, stamps: Stamps) -> None:
        self.inner, self.stamps = inner, stamps

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    @property
    def encoding(self) -> str:
        return self.inner.encoding

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[_StampedStream]:
        async with self.inner.stream() as stream:
            yield _StampedStream(stream, self.stamps)


class _StampedStream:
    def __init__(self, inner: STTStream, stamps: Stamps) -> None:
        self.inner, self.stamps = inner, stamps

    async def send_audio(self, pcm: bytes) -> None:
        await self.inner.send_audio(pcm)

    async def finalize(self) -> None:
        self.stamps.finalized.append(self.stamps.clock.now_ms())
        await self.inner.finalize()

    async def close(self) -> None:
        await self.inner.close()

    async def events(self) -> AsyncIterator[STTEvent]:
        async for event in self.inner.events():
            self.stamps.heard(event)
            yield event


# --- the stacks --------------------------------------------------------------------------


@dataclass
class Stack:
    name: str
    label: str
    stt: STT
    tts: TTS
    vad: Callable[[], VAD] | None  # a fresh detector per conversation; None: the STT's own


@asynccontextmanager
async def offline_stack() -> AsyncIterator[Stack]:
    """WebRTC VAD + Whisper tiny.en + piper, warmed up (model loaded, voice loaded)."""
    from voiceagent.adapters.piper import PiperTTS
    from voiceagent.adapters.vad_webrtc import WebRTCVAD
    from voiceagent.adapters.whisper import WhisperSTT

    stt = WhisperSTT(sample_rate=IN_RATE)
    await stt.transcribe(spoken("warm up"))
    tts = PiperTTS(sample_rate=OUT_RATE)
    async for _ in tts.synthesize(_one("Warm up.")):  # the voice and the resampler, loaded
        pass

    def vad() -> VAD:
        return WebRTCVAD(IN_RATE, min_silence_ms=HANGOVER_MS, min_speech_ms=150)

    label = "offline: WebRTC VAD + Whisper tiny.en + Electron simulator + piper"
    try:
        yield Stack("offline", label, stt, tts, vad)
    finally:
        await tts.aclose()


@asynccontextmanager
async def fakes_stack(
    pulse_url: str, lightning_url: str, tts_concurrency: int = 1
) -> AsyncIterator[Stack]:
    """PulseSTT (its own VAD events) + LightningTTS, against the local fakes
    (``tts_concurrency``: LightningTTS's ``max_concurrent``, 0 = no limit)."""
    from voiceagent.adapters.lightning import LightningTTS
    from voiceagent.adapters.pulse import PulseSTT

    stt = PulseSTT(pulse_url, sample_rate=IN_RATE, extra_query={"eou_timeout_ms": HANGOVER_MS})
    tts = LightningTTS(lightning_url, sample_rate=OUT_RATE, max_concurrent=tts_concurrency)
    async for _ in tts.synthesize(_one("Warm up.")):  # the socket opens now, not in turn 1
        pass
    label = "local fakes: PulseSTT + Electron simulator + LightningTTS (synthetic voice)"
    try:
        yield Stack("fakes", label, stt, tts, None)
    finally:
        await tts.aclose()


async def _one(text: str) -> AsyncIterator[str]:
    yield text


# --- one session -------------------------------------------------------------------------


@dataclass
class Recording:
    talk: Conversation
    events: list[SessionEvent]
    stamps: Stamps
    pcm: bytes  # the agent, as recorded at OUT_RATE
    late_blocks: int  # blocks the speaker wrote more than a block after their due time


async def converse(
    stack: Stack,
    talk: Conversation,
    wav: Path,
    llm_url: str,
    *,
    llm: ElectronClient | None = None,
    tag: str = "",
    progress: bool = True,
) -> Recording:
    """One session of ``stack`` over ``wav`` at real time, until the WAV ends (hang-up);
    ``llm``: a client shared with other sessions (else one of its own for ``llm_url``),
    ``tag``: tells apart the recordings of sessions run at once."""
    clock = SessionClock()
    stamps = Stamps(clock)
    out = wav.with_name(f"{wav.stem}-{stack.name}{tag}-reply.wav")
    transport = WavTransport(
        wav, out, output_rate=OUT_RATE, origin=clock.origin, hang_up_after_s=0.0
    )
    agent = Agent(
        instructions="Answer briefly.",
        tools=[calculate, current_time, get_weather],
        temperature=0,
    )
    session = Session(
        agent,
        transport,
        stt=StampedSTT(stack.stt, stamps),
        tts=stack.tts,
        vad=StampedVAD(stack.vad(), stamps) if stack.vad is not None else None,
        llm=llm if llm is not None else ElectronClient(llm_url),
        end_of_turn_ms=END_OF_TURN_MS,
        idle_timeout_s=None,
        reprompt=None,
        clock=clock,
    )
    events: list[SessionEvent] = []
    subscription = session.events()  # subscribed before the session starts

    async def watch() -> None:
        async for event in subscription:
            events.append(event)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await session.run()
    if progress:
        print(".", end="", file=sys.stderr, flush=True)
    return Recording(talk, events, stamps, transport.output.samples, transport.output.late_blocks)
