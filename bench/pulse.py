"""The Pulse adapter's cost: time from a final sent by the (local, fake) server to the event in
the app, against a bare ``websockets`` client in the same process (the baseline).

The server runs on its own event loop in a thread; each round sends ``finalize`` and times
from the server's send of the final (``time.perf_counter`` just before ``ws.send``) to the
moment the app holds it: a ``Transcript`` from ``PulseStream.events()`` for the adapter, a
parsed JSON dict from ``ws.recv()`` for the baseline. Blocks of rounds alternate between the
two so machine noise hits both alike.

Run: ``.venv/bin/python bench/pulse.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator

from websockets.asyncio.client import connect

from voiceagent.adapters.pulse import PulseSTT
from voiceagent.ports import STTEvent, Transcript
from voiceagent.testing.pulse import PulseServer, RecordedConnection

FINALIZE = json.dumps({"type": "finalize"})
BLOCK = 50


async def adapter_rounds(stt: PulseSTT, server: PulseServer, rounds: int) -> list[float]:
    """Latencies (s) of ``rounds`` finals through the adapter, on one stream."""
    latencies: list[float] = []
    known = len(server.connections)
    async with stt.stream() as stream:
        record = await _record_of(server, known)
        events: AsyncIterator[STTEvent] = stream.events()
        for _ in range(rounds):
            await stream.finalize()
            event = await anext(events)
            while not (isinstance(event, Transcript) and event.is_final):
                event = await anext(events)
            latencies.append(time.perf_counter() - _last_final_sent(record))
    return latencies


async def baseline_rounds(url: str, server: PulseServer, rounds: int) -> list[float]:
    """The same with a bare websockets client: send finalize, recv, json.loads."""
    latencies: list[float] = []
    known = len(server.connections)
    async with connect(url, compression=None) as ws:
        record = await _record_of(server, known)
        for _ in range(rounds):
            await ws.send(FINALIZE)
            message = json.loads(await ws.recv())
            while not message.get("is_final"):
                message = json.loads(await ws.recv())
            latencies.append(time.perf_counter() - _last_final_sent(record))
    return latencies


async def _record_of(server: PulseServer, index: int) -> RecordedConnection:
    """The server's record of connection ``index`` (its thread may add it a moment late)."""
    while len(server.connections) <= index:  # noqa: ASYNC110 (another thread appends it)
        await asyncio.sleep(0.001)
    return server.connections[index]


def _last_final_sent(record: RecordedConnection) -> float:
    for message, at in zip(reversed(record.sent), reversed(record.sent_at), strict=True):
        if message.get("is_final"):
            return at
    raise RuntimeError("no final was recorded")


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (
        f"{name:<22} median {statistics.median(values) * 1e6:7.1f} µs   "
        f"p90 {p90 * 1e6:7.1f} µs   (n={len(values)})"
    )


async def run(rounds: int) -> None:
    with PulseServer.running_in_thread(transcribe="table") as server:
        stt = PulseSTT(server.url, vad_events=False)
        url = stt.stream_url
        await adapter_rounds(stt, server, 20)  # warm-up: imports, first connections
        await baseline_rounds(url, server, 20)
        adapter: list[float] = []
        baseline: list[float] = []
        for _ in range(max(1, rounds // BLOCK)):
            adapter += await adapter_rounds(stt, server, BLOCK)
            baseline += await baseline_rounds(url, server, BLOCK)
    print("final sent by the server -> held by the app (same process, loopback TCP)")
    print(summary("bare websockets client", baseline))
    print(summary("PulseSTT adapter", adapter))
    overhead = statistics.median(adapter) - statistics.median(baseline)
    print(f"adapter overhead (difference of medians): {overhead * 1e6:+.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1000, help="finals per client")
    asyncio.run(run(parser.parse_args().rounds))
