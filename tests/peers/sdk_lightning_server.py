"""A Lightning server written to Smallest AI's own SDK (``smallestai`` 5.14), independent of
our fake: every frame it sends is built from the SDK's generated response types.

Run by ``.venv/peers/bin/python`` (tests/test_sdk_shaped_server.py). What it rests on,
in ``smallestai/waves/tts/types/``:

- ``tts_request_message.py``: the client's ``request_id`` is "Echoed back in responses as
  ``external_request_id``"; ``continue`` unset means no more input is coming; ``flush``
  ends the buffer; ``complete_backoff_ms`` default 4000, "Maximum is 10000ms".
- ``tts_response_message.py``: ``request_id`` is the "Internal request identifier
  (system-generated UUID, unique per TTS synthesis)"; ``session_id`` is the server's, stable
  for the connection; ``status`` ``chunk`` carries ``data.audio`` (base64), ``complete`` is
  the "terminal frame; the server closes the WebSocket after this".

Requests are parsed with the SDK's ``TtsRequestMessage``. The audio is a deterministic
function of the text (not speech); a request whose text is only whitespace is a keepalive
and is not answered. Each request's audio goes out in ``--chunk-bytes`` pieces, then, after
its ``complete_backoff_ms`` (capped at 10000), ``complete`` and a close (code 1000).

The first stdout line is the WebSocket URL; then one JSON line per request answered:
``{"external_request_id", "request_id", "text", "audio_bytes", "sha256", "chunks"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import uuid
from typing import Any

PATH = "/waves/v1/tts/live"


def pcm_for(text: str, sample_rate: int) -> bytes:
    """Deterministic PCM16 for ``text``: 40 ms per character, a pattern seeded by the text."""
    samples = max(1, len(text)) * sample_rate // 25
    seed = hashlib.sha256(text.encode()).digest()
    pattern = bytes(b & 0x3F for b in seed)  # small values: any PCM16 is valid audio
    return (pattern * (2 * samples // len(pattern) + 1))[: 2 * samples]


class Connection:
    def __init__(self, ws: Any, args: argparse.Namespace) -> None:
        self.ws = ws
        self.args = args
        self.session_id = str(uuid.uuid4())
        self.text: dict[str | None, str] = {}  # by the client's request_id (None: unnamed)
        self.config: dict[str | None, Any] = {}

    def frame(self, status: str, server_id: str, client_id: str | None, **data: Any) -> str:
        from smallestai.waves.tts.types import TtsResponseMessage, TtsResponseMessageData

        fields: dict[str, Any] = {
            "session_id": self.session_id,
            "request_id": server_id,
            "status": status,
        }
        if client_id is not None:  # "omitted if not provided"
            fields["external_request_id"] = client_id
        if data:
            fields["data"] = TtsResponseMessageData(**data)
        message = TtsResponseMessage(**fields)
        return json.dumps(message.dict())

    async def serve(self) -> None:
        from smallestai.waves.tts.types import TtsRequestMessage

        lock = asyncio.Lock()  # one synthesis at a time, in arrival order
        tasks: set[asyncio.Task[None]] = set()
        async for raw in self.ws:
            body = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
            if not body or (not str(body.get("text", "")).strip() and _opens_nothing(body)):
                continue  # a keepalive (bare " " or pipecat's JSON {"text": " ", ...})
            request = TtsRequestMessage(**body)
            rid = request.request_id
            self.text[rid] = self.text.get(rid, "") + request.text
            self.config[rid] = request
            if request.flush or not request.continue_:
                text, config = self.text.pop(rid), self.config.pop(rid)
                task = asyncio.create_task(self.answer(lock, rid, text, config))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    async def answer(
        self, lock: asyncio.Lock, client_id: str | None, text: str, request: Any
    ) -> None:
        async with lock:
            await self._answer(client_id, text, request)

    async def _answer(self, client_id: str | None, text: str, request: Any) -> None:
        server_id = str(uuid.uuid4())
        rate = request.sample_rate or 44100
        pcm = pcm_for(text, rate)
        step = self.args.chunk_bytes
        chunks = 0
        for start in range(0, len(pcm), step):
            audio = base64.b64encode(pcm[start : start + step]).decode("ascii")
            await self.ws.send(self.frame("chunk", server_id, client_id, audio=audio))
            chunks += 1
        backoff = request.complete_backoff_ms
        backoff = 4000.0 if backoff is None else min(float(backoff), 10000.0)
        await asyncio.sleep(backoff / 1000)
        await self.ws.send(self.frame("complete", server_id, client_id))
        report = {
            "external_request_id": client_id,
            "request_id": server_id,
            "text": text,
            "audio_bytes": len(pcm),
            "sha256": hashlib.sha256(pcm).hexdigest(),
            "chunks": chunks,
        }
        print(json.dumps(report), flush=True)
        await self.ws.close(1000, "complete")  # terminal: a request still queued is lost


def _opens_nothing(body: dict[str, Any]) -> bool:
    """Blank text that neither flushes nor ends a buffered request: a keepalive."""
    return "flush" not in body and "continue" not in body


async def main(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        if ws.request.path.split("?", 1)[0] != PATH:
            await ws.close(1008, "wrong path")
            return
        await Connection(ws, args).serve()

    async with serve(handler, "127.0.0.1", args.port) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"ws://127.0.0.1:{port}{PATH}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunk-bytes", type=int, default=1920)
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
