"""What the phone server and the web page's server do alike with a peer's websocket: send a
transport's messages with the buffers kept small (a peer that stops reading is dropped),
and close a refused peer (flooding) without waiting long for its answer."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Coroutine
from typing import Any, Protocol

import anyio
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from voiceagent.adapters.inbound_pacer import bound_send_buffers

# A peer closed for flooding: how long it has to answer our close before the socket is
# dropped (one busy sending may never read it; websockets would wait 10 s).
REFUSED_CLOSE_S = 1.0


class Outgoing(Protocol):
    """What ``send_all`` needs of a transport (``PhoneTransport``, ``WebTransport``)."""

    on_not_reading: Callable[[], None] | None

    def outgoing(self) -> AsyncIterable[str | bytes]: ...

    def hang_up(self) -> None: ...

    async def aclose(self) -> None: ...


async def send_all(connection: ServerConnection, transport: Outgoing) -> None:
    """The transport's messages to the socket, in order, until it has no more. A peer that
    stops reading fills the small buffers within seconds, then the transport's outbox; it
    would never read a close frame: the connection is dropped."""
    bound_send_buffers(connection.transport)
    transport.on_not_reading = connection.transport.abort
    try:
        async for message in transport.outgoing():
            await connection.send(message)
    except ConnectionClosed:
        transport.hang_up()


async def converse(
    connection: ServerConnection,
    transport: Outgoing,
    read: Callable[[], Coroutine[Any, Any, None]],
    run: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """A peer's session: ``read`` listens, ``send_all`` talks, ``run`` is the session. When
    it ends, the transport is closed (what is queued goes out first), then listening stops.
    ``run`` logs its own failures."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        async with anyio.create_task_group() as talking:
            talking.start_soon(send_all, connection, transport)
            try:
                await run()
            finally:
                await transport.aclose()
        tg.cancel_scope.cancel()  # everything sent: stop listening, close the socket


async def close_and_drop(connection: ServerConnection, refusal: tuple[int, str]) -> None:
    """Close with ``refusal`` (code, reason), then drop the socket after ``REFUSED_CLOSE_S``
    at most."""
    with anyio.move_on_after(REFUSED_CLOSE_S):
        await connection.close(*refusal)
    connection.transport.abort()
