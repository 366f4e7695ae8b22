"""A websocket peer by hand, for the phone server's hostile-caller tests: the HTTP upgrade and
masked client frames written on a raw TCP stream, so a test decides exactly what it reads
(a peer that stops reading never answers the server's close)."""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import SocketStream

TEXT, CLOSE = 0x1, 0x8


class RawPeer:
    """One TCP connection that upgrades ``path`` on ``127.0.0.1:port`` and then only sends."""

    def __init__(self, port: int, path: str = "/twilio", headers: dict[str, str] | None = None):
        self.port, self.path, self.headers = port, path, headers or {}
        self.status = 0  # the upgrade's HTTP status
        self._stream: SocketStream | None = None
        self._buffer = b""

    async def __aenter__(self) -> RawPeer:
        self._stream = await anyio.connect_tcp("127.0.0.1", self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        await self._stream.send(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            chunk = await self._stream.receive()
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send_text(json.dumps(message))

    async def send_text(self, text: str) -> None:
        assert self._stream is not None
        await self._stream.send(frame(TEXT, text.encode()))

    async def close_frame(self, timeout_s: float) -> tuple[int, str] | None:
        """Reads (skipping data frames) until the server's close frame: (code, reason), or
        None if the connection ends or ``timeout_s`` passes without one."""
        assert self._stream is not None
        with anyio.move_on_after(timeout_s):
            while True:
                parsed = _parse(self._buffer)
                if parsed is not None:
                    opcode, payload, self._buffer = parsed
                    if opcode == CLOSE:
                        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                        return code, payload[2:].decode(errors="replace")
                    continue
                try:
                    self._buffer += await self._stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    return None
        return None


def frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame: masked, as RFC 6455 requires of a client."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def _parse(buffer: bytes) -> tuple[int, bytes, bytes] | None:
    """One unmasked server frame off ``buffer``: (opcode, payload, rest), None if incomplete."""
    if len(buffer) < 2:
        return None
    opcode, size, at = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
    if size == 126:
        if len(buffer) < 4:
            return None
        size, at = struct.unpack("!H", buffer[2:4])[0], 4
    elif size == 127:
        if len(buffer) < 10:
            return None
        size, at = struct.unpack("!Q", buffer[2:10])[0], 10
    if len(buffer) < at + size:
        return None
    return opcode, buffer[at : at + size], buffer[at + size :]


def twilio_start(stream: str = "MZ1", call: str = "CA1", sample_rate: object = 8000) -> str:
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": sample_rate, "channels": 1}
    body = {"streamSid": stream, "callSid": call, "accountSid": "AC1", "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": media_format}  # fmt: skip
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream, "start": body})


async def until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Polls ``condition`` (a server counter) until it holds; a hang guard, not a timing."""
    with anyio.fail_after(timeout_s):
        for _ in iter(int, 1):
            if condition():
                return
            await anyio.sleep(0.01)


CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
