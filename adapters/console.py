"""A transport for typing to the agent: lines in (stdin, or any async iterable), and its
answer heard on any speaker or, by default, only read (a NullSpeaker keeps the pace, at the
voice's own rate, and sleeps while the agent is silent)."""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from typing import Any

import anyio
import anyio.to_thread

from voiceagent import ports
from voiceagent.adapters.virtual_speaker import NullSpeaker


class ConsoleTransport:
    """``ports.Transport`` whose ``incoming()`` yields typed lines as ``str`` and no audio.

    Lines come from ``lines`` when given, else from stdin, read in a worker thread so the
    event loop never blocks on the keyboard. Lines are stripped; blank ones are skipped. The
    end of the lines (EOF on stdin) is the hang-up, and so is ``aclose()``. Without
    ``output``, a ``NullSpeaker`` that plays any voice at its own rate. (A session also takes
    text from any transport through ``Session.send_text``.)
    """

    def __init__(
        self,
        output: ports.AudioSink | None = None,
        *,
        lines: AsyncIterable[str] | None = None,
        input_rate: int = 16000,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._output: ports.AudioSink = output if output is not None else NullSpeaker()
        self._lines = lines
        self._input_rate = input_rate
        self._metadata: Mapping[str, Any] = dict(metadata or {})
        self._closed = False
        self._read_scope: anyio.CancelScope | None = None

    @property
    def input_rate(self) -> int:
        return self._input_rate

    @property
    def output(self) -> ports.AudioSink:
        return self._output

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    async def incoming(self) -> AsyncGenerator[str, None]:
        lines = aiter(self._lines) if self._lines is not None else None
        while not self._closed:
            line: str | None = None
            # A scope per read (never across a yield), so aclose() can end a pending read.
            with anyio.CancelScope() as self._read_scope:
                line = await _next_line(lines)
            self._read_scope = None
            if line is None or self._closed:
                return
            text = line.strip()
            if text:
                yield text

    async def aclose(self) -> None:
        self._closed = True
        if self._read_scope is not None:
            self._read_scope.cancel()


async def _next_line(lines: AsyncIterator[str] | None) -> str | None:
    """The next line, or None at the end."""
    if lines is not None:
        try:
            return await anext(lines)
        except StopAsyncIteration:
            return None
    # readline cannot be interrupted: on cancel the thread is left to finish on its own.
    line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    return line if line else None
