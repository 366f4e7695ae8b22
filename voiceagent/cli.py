"""The ``voiceagent`` command: parses the documented option set and hands each subcommand
to the module that implements it (imported lazily, so ``--help`` stays instant)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from voiceagent import __version__

# subcommand -> the issue that brings it, for the ones this version does not run yet
_NOT_YET: dict[str, str] = {}

_PHONE_AUTH = """\
authentication (environment variables; with any set, every call path is checked and a carrier
with nothing configured is closed, 403; with none, anyone who finds the server can call it):
  TWILIO_AUTH_TOKEN         Twilio: X-Twilio-Signature over --public-url + path
  TWILIO_SHARED_KEY_SECRET  Twilio: a Webhook Rule's SharedKey (HMAC-SHA1 or -SHA256)
  PLIVO_AUTH_TOKEN          Plivo: X-Plivo-Signature-V3 over --public-url + path
  TELNYX_PUBLIC_KEY         Telnyx: telnyx-signature-ed25519 (pip install 'voiceagent[telnyx]')
  VOICEAGENT_STREAM_SECRET  any carrier: "Authorization: Bearer SECRET", Basic auth with
                            SECRET as password (Exotel: wss://KEY:SECRET@host/exotel), or
                            ?token=SECRET in the stream URL"""

_DESCRIPTION = """\
Streaming voice agents on Smallest AI's Electron (LLM), Lightning (TTS) and Pulse (STT),
or on any OpenAI-compatible endpoint.

With no API key the embedded defaults run offline: `voiceagent sim` serves a local
Electron-compatible simulator (rule-based, not a model)."""


def _add_shared_options(parser: argparse.ArgumentParser) -> None:
    """The option set shared by chat, demo and phone (DESIGN.md, "The command line")."""
    llm = parser.add_argument_group("LLM")
    llm.add_argument("--llm-url", help="OpenAI-compatible base URL (env ELECTRON_BASE_URL)")
    llm.add_argument("--api-key", help="credential sent to every URL given on the command line")
    llm.add_argument("--model", default=None, help="model name (default: electron)")
    llm.add_argument("--temperature", type=float, default=None)
    llm.add_argument("--seed", type=int, default=None)
    speech = parser.add_argument_group("speech")
    speech.add_argument(
        "--tts", choices=["lightning", "lightning-http", "piper", "espeak", "test"], default=None
    )
    speech.add_argument("--tts-url", help="Lightning endpoint (env LIGHTNING_URL)")
    speech.add_argument("--voice", default=None)
    speech.add_argument("--stt", choices=["pulse", "whisper", "test"], default=None)
    speech.add_argument("--stt-url", help="Pulse endpoint (env PULSE_URL)")
    speech.add_argument("--language", default=None, help="language code (default: en)")
    out = parser.add_argument_group("timeline")
    out.add_argument("--timeline", metavar="FILE.json", help="write each turn's timeline")
    out.add_argument("--timeline-html", metavar="FILE.html", help="write the timeline picture")
    run = parser.add_argument_group("runtime")
    run.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default=None,
        help="the event loop (env VOICEAGENT_LOOP; default: uvloop where installed)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voiceagent",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"voiceagent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser(
        "chat",
        help="talk to an agent by text or a WAV file",
        description="Talk to an agent by text: what it says goes to stdout, one line per "
        "turn; everything else to stderr. The agent's greeting is not spoken in chat (it is "
        "for phone bots and the demo). Without an agent reference, the built-in demo agent.",
    )
    chat.add_argument("agent", nargs="?", help="FILE.py[:NAME] or module[:NAME]")
    source = chat.add_mutually_exclusive_group()
    source.add_argument("--say", metavar="TEXT", help="one turn with this text (else stdin lines)")
    source.add_argument("--in", dest="in_wav", metavar="FILE.wav", help="speech input through STT")
    chat.add_argument("--out", metavar="FILE.wav", help="write the spoken reply")
    _add_shared_options(chat)

    demo = sub.add_parser("demo", help="live mic-to-speaker conversation (file mode without one)")
    demo.add_argument("agent", nargs="?", help="FILE.py[:NAME] or module[:NAME]")
    demo.add_argument("--file", action="store_true", help="force file mode")
    demo.add_argument("--out", metavar="FILE.wav", default="demo-reply.wav")
    demo.add_argument("--barge-in", action="store_true", help="allow barge-in on open speakers")
    _add_shared_options(demo)

    phone = sub.add_parser(
        "phone",
        help="serve phone calls (Twilio Media Streams and others)",
        epilog=_PHONE_AUTH,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    phone.add_argument("agent", nargs="?", help="FILE.py[:NAME] or module[:NAME]")
    phone.add_argument("--host", default="127.0.0.1")
    phone.add_argument("--port", type=int, default=8080, help="0 = any free port")
    phone.add_argument(
        "--public-url", help="the wss:// base the carrier dials (signatures are computed over it)"
    )
    carriers = ["twilio", "telnyx", "plivo", "exotel"]
    phone.add_argument("--carrier", choices=carriers, help="the carrier on / (else detected)")
    phone.add_argument("--twiml", action="store_true", help="print the TwiML and exit")
    phone.add_argument("--max-call-s", type=float, default=1800.0, help="longest call (seconds)")
    phone.add_argument("--drain-s", type=float, default=300.0, help="SIGTERM: calls may finish")
    phone.add_argument(
        "--max-calls",
        type=int,
        help="calls at once, per process (per worker with --workers); beyond, upgrades get 503 "
        "(default: no limit)",
    )
    phone.add_argument(
        "--max-pending",
        type=int,
        help="connections not started yet; beyond, upgrades get 503 "
        "(default: 2 x --max-calls, at least 16; no limit without --max-calls)",
    )
    phone.add_argument(
        "--start-timeout-s",
        type=float,
        default=5.0,
        help="a connection without its start message by then is closed (default: 5)",
    )
    phone.add_argument("--dtmf-text", action="store_true", help="keys pressed reach the agent")
    phone.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N processes on one port (SO_REUSEPORT; Linux balances them), one supervisor; "
        "SIGTERM drains them all; --max-calls counts per worker",
    )
    phone.add_argument(
        "--redis",
        metavar="URL",
        help="share the plan limits (Electron, Lightning) with every process on this Redis "
        "(env VOICEAGENT_REDIS_URL), e.g. redis://127.0.0.1:6379/0",
    )
    _add_shared_options(phone)

    web = sub.add_parser(
        "web",
        help="talk to an agent in a browser page",
        description="Serves one page and its websocket on one port: open the URL printed on "
        "the first stdout line, press talk, and speak.",
    )
    web.add_argument("agent", nargs="?", help="FILE.py[:NAME] or module[:NAME]")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8080, help="0 = any free port")
    web.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another origin that may open the websocket (default: the page's own only)",
    )
    _add_shared_options(web)

    sub.add_parser(
        "sim",
        help="serve the local Electron-compatible simulator (not a model)",
        add_help=False,  # its own parser owns --help
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"]:
        from voiceagent.testing.electron.cli import main as sim_main

        return sim_main(args_list[1:], prog="voiceagent sim")
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "chat":
        from voiceagent.chat import main as chat_main

        return chat_main(args)
    if getattr(args, "redis", None):
        # the plan limits' store reaches every limiter, and every worker process, this way
        os.environ["VOICEAGENT_REDIS_URL"] = args.redis
    if args.command == "phone":
        from voiceagent.phone import main as phone_main

        return phone_main(args)
    if args.command == "demo":
        from voiceagent.demo import main as demo_main

        return demo_main(args)
    if args.command == "web" and "web" not in _NOT_YET:
        from voiceagent.web import main as web_main

        return web_main(args)
    print(
        f"voiceagent {args.command} is not available yet: it arrives with "
        f"{_NOT_YET[args.command]}. What works now: voiceagent chat, demo, phone and sim.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
