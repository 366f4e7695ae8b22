"""Freed heap memory goes back to the system while a server runs (glibc's malloc_trim)."""

from __future__ import annotations

import platform

import anyio
import pytest

from voiceagent.heap import malloc_trim, trimming


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's: this C library has none"
)
def test_glibc_has_malloc_trim_and_it_runs() -> None:
    trim = malloc_trim()
    assert trim is not None
    blocks = [bytes(600) for _ in range(50_000)]  # past pymalloc: glibc's own heap
    del blocks
    assert trim() in (0, 1)


async def test_trimming_runs_the_trim_every_interval_until_closed() -> None:
    runs: list[float] = []
    third = anyio.Event()

    def trim() -> int:
        runs.append(anyio.current_time())
        if len(runs) == 3:
            third.set()
        return 1

    async with trimming(every_s=0.01, trim=trim) as active:
        assert active
        with anyio.fail_after(10):
            await third.wait()
    seen = len(runs)
    await anyio.sleep(0.05)
    assert seen >= 3 and len(runs) == seen  # none after the block
    assert runs == sorted(runs)
