"""One call's token of the tools-in-flight cap, held until its tool has really stopped running.

An abandoned sync tool keeps running in its thread, so its token must outlive the task
that awaited it. anyio's ``to_thread.run_sync(abandon_on_cancel=True, limiter=…)`` does
not do this on asyncio: it releases the limiter token as soon as the waiting task is
cancelled (``async with limiter`` around ``await future``), while the thread runs on.
So the token is ours, and whichever of the awaiting task and the worker thread lets go
last gives it back.
"""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel


class InFlightSlot:
    """A borrower of the executor's CapacityLimiter, shared by a task and maybe a thread."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self._limiter = limiter
        self._lock = threading.Lock()
        self._holders = 1  # the awaiting task
        self._thread = "none"  # none | queued | running | ended | skipped
        self._token: anyio.lowlevel.EventLoopToken | None = None

    async def acquire(self) -> None:
        await self._limiter.acquire_on_behalf_of(self)

    def lend_to_thread(self) -> None:
        """Before handing the function to a worker thread: the thread becomes a holder."""
        self._token = anyio.lowlevel.current_token()
        with self._lock:
            self._holders += 1
            self._thread = "queued"

    def thread_begins(self) -> bool:
        """In the worker thread: False when the task already gave up, so the tool must not run."""
        with self._lock:
            if self._thread == "skipped":
                return False
            self._thread = "running"
            return True

    def thread_ends(self) -> None:
        """In the worker thread, when the function has returned or raised."""
        with self._lock:
            self._thread = "ended"
            self._holders -= 1
            last = self._holders == 0
        if last and self._token is not None:
            # The limiter is not thread-safe: give the token back on the event loop.
            try:
                self._token.backend_class.run_sync_soon(self._release, (), self._token.native_token)
            except anyio.RunFinishedError:
                pass  # the loop is gone, and its limiter with it

    def task_leaves(self) -> None:
        """On the event loop, when the awaiting task is done with the call (or cancelled)."""
        with self._lock:
            self._holders -= 1
            if self._thread == "queued":
                # The thread never picked the function up: it never will run it.
                self._thread = "skipped"
                self._holders -= 1
            last = self._holders == 0
        if last:
            self._release()

    @property
    def thread_running(self) -> bool:
        with self._lock:
            return self._thread == "running"

    def _release(self) -> None:
        self._limiter.release_on_behalf_of(self)
