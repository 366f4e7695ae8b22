"""Command line of the Lightning fake: prints its WebSocket URL first on stdout, logs to stderr."""

from __future__ import annotations

import argparse
import functools
import logging

from voiceagent.testing._serving import configure_logging, run_until_signalled, until_signalled
from voiceagent.testing.lightning.server import LightningServer
from voiceagent.testing.lightning.websocket import RESPONSE_IDS

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Serve a local Lightning-compatible TTS API: the streaming WebSocket on /waves/v1/tts/live
and POST /waves/v1/tts (on a second port, printed on stderr).

A fake, not a voice model: it speaks with espeak-ng when installed, else a synthetic tone.
The first line printed on stdout is the WebSocket URL (e.g. ws://127.0.0.1:8766/waves/v1/tts/live);
the second is the HTTP URL; log lines go to stderr.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    add("--port", type=int, default=8766, help="WebSocket port; 0 = any free port (%(default)s)")
    add("--http-port", type=int, default=0, help="HTTP port; 0 = any free port (the default)")
    add(
        "--account-limit",
        type=int,
        default=1,
        metavar="N",
        help="active requests per account, an error frame (HTTP 429) beyond (0 = none; 1)",
    )
    add("--first-byte-ms", type=float, default=0.0, help="delay before each request's audio")
    add(
        "--voice",
        choices=("espeak", "synthetic"),
        default="espeak",
        help="espeak (falls back to synthetic when espeak-ng is missing) or synthetic",
    )
    add(
        "--complete-backoff-ms",
        type=float,
        default=4000.0,
        help="default delay of 'complete' after the last chunk (%(default)s)",
    )
    add(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="close a socket after this long without a client message (%(default)s)",
    )
    add(
        "--keep-open",
        action="store_true",
        help="keep the socket open after 'complete' (the documented server closes it)",
    )
    add(
        "--response-ids",
        choices=RESPONSE_IDS,
        default="server",
        help="how frames name requests: server = a server UUID in request_id and the "
        "client's id in external_request_id (documented); echo = the client's id in "
        "request_id (older reading); uuid-only = the client's id never named (%(default)s)",
    )
    add(
        "--pace",
        type=float,
        default=0.25,
        help="seconds of sending per second of audio (default %(default)s = 4x real time)",
    )
    add("--fast", action="store_true", help="no pacing at all (same as --pace 0)")
    add("--drop-after", type=int, metavar="N", help="drop the next request's socket after N chunks")
    add(
        "--error-next",
        type=int,
        default=0,
        metavar="N",
        help="refuse the next N requests with a concurrency error frame",
    )
    add("--api-key", help="require this bearer key (never printed)")
    add("--quiet", action="store_true", help="no log lines")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    server = server_from_args(args)
    return run_until_signalled(
        functools.partial(_serve, server), parser.prog, f"{args.host}:{args.port}"
    )


def server_from_args(args: argparse.Namespace) -> LightningServer:
    """The server the parsed command line describes (not started)."""
    server = LightningServer(
        args.host,
        args.port,
        http_port=args.http_port,
        account_limit=args.account_limit,
        complete_backoff_default_ms=args.complete_backoff_ms,
        idle_timeout_s=args.idle_timeout,
        first_byte_ms=args.first_byte_ms,
        close_after_complete=not args.keep_open,
        response_ids=args.response_ids,
        voice=args.voice,
        api_key=args.api_key,
        pace=0.0 if args.fast else args.pace,
    )
    if args.drop_after is not None:
        server.faults.drop_after(args.drop_after)
    if args.error_next:
        server.faults.error_next(args.error_next)
    return server


async def _serve(server: LightningServer) -> None:
    async with server:
        print(server.ws_url, flush=True)
        print(server.http_url, flush=True)
        logger.info("Lightning fake (voice: %s) serving at %s", server.voice, server.ws_url)
        await until_signalled()
