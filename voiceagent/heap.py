"""Giving the heap's freed memory back to the system, for a server that runs for days.

glibc's allocator keeps what a burst of calls freed: a phone bot's RSS rose by steps under
load and stayed there (bench/phone_soak.py: +10% between the first and second minute at 100
calls, while tracemalloc saw Python's own memory flat). ``malloc_trim(0)`` every few seconds
returns the free pages; with it the soak's RSS was flat from the first minute (107.0,
107.9, 107.5 MB by minute) at no measurable CPU. Elsewhere than glibc it is not there, and
nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

logger = logging.getLogger(__name__)

TRIM_EVERY_S = 10.0


def malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)`` as a function (1: memory was released), or None."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): no such function
        return None
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: int(trim(0))


@asynccontextmanager
async def trimming(
    every_s: float = TRIM_EVERY_S, trim: Callable[[], int] | None = None
) -> AsyncIterator[bool]:
    """While open, ``trim`` (glibc's ``malloc_trim`` by default) runs every ``every_s``;
    yields whether there is one to run."""
    trim = trim if trim is not None else malloc_trim()
    if trim is None:
        logger.debug("no malloc_trim here: freed memory stays with the process")
        yield False
        return

    async def loop(run: Callable[[], int]) -> None:
        while True:
            await anyio.sleep(every_s)
            run()

    async with anyio.create_task_group() as tg:
        tg.start_soon(loop, trim)
        yield True
        tg.cancel_scope.cancel()
