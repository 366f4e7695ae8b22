"""``voiceagent chat``: typed turns with an agent, or one spoken turn from a WAV (``--in``);
stdout gets what the agent said (one line a turn), stderr everything else; ``--out`` records
the speech on the session clock.

The agent's greeting is not spoken here: chat answers what you type, and the greeting is
for phone bots and the live demo, where the agent speaks first.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import anyio.to_thread

from voiceagent import loop
from voiceagent.agent import Agent
from voiceagent.agent_ref import load_agent
from voiceagent.commands import (
    INTERRUPTED,
    CommandError,
    configure_logging,
    isatty,
    report_failure,
    start_llm,
    terminal_width,
    with_overrides,
    writable,
)
from voiceagent.llm import LLMEndpoint, resolve_llm_endpoint
from voiceagent.wire_text import one_line

if TYPE_CHECKING:
    from voiceagent.adapters.audio_devices import Device
    from voiceagent.adapters.config import Components
    from voiceagent.listen import SpeechInput
    from voiceagent.rounds import TurnResult
    from voiceagent.timeline import Timeline

PROG = "voiceagent chat"


@dataclass
class Setup:
    """Everything chosen before the session starts (so choice errors exit before any I/O)."""

    agent: Agent
    agent_label: str
    endpoint: LLMEndpoint
    components: Components
    say: str | None
    speech_in: SpeechInput | None  # --in: the WAV file to hear
    out: Path | None
    device: Device | None  # without --out: the default output device, if one exists
    timeline_json: Path | None
    timeline_html: Path | None


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Runs the chat the parsed ``args`` describe; returns the exit code."""
    env = os.environ if environ is None else environ
    verbose = configure_logging(env)
    reader = LineReader(sys.stdin)
    try:
        setup = prepare(args, env)
        return loop.run(session, setup, reader, loop=getattr(args, "loop", None), env=env)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        if reader.busy:
            # A thread blocked in stdin.readline() cannot be interrupted, and a normal exit
            # would wait for it (for Enter). Everything else has been closed by now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        return INTERRUPTED
    except Exception as error:
        return report_failure(error, PROG, verbose)


def prepare(args: argparse.Namespace, environ: Mapping[str, str]) -> Setup:
    """The agent, the LLM endpoint and the components; raises the user errors."""
    from voiceagent.adapters import from_config

    speech_in = None
    if args.in_wav is not None:
        from voiceagent.listen import read_input

        speech_in = read_input(args.in_wav)
    if args.say is not None and not args.say.strip():
        raise CommandError("--say needs some text")
    agent = with_overrides(load_agent(args.agent), args)
    components = from_config(
        tts=args.tts,
        tts_url=args.tts_url,
        voice=args.voice,
        language=agent.language,
        stt=args.stt,
        stt_url=args.stt_url,
        api_key=args.api_key,
        environ=environ,
        need_stt=speech_in is not None,  # whisper loads a model: only for speech to hear
        input_rate=speech_in.sample_rate if speech_in is not None else None,
    )
    out = writable(args.out, "--out")
    if out is not None and components.tts is None:
        raise CommandError(
            "--out needs a TTS and none is available: install espeak-ng "
            "(apt-get install espeak-ng), or use --tts test for test tones"
        )
    label = args.agent or "built-in demo agent (voiceagent.demo_agent)"
    return Setup(
        agent=agent,
        agent_label=label,
        endpoint=resolve_llm_endpoint(args.llm_url, args.api_key, environ),
        components=components,
        say=args.say,
        speech_in=speech_in,
        out=out,
        device=_output_device() if out is None and components.tts is not None else None,
        timeline_json=writable(args.timeline, "--timeline"),
        timeline_html=writable(args.timeline_html, "--timeline-html"),
    )


async def session(setup: Setup, reader: LineReader) -> int:
    """The whole chat: components up, one turn per input, timelines rewritten after each."""
    from voiceagent.history import History
    from voiceagent.listen import answer_speech
    from voiceagent.llm import ElectronClient
    from voiceagent.llm.pool import aclose_shared_clients
    from voiceagent.speech import SpeechQueue
    from voiceagent.timeline import SessionClock, Timeline
    from voiceagent.turn import TurnEngine

    agent, tts = setup.agent, setup.components.tts
    async with AsyncExitStack() as stack:
        stack.push_async_callback(aclose_shared_clients)
        base_url = await start_llm(setup.endpoint, stack)
        _describe(setup)
        if tts is not None:
            stack.push_async_callback(tts.aclose)
        client = ElectronClient(base_url, setup.endpoint.api_key, model=agent.model)
        heard = setup.out is not None or setup.device is not None
        speech = SpeechQueue(tts) if heard and tts is not None else None
        clock = SessionClock()  # t=0 of the session, and sample 0 of the --out WAV
        timeline = Timeline(clock)
        history = History(agent.instructions, context=agent.context)
        engine = TurnEngine(agent, client, history, timeline, speech=speech)
        failed = 0
        async with anyio.create_task_group() as tg:
            if speech is not None and setup.out is not None:
                from voiceagent.adapters.wav_speaker import WavSpeaker

                speaker = WavSpeaker(setup.out, sample_rate=speech.sample_rate, origin=clock.origin)
                tg.start_soon(speaker.play, speech, name="speaker")
            elif speech is not None and setup.device is not None:
                from voiceagent.adapters.device_speaker import DeviceSpeaker

                device_speaker = DeviceSpeaker(setup.device, origin=clock.origin)
                tg.start_soon(device_speaker.play, speech, name="speaker")
            if setup.say is None and setup.speech_in is None and reader.interactive:
                print("Type a message and press Enter; Ctrl-D ends.", file=sys.stderr)
            try:
                if setup.speech_in is not None:
                    stt = setup.components.stt
                    assert stt is not None  # prepare() asked for one
                    spoken = await answer_speech(stt, setup.speech_in, engine, clock)
                    failed = 1 if spoken is None else _report(setup, spoken, timeline)
                while setup.speech_in is None and (text := await _next_text(setup.say, reader)):
                    failed += _report(setup, await engine.run(text), timeline)
                    if setup.say is not None:
                        break
            finally:
                if timeline.turns:  # an interrupted turn is kept too (its turn.end says so)
                    _write_timelines(setup, timeline)
            tg.cancel_scope.cancel()  # the speaker plays until stopped: the WAV closes here
    return 1 if failed else 0


def _output_device() -> Device | None:
    """The default output device, when the `audio` extra and a sound card are there."""
    from voiceagent.adapters.audio_devices import AudioUnavailable, DeviceError, find_device

    try:
        return find_device(None, "output")
    except (AudioUnavailable, DeviceError):
        return None


def _report(setup: Setup, result: TurnResult, timeline: Timeline) -> int:
    """A finished turn out: the timeline files, the line on stdout, the lanes; 1 if it failed."""
    _write_timelines(setup, timeline)  # before the line: stdout readers may look
    print(one_line(result.heard), flush=True)  # one line a turn, whatever the model wrote
    print(result.timeline.lanes(terminal_width()), file=sys.stderr, flush=True)
    return int(result.reason == "error")


def _describe(setup: Setup) -> None:
    """The components chosen, on stderr (the LLM line is already out)."""
    components, agent = setup.components, setup.agent
    lines = [components.description, *(f"     note: {n}" for n in components.notes)]
    if setup.speech_in is not None and components.stt_description is not None:
        wav = setup.speech_in
        lines.append(components.stt_description)
        lines.append(
            f"input: {wav.path} ({wav.duration_ms / 1000:.1f} s at {wav.sample_rate} Hz, "
            "streamed in real time)"
        )
    if setup.out is not None:
        lines.append(
            f"output: {setup.out} (16-bit mono WAV, {components.sample_rate} Hz, "
            "real time from the session's start)"
        )
    elif setup.device is not None:
        lines.append(f"output: playing on {setup.device.name!r} (--out FILE.wav records instead)")
    else:
        lines.append(
            "output: text only: no audio device (the `audio` extra and a sound card play the "
            "speech; --out FILE.wav records it)"
        )
    tools = ", ".join(agent.registry.names) or "none"
    lines.append(f"agent: {setup.agent_label}; tools: {tools}; model: {agent.model}")
    if agent.greeting:
        lines.append("     its greeting is not spoken in chat (it is for phone bots and the demo)")
    print("\n".join(lines), file=sys.stderr, flush=True)


async def _next_text(say: str | None, reader: LineReader) -> str | None:
    """The next turn's text: --say once, else the next non-blank stdin line; None at the end."""
    if say is not None:
        return say
    while (line := await reader.read_line()) is not None:
        if line.strip():
            return line.strip()
    return None


class LineReader:
    """Reads stdin one line at a time, only when asked: each turn ends before the next read."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.busy = False  # a thread is blocked reading a line
        self.interactive = isatty(stream)

    async def read_line(self) -> str | None:
        """The next line, or None at end of input."""
        if self.interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        self.busy = True
        # abandon_on_cancel: Ctrl-C must not wait for a line that may never come
        line = await anyio.to_thread.run_sync(self.stream.readline, abandon_on_cancel=True)
        self.busy = False
        return line or None


def _write_timelines(setup: Setup, timeline: Any) -> None:
    if setup.timeline_json is not None:
        timeline.write_json(setup.timeline_json)
    if setup.timeline_html is not None:
        timeline.write_html(setup.timeline_html)
