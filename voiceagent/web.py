"""``voiceagent web``: talk to an agent in a browser page. One port serves the page (plain
HTML and JS modules, package data) and its websocket; each page talking is a ``Session``.

stdout: the page's URL first, then what the agent said (one line a turn, as heard);
stderr: the components, what is loading, and each turn's lanes and key figures.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import signal
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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
    from voiceagent.adapters.web_transport import WebTransport
    from voiceagent.ports import TTS
    from voiceagent.rounds import TurnResult
    from voiceagent.session import Session

PROG = "voiceagent web"
LOG_ENV = "VOICEAGENT_LOG"
INPUT_RATE = 16000  # Hz: what the sessions hear (each page's microphone is resampled to it)

logger = logging.getLogger(__name__)


@dataclass
class WebSetup:
    """Everything chosen before the port opens (so choice errors exit at once)."""

    agent: Agent
    agent_label: str
    # voices loaded and idle: a page takes one (the first is warmed up before serving) or,
    # when none is idle, gets its own for as long as it talks
    idle_voices: list[TTS]
    args: argparse.Namespace
    environ: Mapping[str, str]
    endpoint: LLMEndpoint
    components: Components
    allow_origins: list[str]
    timeline_json: Path | None
    timeline_html: Path | None


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Serves the page the parsed ``args`` describe until SIGTERM or Ctrl-C."""
    env = os.environ if environ is None else environ
    verbose = configure_logging(env)
    try:
        setup = prepare(args, env)
        return loop.run(serve, setup, loop=getattr(args, "loop", None), env=env)
    except KeyboardInterrupt:
        return 0
    except Exception as error:
        return report_failure(error, PROG, verbose)


def prepare(args: argparse.Namespace, environ: Mapping[str, str]) -> WebSetup:
    """The agent, the endpoint and the components (as the demo chooses them)."""
    agent = with_overrides(load_agent(args.agent), args)
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port}: 0 (any free port) to 65535")
    origins = [allowed_origin(value) for value in args.allow_origin]
    components = _components(args, environ, agent, need_stt=True)
    if components.tts is None:
        raise CommandError("the page speaks and no TTS is available: apt-get install espeak-ng")
    return WebSetup(
        agent=agent,
        idle_voices=[components.tts],
        agent_label=args.agent or "built-in demo agent (voiceagent.demo_agent)",
        args=args,
        environ=environ,
        endpoint=resolve_llm_endpoint(args.llm_url, args.api_key, environ),
        components=components,
        allow_origins=origins,
        timeline_json=writable(args.timeline, "--timeline"),
        timeline_html=writable(args.timeline_html, "--timeline-html"),
    )


def allowed_origin(value: str) -> str:
    """An ``--allow-origin`` value checked: ``scheme://host[:port]``, nothing more."""
    parts = urlsplit(value.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise CommandError(f"--allow-origin {value}: an origin is scheme://host[:port]")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _components(
    args: argparse.Namespace, environ: Mapping[str, str], agent: Agent, *, need_stt: bool
) -> Components:
    from voiceagent.adapters import from_config

    return from_config(
        tts=args.tts, tts_url=args.tts_url, voice=args.voice, language=agent.language,
        stt=args.stt, stt_url=args.stt_url, api_key=args.api_key, environ=environ,
        need_stt=need_stt, input_rate=INPUT_RATE,
    )  # fmt: skip


async def serve(setup: WebSetup) -> int:
    """Loads the models, serves pages until SIGTERM (or Ctrl-C), then closes them."""
    from voiceagent.adapters.web_server import WebServer
    from voiceagent.demo import load_models
    from voiceagent.llm.pool import aclose_shared_clients

    tts, stt = setup.components.tts, setup.components.stt
    assert tts is not None and stt is not None  # prepare() asked for both
    async with AsyncExitStack() as stack:
        stack.push_async_callback(aclose_shared_clients)
        base_url = await start_llm(setup.endpoint, stack)
        lines = [setup.components.description, setup.components.stt_description or "STT: none"]
        tools = ", ".join(setup.agent.registry.names) or "none"
        lines.append(f"agent: {setup.agent_label}; tools: {tools}; model: {setup.agent.model}")
        print("\n".join(lines), file=sys.stderr, flush=True)
        stack.push_async_callback(tts.aclose)
        await load_models(stt, tts)  # the first page is not kept waiting for the models

        async def run_page(transport: WebTransport) -> None:
            await _page(setup, base_url, transport)

        server = WebServer(run_page, output_rate=tts.sample_rate, host=setup.args.host,
                           port=setup.args.port, allow_origins=setup.allow_origins)  # fmt: skip
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await server.start()
            print(server.url, flush=True)  # the first stdout line: where to point the browser
            allowed = ", ".join(setup.allow_origins) or "none"
            socket = server.url.replace("http", "ws", 1) + "ws"
            print(f"open {server.url} and press Talk; its websocket {socket} opens to that "
                  f"page's origin only (also allowed: {allowed})", file=sys.stderr)  # fmt: skip
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: closing {server.pages} page(s)",
                      file=sys.stderr, flush=True)  # fmt: skip
                break
            await server.aclose()
    print(f"served {server.pages_served} page(s)", file=sys.stderr)
    return 0


async def _page(setup: WebSetup, base_url: str, transport: WebTransport) -> None:
    """One page: a Session of the agent on it; the session's news sent to the page."""
    from voiceagent.demo import choose_vad
    from voiceagent.llm import ElectronClient
    from voiceagent.session import Session

    shared = bool(setup.idle_voices)
    tts = setup.idle_voices.pop() if shared else _voice(setup)
    client = ElectronClient(base_url, setup.endpoint.api_key, model=setup.agent.model)
    vad, _ = choose_vad()
    stt = setup.components.stt
    session = Session(setup.agent, transport, stt, tts, vad, llm=client, barge_in=True,
                      idle_timeout_s=None)  # fmt: skip
    print("a page connected", file=sys.stderr, flush=True)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_tell_the_page, setup, session, transport)
            await session.run()
    finally:
        if shared:
            setup.idle_voices.append(tts)
        else:
            with anyio.CancelScope(shield=True):
                await tts.aclose()
        bad = sum(transport.malformed.values())
        print(f"a page left ({session.ended}; {bad} malformed message(s) skipped)",
              file=sys.stderr, flush=True)  # fmt: skip


def _voice(setup: WebSetup) -> TTS:
    """A voice of its own for a page (the loaded ones are all talking)."""
    tts = _components(setup.args, setup.environ, setup.agent, need_stt=False).tts
    assert tts is not None  # prepare() found one with the same choices
    return tts


async def _tell_the_page(setup: WebSetup, session: Session, transport: WebTransport) -> None:
    from voiceagent.session_events import BargeIn, TurnEnded, TurnStarted, UserTranscript

    async for event in session.events():
        if isinstance(event, UserTranscript):
            transport.send_event({"type": "transcript", "text": event.text, "final": event.final})
        elif isinstance(event, TurnStarted):
            transport.send_event({"type": "turn_started", "trigger": event.trigger,
                                  "text": event.text})  # fmt: skip
        elif isinstance(event, BargeIn):
            transport.send_event({"type": "barge_in", "segment": event.segment})
        elif isinstance(event, TurnEnded):
            transport.send_event(turn_message(event.result))
            _report(setup, session, event.result)


def turn_message(result: TurnResult) -> dict[str, Any]:
    """A finished turn for the page: what was heard, what was not, and its timeline."""
    tl = result.timeline
    return {
        "type": "turn",
        "trigger": tl.trigger,
        "reason": result.reason,
        "heard": result.heard,
        "said": result.said,
        "unheard": unheard(result.said, result.heard),
        "timeline": tl.to_dict(),
    }


def unheard(said: str, heard: str) -> str:
    """The words of ``said`` that ``heard`` does not hold, in order (the tail a barge-in cut)."""
    said_words, heard_words = said.split(), heard.split()
    matcher = difflib.SequenceMatcher(a=said_words, b=heard_words, autojunk=False)
    kept = {i for b in matcher.get_matching_blocks() for i in range(b.a, b.a + b.size)}
    return " ".join(word for i, word in enumerate(said_words) if i not in kept)


def _report(setup: WebSetup, session: Session, result: TurnResult) -> None:
    """A finished turn: the line on stdout, the timeline files, lanes and figures on stderr."""
    from voiceagent.demo import key_figures

    print(one_line(result.heard), flush=True)
    try:
        if setup.timeline_json is not None:
            session.timeline.write_json(setup.timeline_json)
        if setup.timeline_html is not None:
            session.timeline.write_html(setup.timeline_html)
    except OSError as error:
        logger.warning("the timeline is not written: %s", error)
    lines = [result.timeline.lanes(terminal_width()), key_figures(result.timeline.metrics())]
    print("\n".join(lines), file=sys.stderr, flush=True)
