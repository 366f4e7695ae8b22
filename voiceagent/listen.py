"""``voiceagent chat --in``: a WAV file heard as a user would say it: streamed to the STT in
real time on the session clock, with a VAD on the same audio to date the speech."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from voiceagent import audio
from voiceagent.ports import STT, VAD, SpeechEnded, SpeechStarted, STTStream, Transcript
from voiceagent.timeline import SessionClock
from voiceagent.wire_text import one_line

if TYPE_CHECKING:
    from voiceagent.rounds import TurnResult
    from voiceagent.turn import TurnEngine

CHUNK_MS = 20  # what a sound card or a phone line delivers at a time
FINAL_TIMEOUT_S = 60.0  # for the final after finalize(): whisper on a long file is slow
CLOSE_TIMEOUT_S = 5.0
VAD_RATES = (8000, 16000, 32000, 48000)  # webrtcvad's


class ListenError(ValueError):
    """The input cannot be heard; the message says why and what to do."""


class NoFinalTranscript(RuntimeError):
    """The STT never answered ``finalize``."""


@dataclass(frozen=True)
class SpeechInput:
    """A WAV file's audio: PCM16 mono at ``sample_rate``."""

    path: Path
    pcm: bytes
    sample_rate: int

    @property
    def duration_ms(self) -> float:
        return audio.pcm_duration_ms(self.pcm, self.sample_rate)


def read_input(value: str) -> SpeechInput:
    """The ``--in`` file, read now so a wrong one fails before any I/O."""
    path = Path(value)
    if not path.is_file():
        raise ListenError(f"--in {value}: no such file")
    try:
        pcm, rate = audio.read_wav(path)
    except audio.WavFormatError as error:
        raise ListenError(f"--in {value}: {error}") from error
    if not pcm:
        raise ListenError(f"--in {value}: the file holds no audio")
    return SpeechInput(path, pcm, rate)


@dataclass
class Heard:
    """What the STT heard and when, on the session clock (ms)."""

    text: str
    speech_start_ms: float  # the turn's t=0
    speech_end_ms: float
    final_ms: float  # when the final transcript (the answer to finalize) arrived
    detector: str  # what dated the speech

    @property
    def speech(self) -> tuple[float, float, str]:
        """(speech end, final arrival, text): what the turn marks before its LLM request."""
        return self.speech_end_ms, self.final_ms, self.text


async def answer_speech(
    stt: STT, speech: SpeechInput, engine: TurnEngine, clock: SessionClock
) -> TurnResult | None:
    """One turn answering what the STT heard in ``speech``; None (said on stderr) when it
    heard no words. Its lines on stderr: what dated the speech, and what was heard."""
    async with hearing(stt, speech, clock) as heard:
        print(f"speech dated by: {heard.detector}", file=sys.stderr)
        print(f'heard: "{one_line(heard.text)}"', file=sys.stderr, flush=True)
        if not heard.text:
            print(
                f"voiceagent chat: the STT heard no words in {speech.path}: nothing to answer",
                file=sys.stderr,
            )
            return None
        # DESIGN.md: for speech, the turn's t=0 is when the user's speech started
        return await engine.run(heard.text, start_ms=heard.speech_start_ms, speech=heard.speech)


def local_vad(sample_rate: int) -> VAD | None:
    """WebRTC's VAD (the ``offline`` extra) at ``sample_rate``, or None without the extra."""
    try:
        from voiceagent.adapters.vad_webrtc import WebRTCVAD

        return WebRTCVAD(sample_rate=sample_rate)
    except ImportError:  # VADNotInstalled: the STT's own speech events date the speech
        return None


@asynccontextmanager
async def hearing(stt: STT, speech: SpeechInput, clock: SessionClock) -> AsyncIterator[Heard]:
    """Stream ``speech`` to ``stt`` at real time from now, ``finalize``, and yield what was
    heard; leaving the block ``close``s the stream (after the turn: the answer need not wait
    for the close's round trip).

    The speech is dated by a local VAD on the same audio when the ``offline`` extra is
    installed (the same boundaries whichever STT listens), else by the STT's own
    ``SpeechStarted``/``SpeechEnded`` events (Pulse sends them), else it is the whole file.
    """
    load = getattr(stt, "load", None)
    if load is not None:
        await load()  # whisper's model, before the clock starts: the user is not kept waiting
    to_stt = audio.Resampler(speech.sample_rate, stt.sample_rate)
    vad_rate = stt.sample_rate if stt.sample_rate in VAD_RATES else 16000
    vad = local_vad(vad_rate)
    to_vad = audio.Resampler(stt.sample_rate, vad_rate)
    local = _Boundaries()  # from the VAD here
    remote = _Boundaries()  # from the STT's events
    finals: list[str] = []
    answered, ended = anyio.Event(), anyio.Event()
    final_ms = math.nan

    def detect(pcm: bytes) -> None:
        if vad is not None:
            for event in vad.process(to_vad.process(pcm)):
                local.add(event)

    async with stt.stream() as stream:
        origin = clock.now_ms()  # audio position 0 on the session clock

        async def read_events() -> None:
            nonlocal final_ms
            try:
                async for event in stream.events():
                    if isinstance(event, (SpeechStarted, SpeechEnded)):
                        remote.add(event)
                    elif isinstance(event, Transcript) and event.is_final:
                        if event.text.strip() and not answered.is_set():
                            finals.append(event.text.strip())
                        if (event.from_finalize or event.is_last) and not answered.is_set():
                            final_ms = clock.now_ms()
                            answered.set()
            finally:
                if not answered.is_set():  # the events ended unanswered: what came is all
                    final_ms = clock.now_ms()
                    answered.set()
                ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_events)
            await _send_in_real_time(stream, speech, to_stt, detect, clock, origin)
            await stream.finalize()
            with anyio.move_on_after(FINAL_TIMEOUT_S):
                await answered.wait()
            if not answered.is_set():
                raise NoFinalTranscript(
                    f"the STT sent no final transcript within {FINAL_TIMEOUT_S:.0f} s of finalize"
                )
            if vad is not None:
                # the file's end counts as silence: speech still going on ends where it stopped
                detect(to_vad.flush() + audio.silence(vad_rate))
            start, end = (local if vad is not None else remote).span(speech.duration_ms)
            try:
                yield Heard(
                    text=" ".join(finals),
                    speech_start_ms=origin + start,
                    speech_end_ms=origin + end,
                    final_ms=final_ms,
                    detector=_detector(vad, remote),
                )
            finally:
                with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                    await stream.close()
                    await ended.wait()  # the last final: the STT has let go of the stream
                tg.cancel_scope.cancel()


@dataclass
class _Boundaries:
    """Where speech started and ended, in ms of the input's audio."""

    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)

    def add(self, event: SpeechStarted | SpeechEnded) -> None:
        (self.starts if isinstance(event, SpeechStarted) else self.ends).append(event.at_ms)

    def span(self, duration_ms: float) -> tuple[float, float]:
        """From the first start to the last end; the whole input where nothing says."""
        start = self.starts[0] if self.starts else 0.0
        end = self.ends[-1] if self.ends and self.ends[-1] > start else duration_ms
        return start, end


def _detector(vad: VAD | None, remote: _Boundaries) -> str:
    if vad is not None:
        return f"{type(vad).__name__} on the input (offline extra)"
    if remote.starts:
        return "the STT's speech events"
    return "none (the offline extra brings webrtcvad): the whole file counts as speech"


async def _send_in_real_time(
    stream: STTStream,
    speech: SpeechInput,
    to_stt: audio.Resampler,
    detect: Callable[[bytes], None],
    clock: SessionClock,
    origin: float,
) -> None:
    """20 ms chunks, each sent when it would have been spoken (its end), as a microphone does."""
    step = audio.ms_to_samples(CHUNK_MS, speech.sample_rate) * audio.SAMPLE_WIDTH
    for offset in range(0, len(speech.pcm), step):
        chunk = speech.pcm[offset : offset + step]
        spoken = audio.samples_to_ms(
            (offset + len(chunk)) // audio.SAMPLE_WIDTH, speech.sample_rate
        )
        await anyio.sleep(max(0.0, origin + spoken - clock.now_ms()) / 1000)
        pcm = to_stt.process(chunk)
        if offset + step >= len(speech.pcm):
            pcm += to_stt.flush()
        detect(pcm)
        await stream.send_audio(pcm)
