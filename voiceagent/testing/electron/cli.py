"""Command line of the Electron simulator: prints its base URL first on stdout, logs to stderr."""

from __future__ import annotations

import argparse
import functools
import logging
import sys

from voiceagent.testing._serving import configure_logging, run_until_signalled, until_signalled
from voiceagent.testing.electron.script import Script, ScriptError
from voiceagent.testing.electron.server import ElectronServer

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Serve a local Electron-compatible chat-completions API (OpenAI wire format, streamed SSE)
on POST /waves/v1/chat/completions and POST /v1/chat/completions.

This is a simulator, not a model: it understands nothing. Replies come from a --script file,
or from a tiny rule-based demo brain that knows a few phrasings about the weather, the time
and simple arithmetic. Use it for tests and offline demos; use Electron for real answers.

The first line printed on stdout is the base URL (e.g. http://127.0.0.1:8765/waves/v1);
log lines go to stderr.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port; 0 = any free port (default: %(default)s)"
    )
    parser.add_argument(
        "--script",
        metavar="FILE",
        help='JSON list of rounds, e.g. [{"text": "...", "tool_calls": [{"name": "...", '
        '"arguments": {}}]}]; round N answers requests holding N assistant messages',
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        metavar="N",
        help="in-flight request limit, 429 beyond it (0 = none, the default)",
    )
    parser.add_argument(
        "--fail",
        type=_statuses,
        default=[],
        metavar="STATUS,...",
        help="fail the next requests with these statuses, one each, in order (e.g. 502,503,429)",
    )
    parser.add_argument(
        "--pause-after",
        type=_pause,
        action="append",
        default=[],
        metavar="CHUNKS:SECONDS",
        help="go quiet for SECONDS after CHUNKS SSE events of the next stream (repeatable: "
        "one stream each; 1:30 = the role chunk, then 30 s of nothing)",
    )
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first token")
    parser.add_argument("--token-ms", type=float, default=0.0, help="delay between tokens")
    parser.add_argument(
        "--cache-ttl",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long the prefix cache remembers a request (default: %(default)s)",
    )
    parser.add_argument("--api-key", help="require this bearer key (never printed)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    return parser


def _statuses(text: str) -> list[int]:
    try:
        statuses = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected statuses like 502,503, not {text!r}") from None
    for status in statuses:
        if not 400 <= status <= 599:
            raise argparse.ArgumentTypeError(f"{status} is not a 4xx or 5xx status")
    return statuses


def _pause(text: str) -> tuple[int, float]:
    chunks, sep, seconds = text.partition(":")
    try:
        pause = int(chunks), float(seconds)
    except ValueError:
        pause = (-1, -1.0)
    if not sep or pause[0] < 0 or pause[1] < 0:
        raise argparse.ArgumentTypeError(f"expected CHUNKS:SECONDS like 1:30, not {text!r}")
    return pause


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    try:
        script = Script.from_file(args.script) if args.script else None
    except (OSError, ScriptError) as exc:
        print(f"{parser.prog}: cannot load --script: {exc}", file=sys.stderr)
        return 2
    server = ElectronServer(
        args.host,
        args.port,
        concurrency=args.concurrency,
        script=script,
        ttft_ms=args.ttft_ms,
        token_ms=args.token_ms,
        cache_ttl_s=args.cache_ttl,
        api_key=args.api_key,
    )
    for status in args.fail:
        server.faults.fail_next(1, status=status)
    for chunks, seconds in args.pause_after:
        server.faults.pause_after(chunks, seconds=seconds)
    return run_until_signalled(
        functools.partial(_serve, server), parser.prog, f"{args.host}:{args.port}"
    )


async def _serve(server: ElectronServer) -> None:
    async with server:
        print(server.base_url, flush=True)
        logger.info("Electron simulator (not a model) serving at %s", server.base_url)
        await until_signalled()
