"""The baseline of ``bench/phone_load.py``: a Twilio Media Streams bot on the same websockets
stack that does nothing but answer each inbound ``media`` frame with one outbound ``media``
frame (the caller's payload back), so ours ÷ this is what the orchestration costs.

Run: ``python bench/echo_bot.py [--loop uvloop|asyncio]`` prints
``ws://127.0.0.1:PORT/twilio`` as its first stdout line; ``VOICEAGENT_LOOP_LAG_FILE``
records its event-loop lag as ``voiceagent phone`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

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


async def main() -> None:
    async with serve(_echo, "127.0.0.1", 0) as server:
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
    loop.run(main, loop=parser.parse_args().loop)
