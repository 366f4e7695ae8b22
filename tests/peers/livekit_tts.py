"""LiveKit's Smallest AI TTS (``livekit-plugins-smallestai``) against a Lightning server.

Run by ``.venv/peers/bin/python`` (tests/test_peer_clients.py). Scenarios:

- ``stream``: ``SynthesizeStream`` in its default continuations mode (``context_id``),
  phrase after phrase on one ``TTS`` (one stream per segment, as LiveKit's agent does);
- ``legacy``: the same with ``use_continuations=False`` (``continue``/``flush``);
- ``barge``: a stream closed after its first audio, before its text ended (the agent's
  barge-in): the plugin sends ``cancel_request``;
- ``http``: ``ChunkedStream``, ``POST {base_url}/tts``.

Prints one JSON line: per segment the bytes and frames of audio and the errors, the
plugin's error events, and what went over the wire (wiretap).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from wiretap import Tap, drive, tap_aiohttp

PHRASES = ["Hello there. ", "This is LiveKit speaking ", "to a Lightning fake."]
SECOND = ["And a second segment, ", "on the same TTS."]
LONG = ["This first sentence is spoken before the caller cuts in. ", "And this one never ends"]


async def run(args: argparse.Namespace, tap: Tap) -> dict[str, Any]:
    import aiohttp
    from livekit.agents import APIConnectOptions
    from livekit.plugins import smallestai

    errors: list[str] = []
    segments: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        tts = smallestai.TTS(
            api_key="peer-test-key",
            ws_url=args.ws_url,
            base_url=args.base_url or "http://127.0.0.1:9/waves/v1",
            use_continuations=args.scenario != "legacy",
            sample_rate=24000,
            http_session=session,
        )
        tts.on("error", lambda event: errors.append(repr(getattr(event, "error", event))))
        options = APIConnectOptions(max_retry=args.max_retry, retry_interval=0.1, timeout=10)
        if args.scenario in ("stream", "legacy"):
            for texts in (PHRASES, SECOND):
                segments.append(await _stream(tts, texts, options))
        elif args.scenario == "barge":
            segments.append(await _barge(tts, options))
        elif args.scenario == "http":
            segments.append(await _chunked(tts, " ".join(PHRASES), options))
        else:
            raise SystemExit(f"unknown scenario {args.scenario}")
        await asyncio.sleep(0.2)  # let the plugin's background cancel/close go out
        await tts.aclose()
    return {"scenario": args.scenario, "segments": segments, "tts_errors": errors}


async def _stream(tts: Any, texts: list[str], options: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"bytes": 0, "frames": 0, "markers": 0, "error": None}
    try:
        async with tts.stream(conn_options=options) as stream:
            for text in texts:
                stream.push_text(text)
            stream.end_input()
            async for event in stream:
                _count(result, event)
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"
    return result


async def _barge(tts: Any, options: Any) -> dict[str, Any]:
    """Audio starts, then the stream is closed while its context is still open."""
    result: dict[str, Any] = {"bytes": 0, "frames": 0, "error": None, "closed_early": False}
    stream = tts.stream(conn_options=options)
    try:
        for text in LONG:
            stream.push_text(text)  # no flush, no end_input: the context stays open
        async for event in stream:
            result["bytes"] += len(event.frame.data.tobytes())
            result["frames"] += 1
            result["closed_early"] = True
            break  # the caller barged in
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        await stream.aclose()
    return result


async def _chunked(tts: Any, text: str, options: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"bytes": 0, "frames": 0, "markers": 0, "error": None}
    try:
        async with tts.synthesize(text, conn_options=options) as stream:
            async for event in stream:
                _count(result, event)
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def _count(result: dict[str, Any], event: Any) -> None:
    """Audio frames; LiveKit's AudioEmitter ends a segment whose audio filled its last
    frame exactly with a 10 ms frame of zeros (a marker, not audio: tts.py "tiny empty
    marker"), counted apart."""
    frame = event.frame
    data = frame.data.tobytes()
    marker = frame.samples_per_channel == frame.sample_rate // 100 and not any(data)
    if event.is_final and marker:
        result["markers"] += 1
    else:
        result["bytes"] += len(data)
        result["frames"] += 1
    result["sample_rate"] = frame.sample_rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("stream", "legacy", "barge", "http"))
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--base-url", help="HTTP base, e.g. http://127.0.0.1:PORT/waves/v1")
    parser.add_argument("--max-retry", type=int, default=0)
    drive(parser, run, tap_aiohttp)


if __name__ == "__main__":
    main()
