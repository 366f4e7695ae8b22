"""A Pulse (live STT) server written to Smallest AI's own SDK (``smallestai`` 5.14),
independent of our fake: every message it sends is built from the SDK's generated types.

Run by ``.venv/peers/bin/python`` (tests/test_sdk_shaped_server.py). What it rests on, in
``smallestai/waves/speech_to_text/``:

- ``types/transcription_event.py``: ``type`` "transcription", ``transcript`` (and the same
  text in ``transcription``: "the WebSocket DTO emits both fields"), ``is_final``,
  ``is_last`` ("fires only after the client sends close_stream"), ``from_finalize``,
  ``session_id``, ``language``;
- ``types/finalize_signal.py`` / ``close_stream.py``: ``{"type":"finalize"}`` (one final, the
  socket stays open) and ``{"type":"close_stream"}`` (the terminal ``is_last``, then close);
- ``types/stt_error_response.py`` and client.py ("Missing or invalid values return 400
  before the WebSocket upgrades"): a missing model is refused with HTTP 400 ``{"error"}``.

It recognises nothing: every audio byte counts, a partial goes out per ``--partial-bytes``
received, and a final's text is ``--text`` when any audio came since the last final.
``{"type":"keepalive"}`` is answered ``{"type":"pong"}`` (LiveKit's plugin docstring; the SDK
has no type for it). The first stdout line is the URL; then one JSON line per message
received from the client (audio summarised as ``{"audio": bytes}``) when the stream ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PATH = "/waves/v1/stt/live"


def _event(**fields: Any) -> str:
    from smallestai.waves.speech_to_text.types import TranscriptionEvent

    text = fields.pop("text")
    event = TranscriptionEvent(type="transcription", transcript=text, transcription=text, **fields)
    return json.dumps(event.dict())


async def main(args: argparse.Namespace) -> None:
    from smallestai.waves.types import SttErrorResponse
    from websockets.asyncio.server import serve
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    def check(connection: Any, request: Any) -> Any:
        query = dict(parse_qsl(urlsplit(request.path).query))
        if urlsplit(request.path).path != PATH or query.get("model") not in ("pulse", "pulse-2"):
            body = json.dumps(SttErrorResponse(error="missing or unknown model").dict()).encode()
            headers = Headers([("Content-Type", "application/json")])
            return Response(400, HTTPStatus(400).phrase, headers, body)
        return None

    async def handler(ws: Any) -> None:
        query = dict(parse_qsl(urlsplit(ws.request.path).query))
        language = query.get("language", "en")
        session_id = str(uuid.uuid4())
        pending = 0  # audio bytes since the last final
        since_partial = 0
        seen: list[Any] = []
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    if seen and isinstance(seen[-1], dict) and "audio" in seen[-1]:
                        seen[-1]["audio"] += len(message)
                    else:
                        seen.append({"audio": len(message)})
                    pending += len(message)
                    since_partial += len(message)
                    if since_partial >= args.partial_bytes:
                        since_partial = 0
                        words = args.text.split()
                        heard = " ".join(words[: min(len(words), pending // args.partial_bytes)])
                        await ws.send(
                            _event(
                                text=heard,
                                is_final=False,
                                is_last=False,
                                session_id=session_id,
                                language=language,
                            )
                        )
                    continue
                control = json.loads(message)
                seen.append(control)
                kind = control.get("type")
                if kind == "keepalive":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind in ("finalize", "close_stream"):
                    last = kind == "close_stream"
                    await ws.send(
                        _event(
                            text=args.text if pending else "",
                            is_final=True,
                            is_last=last,
                            from_finalize=not last,
                            session_id=session_id,
                            language=language,
                        )
                    )
                    pending = since_partial = 0
                    if last:
                        await ws.close(1000, "stream closed")
                        break
        finally:
            print(json.dumps({"received": seen}), flush=True)

    async with serve(handler, "127.0.0.1", args.port, process_request=check) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"ws://127.0.0.1:{port}{PATH}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--text", default="what is the weather in paris")
    parser.add_argument("--partial-bytes", type=int, default=16000)
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
