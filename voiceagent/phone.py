"""``voiceagent phone``: serves phone calls (Twilio Media Streams), one ``Session`` of the agent
per call; ``--twiml`` prints what to paste into Twilio. SIGTERM drains, then exits.
``--workers N`` (N > 1) hands the port to N such processes under a supervisor
(``phone_workers``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from voiceagent import loop, phone_outbound
from voiceagent.agent import Agent
from voiceagent.agent_ref import load_agent
from voiceagent.commands import (
    configure_logging,
    first_leaf,
    start_llm,
    user_errors,
    with_overrides,
)
from voiceagent.heap import trimming
from voiceagent.llm import LLMEndpoint, resolve_llm_endpoint
from voiceagent.sparse_log import SparseLog
from voiceagent.wire_text import file_in, one_line, printable

if TYPE_CHECKING:
    from voiceagent.adapters.config import Components
    from voiceagent.adapters.phone_auth import PhoneAuth
    from voiceagent.adapters.phone_transport import PhoneTransport
    from voiceagent.ports import STT, VAD
    from voiceagent.session import Session

PROG = "voiceagent phone"
PHONE_RATE = 8000  # Hz: the line's; Lightning and Pulse are asked for it, so nothing resamples
LOOP_LAG_ENV = "VOICEAGENT_LOOP_LAG_FILE"  # opt-in: event-loop lag and task count, for bench/
LAG_TICK_S = 0.010
# A call's keys on stderr: each at a human pace (this many at once, one more every
# DTMF_LOG_EVERY_S); a caller sending thousands gets a count instead (sparse_log).
DTMF_LOG_BURST = 20
DTMF_LOG_EVERY_S = 5.0

logger = logging.getLogger(__name__)


class PhoneError(ValueError):
    """A usage error of ``voiceagent phone``; the message says what to do."""


@dataclass
class PhoneSetup:
    agent: Agent
    args: argparse.Namespace
    environ: Mapping[str, str]
    endpoint: LLMEndpoint
    stt: STT
    description: str
    timeline_dir: Path | None


def stream_url(public_url: str) -> str:
    try:
        return phone_outbound.stream_url(public_url)
    except ValueError as error:
        raise PhoneError(f"--public-url: {error}") from error


def twiml(public_url: str) -> str:
    """The TwiML that connects a call to this server."""
    stream_url(public_url)
    return phone_outbound.twiml(public_url)


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    configure_logging(env)
    try:
        if args.twiml:
            if not args.public_url:
                raise PhoneError("--twiml needs --public-url (the wss:// base Twilio dials)")
            print(twiml(args.public_url))
            return 0
        workers = getattr(args, "workers", 1)
        if workers is None or workers < 1:
            raise PhoneError(f"--workers {workers}: at least 1")
        if workers > 1:
            from voiceagent import phone_workers

            check(args, env)  # a usage error is said once, not by every worker
            return phone_workers.supervise(args, env)
        return loop.run(serve, prepare(args, env), loop=getattr(args, "loop", None), env=env)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        leaf = first_leaf(error)
        from voiceagent.adapters.phone_server import SignatureConfigError

        if isinstance(leaf, (*user_errors(), PhoneError, SignatureConfigError)):
            print(f"{PROG}: error: {leaf}", file=sys.stderr)
            return 2
        print(f"{PROG}: error: {type(leaf).__name__}: {leaf}", file=sys.stderr)
        return 1


def prepare(args: argparse.Namespace, env: Mapping[str, str]) -> PhoneSetup:
    """The agent, the LLM endpoint and the components, chosen (and checked) before serving."""
    agent = with_overrides(load_agent(args.agent), args)
    check(args, env)
    folder = Path(args.timeline) if args.timeline else None
    components = _components(args, env, agent, need_stt=True)
    assert components.stt is not None  # need_stt: from_config chose one or raised
    if hasattr(components.stt, "frame_ms"):  # Pulse: 100 ms frames, not 20 (its limit is 20-100):
        components.stt.frame_ms = 100  # a socket send per 20 ms per call topped bench/phone_load
    lines = [components.description, components.stt_description or ""]
    endpoint = resolve_llm_endpoint(args.llm_url, args.api_key, env)
    return PhoneSetup(agent, args, env, endpoint, components.stt, "\n".join(lines), folder)


def check(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """The options' own errors (PhoneError), without loading the agent or any component."""
    if args.public_url:
        stream_url(args.public_url)  # checked now, not at the first call
    phone_auth(args, env)  # so are the credentials
    folder = Path(args.timeline) if args.timeline else None
    if args.max_calls is not None and args.max_calls < 1:
        raise PhoneError(f"--max-calls {args.max_calls}: at least 1 (leave it out for no limit)")
    if getattr(args, "max_pending", None) is not None and args.max_pending < 1:
        raise PhoneError(f"--max-pending {args.max_pending}: at least 1")
    if not getattr(args, "start_timeout_s", 5.0) > 0:
        raise PhoneError(f"--start-timeout-s {args.start_timeout_s}: more than 0 seconds")
    if folder is not None and not folder.is_dir():
        raise PhoneError(f"--timeline {args.timeline}: on a phone it is a folder (a file per call)")


def phone_auth(args: argparse.Namespace, env: Mapping[str, str]) -> PhoneAuth:
    """The calls' authentication from the environment (phone_auth.ENV), over --public-url."""
    from voiceagent.adapters.phone_auth import PhoneAuth

    public = stream_url(args.public_url).removesuffix("/twilio") if args.public_url else None
    return PhoneAuth.from_env(env, public)


def _components(
    args: argparse.Namespace, env: Mapping[str, str], agent: Agent, *, need_stt: bool
) -> Components:
    from voiceagent.adapters import from_config

    return from_config(
        tts=args.tts, tts_url=args.tts_url, voice=args.voice, language=agent.language,
        stt=args.stt, stt_url=args.stt_url, api_key=args.api_key, environ=env,
        sample_rate=PHONE_RATE, need_stt=need_stt, input_rate=PHONE_RATE,
    )  # fmt: skip


async def serve(setup: PhoneSetup) -> int:
    """Serves calls until SIGTERM (or Ctrl-C), then drains: no new calls, the rest finish."""
    from voiceagent.adapters.phone_server import PhoneServer
    from voiceagent.llm.pool import aclose_shared_clients

    args = setup.args
    async with AsyncExitStack() as stack:
        stack.push_async_callback(aclose_shared_clients)
        if lag_file := setup.environ.get(LOOP_LAG_ENV):
            await stack.enter_async_context(loop_lag_recorder(Path(lag_file)))
        await stack.enter_async_context(trimming())  # what bursts of calls freed goes back
        base_url = await start_llm(setup.endpoint, stack)
        print(setup.description, file=sys.stderr, flush=True)

        async def run_call(transport: PhoneTransport) -> None:
            await _call(setup, base_url, transport)

        server = PhoneServer(
            run_call,
            host=args.host,
            port=args.port,
            public_url=stream_url(args.public_url).removesuffix("/twilio")
            if args.public_url
            else None,
            auth=phone_auth(args, setup.environ),
            dtmf_text=args.dtmf_text,
            carrier=getattr(args, "carrier", None),  # "/" speaks it instead of detecting
            max_calls=getattr(args, "max_calls", None),
            max_pending=getattr(args, "max_pending", None),
            start_timeout_s=getattr(args, "start_timeout_s", 5.0),
            reuse_port=getattr(args, "reuse_port", False),  # one of --workers N
            health=worker_health(args),
        )
        _warm_up(setup, base_url)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await server.start()
            # what the process built to start (modules, the agent, clients) lives as long as
            # it: out of the collector's sight, so full collections under load scan only
            # the calls' objects (lag spikes in bench/phone_load)
            gc.collect()
            gc.freeze()
            print(server.url, flush=True)  # the first stdout line: where to dial
            print(f"serving calls; {server.auth.describe()}; GET /health", file=sys.stderr)
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: draining {server.calls} call(s), "
                      f"up to {args.drain_s:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
                break
            await server.drain(args.drain_s)
    print(f"served {server.calls_served} call(s)", file=sys.stderr)
    return 0


def _warm_up(setup: PhoneSetup, base_url: str) -> None:
    """What the first call would build inside the event loop while every call waits (lag
    spikes and late frames when calls come in a burst): the call's modules, the μ-law
    tables, the pooled HTTP client of the LLM."""
    from voiceagent import audio, session, session_events  # noqa: F401  (as _call does)
    from voiceagent.llm import ElectronClient

    audio.ulaw_decode(audio.ulaw_encode(bytes(2)))
    ElectronClient(base_url, setup.endpoint.api_key, model=setup.agent.model).warm()


def worker_health(args: argparse.Namespace) -> dict[str, object]:
    """What /health adds in one of ``--workers N``: its number and pid (which one answered)."""
    number = getattr(args, "worker", None)
    return {} if number is None else {"worker": number, "pid": os.getpid()}


async def _call(setup: PhoneSetup, base_url: str, transport: PhoneTransport) -> None:
    """One call: a Session of the agent on the line, its timeline written after each turn."""
    from voiceagent.llm import ElectronClient
    from voiceagent.session import Session
    from voiceagent.session_events import TurnEnded

    call_id = transport.call_id  # as the carrier sent it
    call_sid = printable(call_id)  # what stdout and stderr show of it: one inert line
    tts = _components(setup.args, setup.environ, setup.agent, need_stt=False).tts
    agent = setup.agent
    client = ElectronClient(base_url, setup.endpoint.api_key, model=agent.model)
    session = Session(agent, transport, setup.stt, tts, _vad(), llm=client,
                      max_duration_s=setup.args.max_call_s)  # fmt: skip
    keys = _dtmf_log(call_sid, transport)
    transport.on_dtmf = lambda key: keys(printable(key))
    print(f"{call_sid} call started", file=sys.stderr, flush=True)

    async def watch() -> None:
        async for event in session.events():
            if isinstance(event, TurnEnded):
                print(f"{call_sid} {one_line(event.result.heard)}", flush=True)
                _write_timeline(setup, session, call_id)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await session.run()
    finally:
        _write_timeline(setup, session, call_id)
        if tts is not None:
            with anyio.CancelScope(shield=True):
                await tts.aclose()
        keys.flush(always=transport.digits_dropped > 0 or transport.keypad_dropped > 0)
        print(f"{call_sid} call ended ({session.ended})", file=sys.stderr, flush=True)


def _dtmf_log(call_sid: str, transport: PhoneTransport) -> SparseLog:
    """``{call_sid} DTMF 5`` on stderr for each key while at a human pace; beyond, a line
    that counts them and the keys dropped (``digits`` keeps the newest, a line of keypad text
    is bounded): told now and then, and at the call's end (``flush``)."""

    def key(digit: str) -> None:
        print(f"{call_sid} DTMF {digit}", file=sys.stderr)

    def count(untold: int, total: int) -> None:
        from voiceagent.adapters.phone_transport import DIGITS_KEPT, KEYPAD_LINE_MAX

        dropped = ""
        if transport.digits_dropped:
            dropped += (f"; {transport.digits_dropped} dropped from its record "
                        f"(the newest {DIGITS_KEPT} kept)")  # fmt: skip
        if transport.keypad_dropped:
            dropped += (f"; {transport.keypad_dropped} dropped from keypad text "
                        f"(at most {KEYPAD_LINE_MAX} a line)")  # fmt: skip
        print(f"{call_sid} DTMF: {untold} more keys not shown, {total} in the call{dropped}",
              file=sys.stderr, flush=True)  # fmt: skip

    return SparseLog(key, count, burst=DTMF_LOG_BURST, every_s=DTMF_LOG_EVERY_S)


def _write_timeline(setup: PhoneSetup, session: Session, call_id: str) -> None:
    """The call's timeline as ``DIR/<its id made a safe file name>.json``; a file that
    cannot be written is logged, and the call goes on."""
    if setup.timeline_dir is None or not session.timeline.turns:
        return
    try:
        session.timeline.write_json(file_in(setup.timeline_dir, call_id, ".json"))
    except (OSError, ValueError) as error:
        logger.warning("call %s: the timeline is not written: %s", printable(call_id), error)


@asynccontextmanager
async def loop_lag_recorder(path: Path, tick_s: float = LAG_TICK_S) -> AsyncIterator[None]:
    """While open, a ticker sleeps ``tick_s`` and appends to ``path`` once a second a JSON line
    ``{"t": monotonic, "lag_ms": [oversleep of each tick], "tasks": asyncio tasks alive}``
    (``VOICEAGENT_LOOP_LAG_FILE``: how bench/phone_load.py sees the event loop's health)."""

    async def tick() -> None:
        running = asyncio.get_running_loop()
        lags: list[float] = []
        flushed = running.time()
        with path.open("a") as out:
            while True:
                before = running.time()
                await anyio.sleep(tick_s)
                now = running.time()
                lags.append(round((now - before - tick_s) * 1000, 3))
                if now - flushed >= 1.0:
                    line = {"t": now, "lag_ms": lags, "tasks": len(asyncio.all_tasks())}
                    out.write(json.dumps(line) + "\n")
                    out.flush()
                    lags, flushed = [], now

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        yield
        tg.cancel_scope.cancel()


def _vad() -> VAD | None:
    """WebRTC's VAD at the line's rate when installed (cheap per call); else the STT's own."""
    try:
        from voiceagent.adapters.vad_webrtc import WebRTCVAD

        return WebRTCVAD(sample_rate=PHONE_RATE)
    except ImportError:
        return None
