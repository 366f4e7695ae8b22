"""Command line of the Twilio caller: one simulated call, then a summary on stdout."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio
from websockets.exceptions import WebSocketException

from voiceagent.testing.twilio.caller import TwilioCaller

DESCRIPTION = """\
Place one simulated Twilio Media Streams call to a bot's websocket URL: connected, start
(with --param k=v as customParameters), the WAV as 20 ms μ-law media frames, then silence
until --trailing-silence seconds have passed (or the bot closes), then stop. The bot's
audio plays through a model of Twilio's buffer (marks echoed as they play, clear honoured).

Prints what the caller heard (a WAV path), the marks and any protocol errors.
Exit status: 0 for a clean call, 1 when the bot broke the protocol, 2 for bad arguments.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("url", help="the bot's websocket URL, e.g. ws://127.0.0.1:8080/twilio")
    add("--wav", metavar="FILE", help="what the caller says (16-bit PCM mono WAV)")
    add("--speed", type=float, default=1.0, help="caller clock rate; 1 = real time")
    add("--param", metavar="K=V", action="append", default=[], help="a customParameter")
    add("--header", metavar="K=V", action="append", default=[], help="an upgrade header")
    add("--trailing-silence", type=float, default=10.0, metavar="S", help="silence, then stop")
    add("--record", metavar="OUT.wav", help="where to write what was heard (else a temp file)")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        params = _pairs(args.param)
        headers = _pairs(args.header)
    except ValueError as error:
        parser.error(str(error))
    record = args.record or tempfile.mkstemp(prefix="twilio-heard-", suffix=".wav")[1]
    try:
        caller = TwilioCaller(
            args.url,
            audio=Path(args.wav) if args.wav else None,
            custom_parameters=params,
            speed=args.speed,
            headers=headers,
            trailing_silence_s=args.trailing_silence,
            record_path=record,
        )
    except (OSError, ValueError) as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 2
    try:
        anyio.run(caller.run)
    except (OSError, WebSocketException) as error:  # refused, or the upgrade was rejected
        print(f"{parser.prog}: the call failed: {error}", file=sys.stderr)
        return 1
    _summary(caller, record)
    return 1 if caller.protocol_errors else 0


def _summary(caller: TwilioCaller, record: str) -> None:
    played = sum(1 for t in caller.media_played_at if t is not None)
    print(f"heard: {record} ({len(caller.heard_pcm) / 16000:.2f} s at 8 kHz)")
    print(f"call: {caller.call_sid} stream {caller.stream_sid}, close code {caller.close_code}")
    print(f"bot media: {len(caller.media_played_at)} messages, {played} played")
    for name, outcome, t in caller.marks:
        print(f"mark {name!r}: {outcome} at {t:.3f} s")
    if caller.pending_marks:
        print(f"marks never echoed (call ended): {caller.pending_marks}")
    print(f"protocol errors: {len(caller.protocol_errors)}")
    for error in caller.protocol_errors:
        print(f"  - {error}")


def _pairs(items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected K=V, got {item!r}")
        pairs[key] = value
    return pairs
