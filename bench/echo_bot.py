"""The baseline of ``bench/phone_load.py``: a Twilio Media Streams bot on the same websockets
stack that does nothing but answer each inbound ``media`` frame with one outbound ``media``
frame (the caller's payload back), so ours ÷ this is what the orchestration costs.

Run: ``python bench/echo_bot.py [--loop uvloop|asyncio]`` prints
``ws://127.0.0.1:PORT/twilio`` as its first stdout line; ``VOICEAGENT_LOOP_LAG_FILE``
records its event-loop lag as ``voiceagent phone`` does.

``--listen STT_URL`` makes it the floor of any bot that hears its caller through a remote
STT, before a single turn: besides the echo, each call's audio is decoded to PCM16, judged by
webrtcvad in 20 ms frames and sent to a Pulse-protocol socket (``STT_URL``, e.g. the Pulse
fake) in 100 ms frames, whose messages are read and dropped; ``bench/phone_load.py --floor``
compares it with the plain echo.

``--stack picows`` serves the same bot on picows (a websocket stack written in Cython, not a
dependency: ``pip install picows``) instead of ``websockets``: what a faster frame path would
save, measured by ``bench/phone_load.py --echo-stack picows``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from voiceagent import audio, loop
from voiceagent.phone import LOOP_LAG_ENV, loop_lag_recorder

VAD_BYTES = 8000 * 20 // 1000 * 2  # 20 ms of PCM16 at 8 kHz: the phone VAD's frame
STT_FRAME_BYTES = 8000 * 100 // 1000 * 2  # 100 ms: voiceagent phone's Pulse frame


async def _echo(connection: ServerConnection, listen: str | None = None) -> None:
    stream_sid = ""
    ear = _Ear(listen) if listen else None
    try:
        async for message in connection:
            data = json.loads(message)
            event = data.get("event")
            if event == "media":
                payload = data["media"]["payload"]
                reply = {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
                await connection.send(json.dumps(reply))
                if ear is not None:
                    await ear.hear(base64.b64decode(payload))
            elif event == "start":
                stream_sid = str(data.get("streamSid", ""))
                if ear is not None:
                    await ear.open()
            elif event == "stop":
                return
    except ConnectionClosed:
        pass
    finally:
        if ear is not None:
            await ear.close()


class _Ear:
    """What listening through a remote STT takes at least: μ-law decoded, webrtcvad per 20 ms,
    100 ms frames to the STT's socket, its messages read."""

    def __init__(self, url: str) -> None:
        import webrtcvad  # the offline extra, as voiceagent's phone VAD

        query = "model=pulse&language=en&sample_rate=8000&encoding=linear16&vad_events=true"
        self.url = f"{url}{'&' if '?' in url else '?'}{query}"
        self.vad = webrtcvad.Vad(3)
        self.pending = bytearray()
        self.socket: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.socket = await connect(self.url, compression=None)
        self.reader = asyncio.create_task(self._read(self.socket))

    @staticmethod
    async def _read(socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in socket:
                pass

    async def hear(self, ulaw: bytes) -> None:
        pcm = audio.ulaw_decode(ulaw)
        for i in range(0, len(pcm) - VAD_BYTES + 1, VAD_BYTES):
            self.vad.is_speech(pcm[i : i + VAD_BYTES], 8000)
        self.pending += pcm
        if len(self.pending) >= STT_FRAME_BYTES and self.socket is not None:
            frame = bytes(self.pending[:STT_FRAME_BYTES])
            del self.pending[:STT_FRAME_BYTES]
            with contextlib.suppress(ConnectionClosed):
                await self.socket.send(frame)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.socket is not None:
            await self.socket.close()


def _picows_server() -> Any:
    """The echo on picows: one listener per connection, called back per frame."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        stream_sid = ""

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
                return
            if frame.msg_type != WSMsgType.TEXT:
                return
            data = json.loads(frame.get_payload_as_bytes())
            event = data.get("event")
            if event == "media":
                payload = data["media"]["payload"]
                reply = {"event": "media", "streamSid": self.stream_sid,
                         "media": {"payload": payload}}  # fmt: skip
                transport.send(WSMsgType.TEXT, json.dumps(reply).encode())
            elif event == "start":
                self.stream_sid = str(data.get("streamSid", ""))
            elif event == "stop":
                transport.send_close()
                transport.disconnect()

    return ws_create_server(lambda _request: Echo(), "127.0.0.1", 0)


async def main(stack: str = "websockets", listen: str | None = None) -> None:
    if listen and stack != "websockets":
        raise SystemExit("--listen runs on the websockets stack only")
    async with contextlib.AsyncExitStack() as stack_exit:
        if stack == "picows":
            server = await _picows_server()
            stack_exit.push_async_callback(server.wait_closed)
            stack_exit.callback(server.close)
        else:
            echo = functools.partial(_echo, listen=listen)
            server = await stack_exit.enter_async_context(serve(echo, "127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        print(f"ws://127.0.0.1:{port}/twilio", flush=True)
        lag_file = os.environ.get(LOOP_LAG_ENV)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            if lag_file:
                async with loop_lag_recorder(Path(lag_file)):
                    async for _ in signals:
                        break
            else:
                async for _ in signals:
                    break
    print("echo bot stopped", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=loop.LOOPS, help="default: as voiceagent's commands")
    parser.add_argument("--stack", choices=("websockets", "picows"), default="websockets")
    parser.add_argument("--listen", metavar="STT_URL", help="also hear each call (see above)")
    args = parser.parse_args()
    loop.run(main, args.stack, args.listen, loop=args.loop)
