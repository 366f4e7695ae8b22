"""A shipped fake in a process of its own, as a remote server would be: the bench's process
then measures our code, not our code sharing one interpreter lock with three servers.

``with forked(lambda: PulseServer.running_in_thread(...), setup) as pulse:`` starts the
server in a forked child (so ``setup`` and the factory may close over anything), and
``pulse.get("url")`` / ``pulse.set("max_in_flight", 0)`` read and write its attributes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from multiprocessing.connection import Connection
from typing import Any


class Remote:
    """Attribute access to a server in another process, over a pipe."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> Any:
        self._conn.send(("get", name, None))
        return self._reply()

    def set(self, name: str, value: Any) -> None:
        self._conn.send(("set", name, value))
        self._reply()

    def _reply(self) -> Any:
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"the forked server failed: {value}")
        return value


def _serve(
    conn: Connection,
    start: Callable[[], AbstractContextManager[Any]],
    setup: Callable[[Any], None] | None,
) -> None:
    with start() as server:
        if setup is not None:
            setup(server)
        conn.send((True, None))
        while True:
            verb, name, value = conn.recv()
            if verb == "stop":
                break
            try:
                if verb == "get":
                    conn.send((True, getattr(server, name)))
                else:
                    setattr(server, name, value)
                    conn.send((True, None))
            except Exception as error:  # told to the parent, which raises it
                conn.send((False, repr(error)))
    conn.send((True, None))


@contextmanager
def forked(
    start: Callable[[], AbstractContextManager[Any]],
    setup: Callable[[Any], None] | None = None,
) -> Iterator[Remote]:
    """The server ``start()`` makes, running in a forked child until the block ends."""
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_serve, args=(theirs, start, setup), daemon=True
    )
    child.start()
    remote = Remote(ours)
    try:
        remote._reply()  # serving
        yield remote
    finally:
        ours.send(("stop", "", None))
        child.join(10)
        if child.is_alive():
            child.kill()
