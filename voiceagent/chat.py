"""``voiceagent chat``: typed turns with an agent, or one spoken turn from a WAV (``--in``);
stdout gets what the agent said (one line a turn), stderr everything else; ``--out`` records
the speech on the session clock.

The agent's greeting is not spoken here: chat answers what you type, and the greeting is
for phone bots and the live demo, where the agent speaks first.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import anyio.to_thread

from voiceagent import NotAvailableYet
from voiceagent.agent import Agent
from voiceagent.agent_ref import AgentRefError, load_agent
from voiceagent.llm import LLMEndpoint, resolve_llm_endpoint

if TYPE_CHECKING:
    from voiceagent.adapters.config import Components
    from voiceagent.listen import SpeechInput
    from voiceagent.rounds import TurnResult
    from voiceagent.timeline import Timeline

PROG = "voiceagent chat"
LOG_ENV = "VOICEAGENT_LOG"  # e.g. VOICEAGENT_LOG=info; debug also shows tracebacks
DEMO_ISSUE = "the demo issue"  # brings playing on an audio device
INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C (128 + SIGINT)

logger = logging.getLogger(__name__)


class ChatError(ValueError):
    """A usage error of ``voiceagent chat``; the message says what to do."""


def _user_errors() -> tuple[type[Exception], ...]:
    from voiceagent.adapters.config import ConfigError
    from voiceagent.listen import ListenError

    return (AgentRefError, NotAvailableYet, ChatError, ConfigError, ListenError)


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
    timeline_json: Path | None
    timeline_html: Path | None


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Runs the chat the parsed ``args`` describe; returns the exit code."""
    env = os.environ if environ is None else environ
    verbose = configure_logging(env)
    reader = LineReader(sys.stdin)
    try:
        setup = prepare(args, env)
        return anyio.run(session, setup, reader)
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
        leaf = _first_leaf(error)
        if isinstance(leaf, _user_errors()):
            print(f"{PROG}: error: {leaf}", file=sys.stderr)
            return 2
        logger.debug("chat failed", exc_info=error)
        hint = "" if verbose else f" (set {LOG_ENV}=debug for the traceback)"
        print(f"{PROG}: error: {type(leaf).__name__}: {leaf}{hint}", file=sys.stderr)
        return 1


def prepare(args: argparse.Namespace, environ: Mapping[str, str]) -> Setup:
    """The agent, the LLM endpoint and the components; raises the user errors."""
    from voiceagent.adapters import from_config

    speech_in = None
    if args.in_wav is not None:
        from voiceagent.listen import read_input

        speech_in = read_input(args.in_wav)
    if args.say is not None and not args.say.strip():
        raise ChatError("--say needs some text")
    agent = _with_overrides(load_agent(args.agent), args)
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
    out = _writable(args.out, "--out")
    if out is not None and components.tts is None:
        raise ChatError(
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
        timeline_json=_writable(args.timeline, "--timeline"),
        timeline_html=_writable(args.timeline_html, "--timeline-html"),
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
        base_url = await _start_llm(setup.endpoint, stack)
        _describe(setup)
        if tts is not None:
            stack.push_async_callback(tts.aclose)
        client = ElectronClient(base_url, setup.endpoint.api_key, model=agent.model)
        speech = SpeechQueue(tts) if setup.out is not None and tts is not None else None
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


def _report(setup: Setup, result: TurnResult, timeline: Timeline) -> int:
    """A finished turn out: the timeline files, the line on stdout, the lanes; 1 if it failed."""
    _write_timelines(setup, timeline)  # before the line: stdout readers may look
    print(" ".join(result.heard.split()), flush=True)
    print(result.timeline.lanes(_width()), file=sys.stderr, flush=True)
    return int(result.reason == "error")


async def _start_llm(endpoint: LLMEndpoint, stack: AsyncExitStack) -> str:
    """The LLM's base URL; with no endpoint configured, the simulator started in-process."""
    print(endpoint.describe(), file=sys.stderr)
    if endpoint.base_url is not None:
        return endpoint.base_url
    from voiceagent.testing.electron import ElectronServer

    server = await stack.enter_async_context(ElectronServer())
    print(
        f"     serving {server.base_url} in this process: a rule-based simulator, not a model",
        file=sys.stderr,
    )
    return server.base_url


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
    else:
        lines.append(
            f"output: text only; nothing is played (an audio device arrives with {DEMO_ISSUE}; "
            "--out FILE.wav records the speech)"
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
        self.interactive = _isatty(stream)

    async def read_line(self) -> str | None:
        """The next line, or None at end of input."""
        if self.interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        self.busy = True
        # abandon_on_cancel: Ctrl-C must not wait for a line that may never come
        line = await anyio.to_thread.run_sync(self.stream.readline, abandon_on_cancel=True)
        self.busy = False
        return line or None


def _with_overrides(agent: Agent, args: argparse.Namespace) -> Agent:
    """The agent with --model, --temperature, --seed and --language applied."""
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("model", args.model),
            ("temperature", args.temperature),
            ("seed", args.seed),
            ("language", args.language),
        )
        if value is not None
    }
    return dataclasses.replace(agent, **changes) if changes else agent


def _writable(value: str | None, option: str) -> Path | None:
    """The path of an output file, if its folder exists (checked now, not after a turn)."""
    if value is None:
        return None
    path = Path(value)
    if not path.parent.is_dir():
        raise ChatError(f"{option} {value}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ChatError(f"{option} {value} is a folder; give a file name")
    return path


def _write_timelines(setup: Setup, timeline: Any) -> None:
    if setup.timeline_json is not None:
        timeline.write_json(setup.timeline_json)
    if setup.timeline_html is not None:
        timeline.write_html(setup.timeline_html)


def _width() -> int:
    return max(60, min(160, shutil.get_terminal_size((100, 24)).columns))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _first_leaf(error: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    # duck-typed: BaseExceptionGroup is not a builtin on Python 3.10
    while isinstance(children := getattr(error, "exceptions", None), tuple) and children:
        error = children[0]
    return error


class _BriefFormatter(logging.Formatter):
    """Tracebacks only at DEBUG; otherwise a record's exception is one line of gist."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_info[1] is not None and not self.verbose:
            error = record.exc_info[1]
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return super().format(record)


def configure_logging(environ: Mapping[str, str]) -> bool:
    """Logs to stderr at WARNING, or at the level VOICEAGENT_LOG names; True at DEBUG."""
    name = environ.get(LOG_ENV, "").strip().upper() or "WARNING"
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_BriefFormatter(verbose=level <= logging.DEBUG))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # the in-process simulator logs every request at INFO: noise beside the agent's own logs
    logging.getLogger("voiceagent.testing").setLevel(max(level, logging.WARNING))
    return level <= logging.DEBUG
