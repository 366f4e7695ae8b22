"""``LineClock``: one task per event loop that moves every phone line's frames on.

A line sends a frame every 40 ms. With a sleep per frame per call, each frame costs a timer,
a task wake-up and a resume through the session's coroutines; at a hundred calls that is
thousands of wake-ups a second (bench/phone_load.py). Here one task wakes every ``tick_s``
and calls each line's ``frames_due(horizon)``, which produces (synchronously) every frame
due before ``horizon``: a frame leaves up to ``tick_s`` before its time, never after it
(unless the loop itself is late). The task exists only while some line is playing.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import ClassVar, Protocol

TICK_S = 0.010


class Line(Protocol):
    def frames_due(self, horizon: float) -> None:
        """Produce every frame due before ``horizon`` (``time.monotonic()`` seconds)."""


class LineClock:
    """The clock of one event loop (``LineClock.of_running_loop()``)."""

    _clocks: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LineClock]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, tick_s: float = TICK_S) -> None:
        self.tick_s = tick_s
        self._lines: dict[Line, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of_running_loop(cls) -> LineClock:
        loop = asyncio.get_running_loop()
        clock = cls._clocks.get(loop)
        if clock is None:
            clock = cls._clocks[loop] = LineClock()
        return clock

    @property
    def lines(self) -> int:
        return len(self._lines)

    async def run(self, line: Line) -> None:
        """Moves ``line`` on until cancelled; raises what its ``frames_due`` raised."""
        done = asyncio.get_running_loop().create_future()
        self._lines[line] = done
        line.frames_due(time.monotonic() + self.tick_s)  # the first frames at once
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._tick(), name="line clock")
        try:
            await done
        finally:
            self._lines.pop(line, None)

    async def _tick(self) -> None:
        while self._lines:
            await asyncio.sleep(self.tick_s)
            horizon = time.monotonic() + self.tick_s
            for line, done in list(self._lines.items()):
                if done.done():
                    continue
                try:
                    line.frames_due(horizon)
                except Exception as error:  # that line's play() raises it; the others go on
                    self._lines.pop(line, None)
                    done.set_exception(error)
