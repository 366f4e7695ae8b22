"""Helpers for the Lightning tests: fragment streams and whole-phrase collection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import voices

RATE = 24000


async def parts(
    *texts: str, before: dict[int, Callable[[], Awaitable[None]]] | None = None
) -> AsyncIterator[str]:
    """The texts as fragments; ``before[i]`` is awaited before fragment i (or the end, i=len)."""
    for index, text in enumerate(texts):
        if before and index in before:
            await before[index]()
        yield text
    if before and len(texts) in before:
        await before[len(texts)]()


async def speak(tts: LightningTTS, *texts: str) -> bytes:
    with anyio.fail_after(20):
        return b"".join([pcm async for pcm in tts.synthesize(parts(*texts))])


def expected(text: str, rate: int = RATE) -> bytes:
    """What the synthetic voice says for ``text``: exact, whatever the fragmenting."""
    return voices.synthetic(text, rate)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Until ``condition()`` holds (polled: the server's counters have no events)."""
    with anyio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await anyio.sleep(0.02)
