"""``voiceagent demo``: a live mic-to-speaker conversation with an agent when there is a
sound card; without one (a server, CI) file mode: a spoken question in, the reply in a WAV.

stdout gets what the agent said (one line a turn); stderr the components, what is loading,
and after each turn its lanes, its key figures and where the timeline picture is.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from voiceagent import loop
from voiceagent.agent import Agent
from voiceagent.agent_ref import load_agent
from voiceagent.commands import (
    CommandError,
    configure_logging,
    report_failure,
    start_llm,
    terminal_width,
    with_overrides,
    writable,
)
from voiceagent.llm import LLMEndpoint, resolve_llm_endpoint
from voiceagent.wire_text import one_line

if TYPE_CHECKING:
    from voiceagent.adapters.config import Components
    from voiceagent.llm import ElectronClient
    from voiceagent.ports import STT, TTS, VAD
    from voiceagent.rounds import TurnResult
    from voiceagent.session import Session

PROG = "voiceagent demo"
LOG_ENV = "VOICEAGENT_LOG"
QUESTION = "What's the weather in Paris?"  # file mode's question, spoken by the TTS
INPUT_RATE = 16000  # Hz: the microphone's, and file mode's question
TIMELINE_HTML = "demo-timeline.html"
FILE_MODE_LIMIT_S = 120.0  # file mode gives up on an answer after this long


@dataclass
class DemoSetup:
    """Everything chosen before any audio flows (so choice errors exit at once)."""

    agent: Agent
    agent_label: str
    endpoint: LLMEndpoint
    components: Components
    live: bool
    mode_reason: str  # why live or file mode, for the user
    out: Path
    timeline_json: Path | None
    timeline_html: Path
    barge_in: bool  # full duplex (headset): any speech interrupts the agent


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Runs the demo the parsed ``args`` describe; returns the exit code."""
    env = os.environ if environ is None else environ
    verbose = configure_logging(env)
    try:
        setup = prepare(args, env)
        return loop.run(run, setup, loop=getattr(args, "loop", None), env=env)
    except KeyboardInterrupt:  # the live demo's normal end
        print(f"{PROG}: stopped (Ctrl-C)", file=sys.stderr)
        return 0
    except Exception as error:
        from voiceagent.adapters.audio_devices import AudioUnavailable, DeviceError

        return report_failure(error, PROG, verbose, (AudioUnavailable, DeviceError))


def prepare(args: argparse.Namespace, environ: Mapping[str, str]) -> DemoSetup:
    """The agent, the endpoint, the components and the mode; raises the user errors."""
    from voiceagent.adapters import from_config

    agent = with_overrides(load_agent(args.agent), args)
    live, reason = _mode(force_file=args.file)
    components = from_config(
        tts=args.tts,
        tts_url=args.tts_url,
        voice=args.voice,
        language=agent.language,
        stt=args.stt,
        stt_url=args.stt_url,
        api_key=args.api_key,
        environ=environ,
        need_stt=True,
        input_rate=INPUT_RATE,
    )
    if components.tts is None:
        raise CommandError("the demo speaks and no TTS is available: apt-get install espeak-ng")
    out = writable(args.out, "--out")
    html = writable(args.timeline_html or TIMELINE_HTML, "--timeline-html")
    assert out is not None and html is not None  # both have values
    return DemoSetup(
        agent=agent,
        agent_label=args.agent or "built-in demo agent (voiceagent.demo_agent)",
        endpoint=resolve_llm_endpoint(args.llm_url, args.api_key, environ),
        components=components,
        live=live,
        mode_reason=reason,
        out=out,
        timeline_json=writable(args.timeline, "--timeline"),
        timeline_html=html,
        barge_in=args.barge_in,
    )


def _mode(*, force_file: bool) -> tuple[bool, str]:
    """(live?, why): live when a microphone and a speaker exist, unless --file."""
    if force_file:
        return False, "file mode (--file)"
    from voiceagent.adapters.audio_devices import AudioUnavailable, find_device

    try:
        mic, speaker = find_device(None, "input"), find_device(None, "output")
    except AudioUnavailable as error:
        return False, f"file mode: no audio devices ({error})"
    if mic is None or speaker is None:
        return False, "file mode: no input device (no microphone or no speaker found)"
    return True, f"live mode: microphone {mic.name!r}, speaker {speaker.name!r}"


async def run(setup: DemoSetup) -> int:
    """Components up (saying what loads), then the live conversation or file mode."""
    from voiceagent.llm import ElectronClient
    from voiceagent.llm.pool import aclose_shared_clients

    tts, stt = setup.components.tts, setup.components.stt
    assert tts is not None and stt is not None  # prepare() asked for both
    async with AsyncExitStack() as stack:
        stack.push_async_callback(aclose_shared_clients)
        print(setup.mode_reason, file=sys.stderr, flush=True)
        base_url = await start_llm(setup.endpoint, stack)
        _describe(setup)
        stack.push_async_callback(tts.aclose)
        vad = await load_models(stt, tts)
        client = ElectronClient(base_url, setup.endpoint.api_key, model=setup.agent.model)
        if setup.live:
            return await _live(setup, client, stt, tts, vad)
        return await _file(setup, client, stt, tts, vad)


def _describe(setup: DemoSetup) -> None:
    components, agent = setup.components, setup.agent
    lines = [components.description, *(f"     note: {n}" for n in components.notes)]
    lines.append(components.stt_description or "STT: none")
    tools = ", ".join(agent.registry.names) or "none"
    lines.append(f"agent: {setup.agent_label}; tools: {tools}; model: {agent.model}")
    print("\n".join(lines), file=sys.stderr, flush=True)


@asynccontextmanager
async def _step(what: str) -> AsyncIterator[None]:
    """One loading step on stderr: what it is now, how long it took when done."""
    print(f"loading {what} ...", end="", file=sys.stderr, flush=True)
    started = time.monotonic()
    yield
    print(f" ready in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


async def load_models(stt: STT, tts: TTS) -> VAD | None:
    """Load the models now, each said on screen, so the first turn is not kept waiting."""
    load = getattr(stt, "load", None)
    if load is not None:
        async with _step("the speech recogniser (Whisper tiny.en)"):
            await load()
    if getattr(tts, "start", None) is not None:  # a local voice (piper): warm it up
        async with _step("the voice (piper)"):
            await _synthesise(tts, "Ready.")
    async with _step("the voice activity detector"):
        vad, name = await anyio.to_thread.run_sync(choose_vad)
    print(f"VAD: {name}", file=sys.stderr, flush=True)
    return vad


def choose_vad() -> tuple[VAD | None, str]:
    """Silero (the offline extra), else WebRTC's, else none (the STT's speech events)."""
    try:
        from voiceagent.adapters.vad_silero import SileroVAD

        return SileroVAD(sample_rate=INPUT_RATE), "Silero (onnxruntime, offline)"
    except ImportError:
        pass
    try:
        from voiceagent.adapters.vad_webrtc import WebRTCVAD

        return WebRTCVAD(sample_rate=INPUT_RATE), "WebRTC (offline)"
    except ImportError:
        return None, "none: the STT's own speech events end the turn"


# --- the two modes --------------------------------------------------------------------------


async def _live(
    setup: DemoSetup, client: ElectronClient, stt: STT, tts: TTS, vad: VAD | None
) -> int:
    from voiceagent.adapters.sounddevice_transport import SoundDeviceTransport
    from voiceagent.session import Session

    transport = SoundDeviceTransport(half_duplex=not setup.barge_in)
    echo = (
        "barge-in on: any speech interrupts the agent (use a headset)"
        if setup.barge_in
        else "half-duplex: the mic is muted while the agent speaks, except a loud, sustained "
        "voice (open speakers; --barge-in with a headset)"
    )
    print(
        f"microphone at {transport.input_rate} Hz, {transport.block_ms:.0f} ms blocks; {echo}\n"
        "Listening: speak after the greeting. Ctrl-C ends.",
        file=sys.stderr,
        flush=True,
    )
    session = Session(
        setup.agent, transport, stt, tts, vad, llm=client, barge_in=True, idle_timeout_s=None
    )
    try:
        await _converse(setup, session, end_after_answer=False)
    finally:
        print(f"devices: {transport.stats()}", file=sys.stderr, flush=True)
    return 0


async def _file(
    setup: DemoSetup, client: ElectronClient, stt: STT, tts: TTS, vad: VAD | None
) -> int:
    from voiceagent.adapters.wav_transport import WavTransport
    from voiceagent.session import Session

    with tempfile.TemporaryDirectory(prefix="voiceagent-demo-") as folder:
        question = Path(folder) / "question.wav"
        await _speak_to_wav(tts, QUESTION, question)
        print(f'question: "{QUESTION}" (spoken by the TTS, heard through the STT)', file=sys.stderr)
        transport = WavTransport(
            question, setup.out, output_rate=tts.sample_rate, hang_up_after_s=FILE_MODE_LIMIT_S
        )
        # the greeting would be cut by the question (a barge-in): file mode only answers
        agent = dataclasses.replace(setup.agent, greeting=None)
        session = Session(
            agent, transport, stt, tts, vad, llm=client, barge_in=False, idle_timeout_s=None,
            reprompt=None, max_duration_s=FILE_MODE_LIMIT_S,
        )  # fmt: skip
        answered = await _converse(setup, session, end_after_answer=True)
    where = setup.out.resolve()
    if not answered:
        print(f"{PROG}: no answer (the STT heard nothing, or time ran out)", file=sys.stderr)
        return 1
    print(
        f"file mode: the spoken reply is in {where} (the speaker from the session's start: "
        "silence while the question is asked, then the answer)",
        file=sys.stderr,
        flush=True,
    )
    return 0


async def _synthesise(tts: TTS, text: str) -> bytes:
    async def fragments() -> AsyncIterator[str]:
        yield text

    return b"".join([chunk async for chunk in tts.synthesize(fragments())])


async def _speak_to_wav(tts: TTS, text: str, path: Path) -> None:
    from voiceagent import audio

    pcm = await _synthesise(tts, text)
    resampler = audio.Resampler(tts.sample_rate, INPUT_RATE)
    pcm = resampler.process(pcm) + resampler.flush()
    # a breath before and after: the VAD sees the speech start and end as a mic would
    padding = audio.silence(INPUT_RATE // 2)
    audio.write_wav(path, padding + pcm + padding, INPUT_RATE)


async def _converse(setup: DemoSetup, session: Session, *, end_after_answer: bool) -> bool:
    """Runs ``session``, reporting each turn; True when a user turn was answered."""
    from voiceagent.session_events import BargeIn, TurnEnded, UserTranscript

    events = session.events()
    answered = False
    async with anyio.create_task_group() as tg:

        async def report() -> None:
            nonlocal answered
            async for event in events:
                if isinstance(event, UserTranscript) and event.final:
                    print(f'you: "{one_line(event.text)}"', file=sys.stderr, flush=True)
                elif isinstance(event, BargeIn):
                    print("(barge-in: the agent stops)", file=sys.stderr, flush=True)
                elif isinstance(event, TurnEnded):
                    _report(setup, event.result, session)
                    if event.result.timeline.trigger == "user":
                        answered = True
                        if end_after_answer:
                            tg.start_soon(session.hang_up)

        tg.start_soon(report)
        await session.run()
    return answered


def _report(setup: DemoSetup, result: TurnResult, session: Session) -> None:
    """A finished turn: the timeline files, the line on stdout, lanes and figures on stderr."""
    session.timeline.write_html(setup.timeline_html)
    if setup.timeline_json is not None:
        session.timeline.write_json(setup.timeline_json)
    print(one_line(result.heard), flush=True)
    lines = [result.timeline.lanes(terminal_width()), key_figures(result.timeline.metrics())]
    lines.append(f"timeline picture: {setup.timeline_html.resolve()}")
    print("\n".join(lines), file=sys.stderr, flush=True)


def key_figures(metrics: Mapping[str, Any]) -> str:
    """The figures a voice agent lives by, in one line."""
    first = metrics["first_audio_ms"]
    parts = [f"end of speech -> first audio {'n/a' if first is None else f'{first:.0f} ms'}"]
    hidden, total = metrics["tool_hidden_ms"], metrics["tool_time_ms"]
    parts.append(
        "no tools"
        if hidden is None
        else f"tool time hidden behind speech {hidden:.0f} of {total:.0f} ms"
    )
    usage = metrics["usage"]
    if usage is None:
        parts.append("cached tokens n/a")
    else:
        estimate = " (estimated)" if usage["estimated"] else ""
        parts.append(f"cached tokens {usage['cached']}/{usage['prompt']}{estimate}")
    return "key figures: " + " | ".join(parts)
