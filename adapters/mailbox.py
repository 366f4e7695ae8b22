"""``Mailbox``: items handed from plain code to one async reader, in order, on asyncio.

A phone call moves ~75 items a second this way (the caller's audio in, the agent's frames
out). anyio's memory object streams yield to the event loop on every ``receive``, even with
an item waiting, and each wait builds an Event, a waiter set entry and a future: one of the
top items of bench/phone_load.py's profile. Here taking a waiting item is a ``popleft`` and
a wait is one future. The phone server runs on asyncio (``websockets.asyncio``), so the
mailbox may too; anyio's cancel scopes cancel the wait as any other.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Unbounded, single reader. ``put`` never blocks; after ``close`` the reader gets what
    was put before it, then ``anyio.EndOfStream`` (iteration ends)."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Queue ``item``; False (and nothing queued) once the mailbox is closed."""
        if self.closed:
            return False
        self._items.append(item)
        self._wake()
        return True

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def get(self) -> T:
        """The next item, waiting for one; ``anyio.EndOfStream`` when closed and empty."""
        while not self._items:
            if self.closed:
                raise anyio.EndOfStream
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def __aiter__(self) -> Mailbox[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.get()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
