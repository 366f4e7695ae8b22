"""One kind of event in one call (an unknown mark, a DTMF key…) told sparingly: at a human
pace every one gets its line, a flood of thousands is a few lines and a count.

Ground floor: imports nothing of voiceagent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EVERY_S = 10.0  # after a burst, one more line at most this often


class SparseLog:
    """Tells events through ``tell(detail)`` while a budget of ``burst`` lines lasts; one line
    comes back every ``every_s``. Events beyond it are counted and told as one line,
    ``tell_count(untold, total)``, when the budget allows (before the next event told on its
    own) and at ``flush()`` (the call's end, whatever the budget). So over ``t`` seconds a
    caller gets at most ``burst + t / every_s`` lines, plus the one at the end.

    ``detail`` comes from the wire: the caller ``wire_text.printable``-s it first."""

    def __init__(
        self,
        tell: Callable[[str], None],
        tell_count: Callable[[int, int], None],
        *,
        burst: int = 1,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or not every_s > 0:
            raise ValueError(f"burst {burst}, every_s {every_s}: at least 1 and more than 0")
        self._tell = tell
        self._tell_count = tell_count
        self.burst = burst
        self.every_s = every_s
        self._clock = clock
        self.total = 0  # events in all
        self.untold = 0  # events counted, their count not told yet
        self._budget = float(burst)  # lines that may be told now
        self._at: float | None = None  # when the budget was last topped up

    def __call__(self, detail: str) -> None:
        """One more event; ``detail`` is told if the budget allows, else counted."""
        self.total += 1
        now = self._clock()
        if self._at is not None:
            self._budget = min(self.burst, self._budget + (now - self._at) / self.every_s)
        self._at = now
        if self.untold and self._budget >= 1:  # what was counted comes first
            self._budget -= 1
            self.flush()
        if not self.untold and self._budget >= 1:
            self._budget -= 1
            self._tell(detail)
        else:
            self.untold += 1

    def flush(self, *, always: bool = False) -> None:
        """Tell the events counted and not told yet (``always``: even none), budget or not."""
        if self.untold or always:
            untold, self.untold = self.untold, 0
            self._tell_count(untold, self.total)
