"""The baseline of ``bench/phone_load.py``: a Twilio Media Streams bot on the same websockets
stack that does nothing but answer each inbound ``media`` frame with one outbound ``media``
frame (the caller's payload back), so ours ÷ this is what the orchestration costs.

Run: ``python bench/echo_bot.py [--loop uvloop|asyncio]`` prints
``ws://127.0.0.1:PORT/twilio`` as its first stdout line; ``VOICEAGENT_LOOP_LAG_FILE``
records its event-loop lag as ``voiceagent phone`` does.

``--stack picows`` serves the same bot on picows (a websocket stack written in Cython, not a
dependency: ``pip install picows``) instead of ``websockets``: what a faster frame path would
save, measured by ``bench/phone_load.py --echo-stack picows``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from voiceagent import loop
from voiceagent.phone import LOOP_LAG_ENV, loop_lag_recorder


async def _echo(connection: ServerConnection) -> None:
    stream_sid = ""
    try:
        async for message in connection:
            data = json.loads(message)
            event = data.get("event")
            if event == "media":
                payload = data["media"]["payload"]
                reply = {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
                await connection.send(json.dumps(reply))
            elif event == "start":
                stream_sid = str(data.get("streamSid", ""))
            elif event == "stop":
                return
    except ConnectionClosed:
        pass


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


async def main(stack: str = "websockets") -> None:
    async with contextlib.AsyncExitStack() as stack_exit:
        if stack == "picows":
            server = await _picows_server()
            stack_exit.push_async_callback(server.wait_closed)
            stack_exit.callback(server.close)
        else:
            server = await stack_exit.enter_async_context(serve(_echo, "127.0.0.1", 0))
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
    args = parser.parse_args()
    loop.run(main, args.stack, loop=args.loop)
