"""Reading a round's LLM stream: directly, or through a reader task that can go on reading
a cut stream silently for its exact usage (``drain_on_interrupt``)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream
from openai.types.chat import ChatCompletionChunk

from voiceagent.llm import ElectronError, ElectronStream
from voiceagent.timeline import TurnTimeline

logger = logging.getLogger(__name__)

GIVE_WAY_POLL_S = 0.05  # how often a drain looks for a request waiting for its slot


@dataclass
class _Reader:
    """What the turn and its reader task know of each other."""

    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    entered: bool = False  # the stream is open: its request was accepted and answered
    ended: bool = False  # the reader is done with the stream (read, failed or cancelled)
    cut: bool = False  # the turn stopped reading: nothing more is handed over
    accounts: bool = False  # the reader records the usage (the turn does otherwise)


@asynccontextmanager
async def read_stream(
    stream: ElectronStream, tl: TurnTimeline, background: TaskGroup | None
) -> AsyncIterator[tuple[AsyncIterator[ChatCompletionChunk], Callable[[], bool]]]:
    """The stream's chunks, and ``drain()`` to call when the turn is cut.

    By default the turn reads the stream itself and a cut closes it. With a ``background``
    task group (the session's, given with ``drain_on_interrupt``) a reader task there reads
    it, so that a cut turn can leave it to read on, silently, for its exact usage.
    ``drain()`` returns True when the reader (or ``drain`` itself) records the round's usage,
    False when the turn must (``stream.usage_to_bill()``): the stream was closed at the cut
    because it was not open yet (a request the turn no longer needs is never sent) or
    another request waits for its concurrency slot. A drain under way gives the slot up
    too, to a request that starts waiting later, and records an estimate instead.
    """
    if background is None:
        async with stream:
            yield stream, lambda: False
        return
    send, receive = anyio.create_memory_object_stream[ChatCompletionChunk | Exception](math.inf)
    reader = _Reader()
    background.start_soon(_read_for, stream, send, reader, tl)

    async def chunks() -> AsyncIterator[ChatCompletionChunk]:
        async for item in receive:
            if isinstance(item, Exception):
                raise item
            yield item

    def drain() -> bool:
        receive.close()  # the reader now reads on without handing anything over
        reader.cut = True
        if reader.ended:  # all of it had arrived already, usage too, only not read yet
            _record(stream, tl)
            return True
        if not reader.entered or stream.contended:
            reader.scope.cancel()
            return False
        reader.accounts = True
        return True

    try:
        yield chunks(), drain
    finally:
        receive.close()
        if not reader.cut and not reader.ended:  # the turn stopped reading, not by a cut
            reader.scope.cancel()


async def _read_for(
    stream: ElectronStream,
    send: MemoryObjectSendStream[ChatCompletionChunk | Exception],
    reader: _Reader,
    tl: TurnTimeline,
) -> None:
    with reader.scope, send:
        async with anyio.create_task_group() as watch:
            watch.start_soon(_give_way, stream, reader)
            try:
                async with stream:
                    reader.entered = True
                    async for chunk in stream:
                        if not reader.cut:
                            try:
                                send.send_nowait(chunk)
                            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                                pass  # the turn was cut: drain silently
            except ElectronError as error:
                try:
                    send.send_nowait(error)  # the turn's error (it speaks its apology)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    logger.info("draining an interrupted stream failed: %s", error)
            finally:
                reader.ended = True
                watch.cancel_scope.cancel()
    if reader.accounts:  # exact when the drain read the usage chunk, else an estimate
        _record(stream, tl)


async def _give_way(stream: ElectronStream, reader: _Reader) -> None:
    """While draining, close the stream as soon as another request waits for its slot."""
    # polled: the limiter has no "someone started waiting" event, and a drain is rare
    while True:
        await anyio.sleep(GIVE_WAY_POLL_S)
        if reader.cut and reader.entered and stream.contended:
            break
    logger.info("an interrupted stream's drain gives its slot to a waiting request")
    reader.scope.cancel()


def _record(stream: ElectronStream, tl: TurnTimeline) -> None:
    usage = stream.usage_to_bill()
    if usage is not None:
        tl.add_usage(usage.prompt, usage.completion, usage.cached, usage.estimated)
