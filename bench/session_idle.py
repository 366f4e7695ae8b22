"""Idle sessions, measured: the process's CPU while N sessions wait for their users.

From issue 16: "Each session's speaker ticks every 20 ms even when idle (idle CPU at 50
sessions 0.061–0.072 s/s, the peers 0.018–0.033)". Each session is the README's ``Session``
with a voice (TestTTS) on one shared ``ElectronClient`` pointed at the local simulator; the
user never says a word. After every session is up (and its greeting has played, with
``--greeting``), the process's CPU time (user + system, ``time.process_time``) is measured
over ``--seconds`` of wall-clock time: CPU seconds per second, for all N together.

Transports: ``console`` (``ConsoleTransport()``: its speaker is paced in real time and keeps
nothing), ``wav`` (``ConsoleTransport(WavSpeaker(file))``: the reply WAV, silences included).

Run: ``.venv/bin/python bench/session_idle.py [--sessions 1,50] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from session import sessions_list  # bench/session.py: N sessions the same way

from voiceagent.adapters.console import ConsoleTransport
from voiceagent.adapters.wav_speaker import WavSpeaker
from voiceagent.agent import Agent
from voiceagent.llm import ElectronClient
from voiceagent.session import Session
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS

RATE = 24000
PEERS = "pipecat 1.14 / LiveKit Agents 1.8.9, 50 sessions: 0.018–0.033 s/s (issue 16)"


async def silent_user() -> AsyncIterator[str]:
    await anyio.sleep_forever()
    yield "never"


async def idle_cpu(n: int, seconds: float, kind: str, greeting: bool, folder: Path) -> float:
    """CPU seconds per wall-clock second of this process while ``n`` sessions sit idle."""
    async with ElectronServer() as server:
        llm = ElectronClient(server.base_url)
        agent = Agent(
            instructions="Answer briefly.",
            greeting="Hello, how can I help?" if greeting else None,
        )
        sessions: list[Session] = []
        for index in range(n):
            speaker = WavSpeaker(folder / f"idle-{index}.wav", RATE) if kind == "wav" else None
            transport = ConsoleTransport(speaker, lines=silent_user())
            tts = TestTTS(RATE, first_byte_ms=20, ms_per_char=10)
            sessions.append(
                Session(agent, transport, tts=tts, llm=llm, idle_timeout_s=None, reprompt=None)
            )
        async with anyio.create_task_group() as tg:
            for session in sessions:
                tg.start_soon(session.run)
            for session in sessions:
                await session.ready()
            # the greetings played (about a second), then a moment to settle
            await anyio.sleep(2.0 if greeting else 0.5)
            gc.collect()
            wall, cpu = time.monotonic(), time.process_time()
            await anyio.sleep(seconds)
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            for session in sessions:
                await session.hang_up()
            tg.cancel_scope.cancel()
        return cpu / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=sessions_list, default=[1, 50], metavar="N[,N…]")
    parser.add_argument("--seconds", type=float, default=10.0, help="idle time measured")
    parser.add_argument("--transport", choices=["console", "wav", "both"], default="both")
    parser.add_argument("--greeting", action="store_true", help="each session greets first")
    args = parser.parse_args()
    kinds = ["console", "wav"] if args.transport == "both" else [args.transport]
    print(f"idle CPU, {args.seconds:g} s measured; CPU s per s for the whole process")
    print(f"{'transport':>10} {'N':>4} {'CPU s/s':>8} {'per session':>12}")
    for kind in kinds:
        for n in args.sessions:
            with contextlib.ExitStack() as resources:
                folder = Path(resources.enter_context(tempfile.TemporaryDirectory()))
                print(f"{kind}: {n} session(s)…", file=sys.stderr, flush=True)
                rate = anyio.run(idle_cpu, n, args.seconds, kind, args.greeting, folder)
            print(f"{kind:>10} {n:>4} {rate:>8.4f} {rate / n * 1000:>9.3f} ms")
    print(f"peers: {PEERS}")


if __name__ == "__main__":
    main()
