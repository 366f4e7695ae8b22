"""Command line of the Pulse fake: prints its WebSocket URL first on stdout, logs to stderr."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from voiceagent import audio
from voiceagent.testing._serving import configure_logging, run_until_signalled, until_signalled
from voiceagent.testing.pulse.server import PulseServer
from voiceagent.testing.pulse.transcribe import UtteranceTable

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Serve a local Pulse-compatible streaming STT WebSocket on /waves/v1/stt/live (settings in the
query string, binary audio frames, JSON transcripts and VAD events, finalize, close_stream).

A fake, not a speech model. --transcribe whisper uses offline whisper (the offline extra);
--transcribe table knows only the utterances given with --table FILE.json
([{"wav": "hello.wav", "text": "hello there"}, ...]) or --learn TEXT (spoken by espeak-ng
here and remembered); other speech transcribes to "". auto (the default) picks whisper when
installed. The first line on stdout is the URL, e.g. ws://127.0.0.1:8767/waves/v1/stt/live.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    add("--port", type=int, default=8767, help="port; 0 = any free port (default: %(default)s)")
    add("--transcribe", choices=("auto", "whisper", "table"), default="auto")
    add("--table", metavar="FILE.json", help="known utterances: a JSON list of {wav, text}")
    add("--learn", metavar="TEXT", action="append", default=[], help="espeak-ng says it; known")
    add("--concurrency", type=int, default=0, metavar="N", help="open streams, 1008 beyond it")
    add("--eou-timeout-ms", type=int, default=800, help="silence that ends an utterance")
    add("--partial-every-ms", type=float, default=240.0, help="speech between partials")
    add("--speed", type=float, default=1.0, help="seconds of processing per second of audio")
    add("--fast", action="store_true", help="no pacing at all (same as --speed 0)")
    add("--drop-after", type=int, metavar="N", help="drop the first connection after N messages")
    add("--error-after", type=int, metavar="N", help="error frame after N messages, then close")
    add("--final-delay-ms", type=float, default=0.0, help="hold back every final this long")
    add("--api-key", help="require this bearer key (never printed)")
    add("--quiet", action="store_true", help="no per-connection log lines")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    try:
        table = _load_table(args.table)
        server = PulseServer(
            args.host,
            args.port,
            transcribe=args.transcribe,
            table=table,
            concurrency=args.concurrency,
            eou_timeout_ms=args.eou_timeout_ms,
            partial_every_ms=args.partial_every_ms,
            speed=0.0 if args.fast else args.speed,
            api_key=args.api_key,
            record_audio=False,  # nobody can read a process's records: keeping frames only grows
        )
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 2
    if args.drop_after is not None:
        server.faults.drop_after(args.drop_after)
    if args.error_after is not None:
        server.faults.error_after(args.error_after)
    if args.final_delay_ms:
        server.faults.delay_finals(args.final_delay_ms, times=10**9)
    return run_until_signalled(
        functools.partial(_serve, server, args.learn), parser.prog, f"{args.host}:{args.port}"
    )


def _load_table(path: str | None) -> UtteranceTable:
    table = UtteranceTable()
    if path:
        folder = Path(path).parent
        for entry in json.loads(Path(path).read_text()):
            pcm, rate = audio.read_wav(folder / entry["wav"])
            table.add(pcm, str(entry["text"]), rate)
    return table


async def _serve(server: PulseServer, learn: list[str]) -> None:
    if learn:
        from voiceagent.adapters.espeak import EspeakTTS

        tts = EspeakTTS(sample_rate=16000)
        for text in learn:
            pcm = b"".join([chunk async for chunk in tts.synthesize(_one(text))])
            server.table.add(pcm, text, 16000)
    async with server:
        print(server.url, flush=True)
        logger.info("Pulse fake (transcribing with %s) at %s", server.transcriber_name, server.url)
        await until_signalled()


async def _one(text: str) -> AsyncIterator[str]:
    yield text
