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
import logging
import math
import time
import weakref
from collections.abc import Callable
from typing import ClassVar, Protocol, runtime_checkable

import anyio

from voiceagent.ports import AudioSource
from voiceagent.sparse_log import SparseLog
from voiceagent.wire_text import printable

TICK_S = 0.010


UNKNOWN_MARK_LOG_EVERY_S = 10.0  # after the first, a call's unknown-mark warnings this often
logger = logging.getLogger(__name__)


def _log_unknown_mark(name: str) -> None:
    logger.warning("mark %s confirmed but never sent (or twice): ignored", name)


def _log_unknown_marks(untold: int, total: int) -> None:
    logger.warning("%d more marks confirmed but never sent (or twice), %d in the call: "
                   "ignored", untold, total)  # fmt: skip


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


class SpokenSegment(Protocol):
    """What a speaker needs of a queued segment (``voiceagent.speech.Segment``)."""

    @property
    def id(self) -> int: ...

    @property
    def played(self) -> int: ...

    def correct_played(self, samples: int) -> None: ...


@runtime_checkable
class SegmentedSource(Protocol):
    """An ``AudioSource`` that says where each segment ends (``voiceagent.speech.SpeechQueue``)."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def playing(self) -> SpokenSegment | None: ...

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing still sounding: a read would give nothing."""
        ...

    def read(self, n_samples: int, position: int) -> bytes: ...

    def watch_segment_ends(self, callback: Callable[[SpokenSegment, int], None] | None) -> None: ...


class PacedSpeaker:
    """What a speaker the line clock moves on shares (a phone line, a browser page): frame
    ``k`` (``frame_samples`` from sample ``k·frame_samples``) leaves ``lead_frames`` frames
    before it is due on the session clock (``origin``); the segment ends a
    ``SegmentedSource`` reports are handed to the frame they fall in; ``wait_played`` lasts
    until the peer has confirmed every mark. Subclasses write ``_frame(source, position)``
    and ``outstanding``, and call ``_mark_sent`` and ``_check_played``."""

    origin: float
    frame_samples: int
    frame_s: float
    lead_frames: int
    _unknown: SparseLog

    def _pace_with(self, rate: int, origin: float, lead_ms: float, frame_ms: int) -> None:
        # marks confirmed but never sent (or twice): counted, logged sparingly
        self._unknown = SparseLog(_log_unknown_mark, _log_unknown_marks,
                                  every_s=UNKNOWN_MARK_LOG_EVERY_S)  # fmt: skip
        self.origin = origin
        self.frame_samples = rate * frame_ms // 1000
        self.frame_s = self.frame_samples / rate
        self.lead_frames = max(1, math.ceil(lead_ms / 1000 / self.frame_s))
        self._k = 0  # the next frame's index on the session clock
        self._ends: list[tuple[SpokenSegment, int]] = []  # segments ended in the current read
        self._source: SegmentedSource | None = None
        self._playing: AudioSource | None = None  # what play() is sending
        self._played: anyio.Event | None = None  # set when no mark is outstanding

    @property
    def unknown_marks(self) -> int:
        """Marks the peer confirmed but we never sent (or it confirmed twice): the first
        logged; then a line (a count, or after a quiet while the next by name) at most every
        ``UNKNOWN_MARK_LOG_EVERY_S``, and the count at the call's end
        (``report_unknown_marks``): thousands of them are a few log lines."""
        return self._unknown.total

    def _unknown_mark(self, name: str) -> None:
        self._unknown(printable(name))

    def report_unknown_marks(self) -> None:
        """Log the unknown marks not logged yet (the call is ending)."""
        self._unknown.flush()

    async def _pace(self, source: AudioSource) -> None:
        """Sends ``source`` in real time from now until cancelled."""
        if isinstance(source, SegmentedSource):
            self._source = source
            source.watch_segment_ends(self._segment_ended)
        self._k = max(0, math.floor((time.monotonic() - self.origin) / self.frame_s))
        self._playing = source
        try:  # every line's frames move on from one task
            await LineClock.of_running_loop().run(self)
        finally:
            self._playing = None
            if self._source is not None:
                self._source.watch_segment_ends(None)

    def frames_due(self, horizon: float) -> None:
        """Every frame due to leave before ``horizon`` (the line clock's tick)."""
        playing, source = self._playing, self._source
        if playing is None:
            return
        while self.origin + (self._k - self.lead_frames) * self.frame_s < horizon:
            if source is None or not source.idle or self._ends or not self._quiet_frame():
                self._frame(playing, self._k * self.frame_samples)
            self._k += 1

    def _quiet_frame(self) -> bool:
        """A frame while the source is idle: True if nothing goes down the line for it, so it
        is not read at all. Reading an idle queue every frame of every call was most of what
        a listening line cost its speaker (bench/phone_load.py --silent)."""
        return True

    def _segment_ended(self, segment: SpokenSegment, end_position: int) -> None:
        self._ends.append((segment, end_position))

    def _frame(self, source: AudioSource, position: int) -> None:
        raise NotImplementedError

    @property
    def outstanding(self) -> list[str]:
        """Marks sent and not yet confirmed by the peer."""
        raise NotImplementedError

    def _mark_sent(self) -> None:
        """A mark went out: a finished ``wait_played`` has more to wait for next time."""
        if self._played is not None and self._played.is_set():
            self._played = None

    async def wait_played(self) -> None:
        """Until every mark sent has been confirmed (the goodbye has been heard)."""
        if self._played is None:
            self._played = anyio.Event()
            self._check_played()
        await self._played.wait()

    def _check_played(self) -> None:
        if self._played is not None and not self.outstanding:
            self._played.set()
