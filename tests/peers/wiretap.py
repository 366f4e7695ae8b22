"""What a peer client put on the wire and got back, recorded inside the peer's own process.

The driver scripts in this folder run in ``.venv/peers`` (LiveKit, pipecat and the
``smallestai`` SDK installed there, never in the project's venv). Each taps the client
library's socket class at class level, so the summary it prints says exactly what the peer
sent, whatever our fake makes of it. Audio is summarised by its length, never kept.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any


class Tap:
    """The messages one process sent and received on its WebSockets, in order."""

    def __init__(self) -> None:
        self.sent: list[Any] = []  # JSON text as parsed; binary frames as {"binary": n}
        self.received: list[Any] = []  # JSON text with audio replaced by its decoded length
        self.connects: list[str] = []  # the URL of every WebSocket opened

    def on_send(self, data: str | bytes) -> None:
        self.sent.append(_describe(data))

    def on_receive(self, data: str | bytes) -> None:
        self.received.append(_describe(data))

    def sent_json(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if isinstance(m, dict) and "binary" not in m]

    def summary(self) -> dict[str, Any]:
        binary = [m["binary"] for m in self.sent if isinstance(m, dict) and "binary" in m]
        return {
            "connects": self.connects,
            "sent": self.sent_json(),
            "sent_binary_frames": len(binary),
            "sent_binary_bytes": sum(binary),
            "received": self.received,
        }


def _describe(data: str | bytes | bytearray | memoryview) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return {"binary": len(bytes(data))}
    try:
        message = json.loads(data)
    except ValueError:
        return {"raw": data}
    if isinstance(message, dict) and isinstance(message.get("data"), dict):
        audio = message["data"].get("audio")
        if isinstance(audio, str):
            message = {**message, "data": {**message["data"], "audio": len(b64(audio))}}
    return message


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def tap_aiohttp(tap: Tap) -> None:
    """Record every text/binary message an aiohttp WebSocket sends and receives (LiveKit)."""
    import aiohttp

    cls = aiohttp.ClientWebSocketResponse
    send_str, send_bytes, receive = cls.send_str, cls.send_bytes, cls.receive

    async def tapped_send_str(self: Any, data: str, *args: Any, **kwargs: Any) -> None:
        tap.on_send(data)
        await send_str(self, data, *args, **kwargs)

    async def tapped_send_bytes(self: Any, data: bytes, *args: Any, **kwargs: Any) -> None:
        tap.on_send(data)
        await send_bytes(self, data, *args, **kwargs)

    async def tapped_receive(self: Any, *args: Any, **kwargs: Any) -> Any:
        msg = await receive(self, *args, **kwargs)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            tap.on_receive(msg.data)
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            tap.received.append({"closed": self.close_code})
        return msg

    cls.send_str = tapped_send_str  # type: ignore[method-assign]
    cls.send_bytes = tapped_send_bytes  # type: ignore[method-assign]
    cls.receive = tapped_receive  # type: ignore[method-assign]

    session_cls = aiohttp.ClientSession
    ws_connect = session_cls._ws_connect

    async def tapped_connect(self: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        tap.connects.append(str(url))
        return await ws_connect(self, url, *args, **kwargs)

    session_cls._ws_connect = tapped_connect  # type: ignore[method-assign]


def tap_websockets(tap: Tap) -> None:
    """Record every message a ``websockets`` asyncio client sends and receives (pipecat)."""
    from websockets.asyncio import client

    cls = client.ClientConnection
    send, recv = cls.send, cls.recv

    async def tapped_send(self: Any, message: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            tap.on_send(message)
        await send(self, message, *args, **kwargs)

    async def tapped_recv(self: Any, *args: Any, **kwargs: Any) -> Any:
        message = await recv(self, *args, **kwargs)
        tap.on_receive(message)
        return message

    cls.send = tapped_send  # type: ignore[method-assign]
    cls.recv = tapped_recv  # type: ignore[method-assign]

    connect_init = client.connect.__init__

    def tapped_init(self: Any, uri: str, *args: Any, **kwargs: Any) -> None:
        tap.connects.append(uri)
        connect_init(self, uri, *args, **kwargs)

    client.connect.__init__ = tapped_init  # type: ignore[method-assign]


def emit(summary: dict[str, Any]) -> None:
    """The summary as the last line of stdout (what the pytest side parses)."""
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()


def failure(error: BaseException) -> dict[str, Any]:
    return {"fatal": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


def drive(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, Tap], Awaitable[dict[str, Any]]],
    install: Callable[[Tap], None],
) -> None:
    """A driver's whole life: its arguments, the tap on its client's library, the run, and
    the summary (a failure is a summary too: the pytest side reads why)."""
    args = parser.parse_args()
    tap = Tap()
    install(tap)
    try:
        summary = asyncio.run(run(args, tap))
    except BaseException as error:
        summary = failure(error)
    emit({**summary, "wire": tap.summary()})
