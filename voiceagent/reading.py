"""Reading a round's LLM stream: directly, or through a reader task that can go on reading
a cut stream silently for its exact usage (``drain_on_interrupt``)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream
from openai.types.chat import ChatCompletionChunk

from voiceagent.llm import ElectronError, ElectronStream
from voiceagent.timeline import TurnTimeline

logger = logging.getLogger(__name__)


@asynccontextmanager
async def read_stream(
    stream: ElectronStream, tl: TurnTimeline, background: TaskGroup | None
) -> AsyncIterator[tuple[AsyncIterator[ChatCompletionChunk], Callable[[], bool]]]:
    """The stream's chunks, and ``drain()`` to call when the turn is cut.

    By default the turn reads the stream itself and a cut closes it. With a ``background``
    task group (the session's, given with ``drain_on_interrupt``) a reader task there reads
    it, so that a cut turn can leave it to read on, silently, for its exact usage — unless
    another request waits for its concurrency slot (then it is closed).
    """
    if background is None:
        async with stream:
            yield stream, lambda: False
        return
    send, receive = anyio.create_memory_object_stream[ChatCompletionChunk | Exception](math.inf)
    reader_scope = anyio.CancelScope()
    background.start_soon(_read_for, stream, send, reader_scope, tl)

    async def chunks() -> AsyncIterator[ChatCompletionChunk]:
        async for item in receive:
            if isinstance(item, Exception):
                raise item
            yield item

    def drain() -> bool:
        receive.close()  # the reader now reads on without handing anything over
        if stream.contended:
            reader_scope.cancel()
            return False
        return True

    try:
        yield chunks(), drain
    finally:
        receive.close()


async def _read_for(
    stream: ElectronStream,
    send: MemoryObjectSendStream[ChatCompletionChunk | Exception],
    scope: anyio.CancelScope,
    tl: TurnTimeline,
) -> None:
    handing = True
    with scope, send:
        try:
            async with stream:
                async for chunk in stream:
                    if handing:
                        try:
                            send.send_nowait(chunk)
                        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                            handing = False  # the turn was cut: drain silently
        except ElectronError as error:
            if handing:
                send.send_nowait(error)
                return
            logger.info("draining an interrupted stream failed: %s", error)
    if handing or scope.cancelled_caught:
        return  # read by the turn, or closed for a waiting request: the turn counts it
    usage = stream.usage  # drained to its end: the exact usage (else an estimate)
    if usage is not None:
        tl.add_usage(usage.prompt, usage.completion, usage.cached, usage.estimated)
    else:
        tl.add_usage(0, 0, 0, estimated=True)
