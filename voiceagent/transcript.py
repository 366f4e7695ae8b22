"""A session's transcript file: JSON lines written off the event loop, in order."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import anyio

logger = logging.getLogger(__name__)


class Transcript:
    """A transcript file of JSON lines, written by its own task through a worker thread in
    the order they were logged: a slow disk (or a pipe nobody reads) never stalls the event
    loop. The file is opened once and flushed after each batch of lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._send, self._lines = anyio.create_memory_object_stream[str](math.inf)

    def write(self, line: dict[str, Any]) -> None:
        """Queue one line (never blocks)."""
        try:
            self._send.send_nowait(json.dumps(line, ensure_ascii=False) + "\n")
        except anyio.ClosedResourceError:
            logger.warning("a transcript line came after the transcript closed: %s", line)

    def close(self) -> None:
        """No more lines: ``run`` returns once it has written those queued."""
        self._send.close()

    async def run(self) -> None:
        # shielded: the last lines of a cancelled session are written too; ``close`` ends it
        with anyio.CancelScope(shield=True):
            async with self._lines:
                try:
                    file = await anyio.open_file(self.path, "a", encoding="utf-8")
                except OSError as error:
                    logger.error("the transcript %s cannot be written: %s", self.path, error)
                    async for _ in self._lines:
                        pass  # the call goes on without it
                    return
                async with file:
                    async for text in self._lines:
                        batch = [text]
                        while True:  # whatever else is queued goes in the same write
                            try:
                                batch.append(self._lines.receive_nowait())
                            except (anyio.WouldBlock, anyio.EndOfStream):
                                break
                        await file.write("".join(batch))
                        await file.flush()
