"""Ours with the phone frame path on picows (a websocket stack written in Cython, not a
dependency: ``pip install picows``): the same setup, sessions and ``PhoneTransport`` as
``voiceagent phone``, but the calls' sockets served by a picows listener instead of the
websockets server. Twilio only, on any path; no signatures, admission or drain: what the
faster frame path alone would save in ours, measured by ``bench/phone_load.py --stacks``
against the echo bot on both stacks.

Run: ``python bench/phone_picows.py AGENT [voiceagent phone's options]`` prints
``ws://127.0.0.1:PORT/twilio`` as its first stdout line; SIGTERM ends it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from voiceagent import cli, loop
from voiceagent.adapters import twilio
from voiceagent.adapters.carriers import TwilioSerializer
from voiceagent.adapters.phone_transport import PhoneTransport
from voiceagent.commands import start_llm
from voiceagent.heap import trimming
from voiceagent.phone import LOOP_LAG_ENV, PhoneSetup, _call, _warm_up, loop_lag_recorder, prepare


class Call(WSListener):  # type: ignore[misc]
    """One caller's socket: its messages parsed into the call's transport as they come (no
    task hop), the agent's messages written as the transport queues them."""

    def __init__(self, setup: PhoneSetup, base_url: str, tasks: set[asyncio.Task[None]]) -> None:
        self.setup, self.base_url, self.tasks = setup, base_url, tasks
        self.serializer = TwilioSerializer()
        self.socket: WSTransport | None = None
        self.call: PhoneTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.socket = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self._hang_up()
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        try:
            frames = self.serializer.parse(frame.get_payload_as_utf8_text())
        except twilio.FrameError:
            return  # skipped, as the phone server skips what it cannot use
        for parsed in frames:
            if self.call is not None:
                self.call.receive(parsed)
            elif isinstance(parsed, twilio.Start):
                self.call = PhoneTransport(parsed, serializer=self.serializer)
                task = asyncio.get_running_loop().create_task(self._run(self.call, transport))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._hang_up()

    def _hang_up(self) -> None:
        if self.call is not None:
            self.call.hang_up()

    async def _run(self, call: PhoneTransport, transport: WSTransport) -> None:
        async def send_all() -> None:
            async for message in call.outgoing():
                transport.send(WSMsgType.TEXT, message.encode())

        async with anyio.create_task_group() as talking:
            talking.start_soon(send_all)
            try:
                await _call(self.setup, self.base_url, call)
            finally:
                await call.aclose()
        transport.send_close()
        transport.disconnect()


async def serve(setup: PhoneSetup) -> int:
    tasks: set[asyncio.Task[None]] = set()
    async with AsyncExitStack() as stack:
        if lag_file := setup.environ.get(LOOP_LAG_ENV):
            await stack.enter_async_context(loop_lag_recorder(Path(lag_file)))
        await stack.enter_async_context(trimming())
        base_url = await start_llm(setup.endpoint, stack)
        _warm_up(setup, base_url)

        def listener(_request: Any) -> Call:
            return Call(setup, base_url, tasks)

        server = await ws_create_server(listener, setup.args.host, setup.args.port)
        port = server.sockets[0].getsockname()[1]
        print(f"ws://{setup.args.host}:{port}/twilio", flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return 0


def main(argv: list[str]) -> int:
    args = cli.build_parser().parse_args(["phone", *argv])
    setup = prepare(args, os.environ)
    return loop.run(serve, setup, loop=args.loop, env=os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
