"""Lightning adapter figures through the local fake: first-audio overhead, filler→answer gap.

Run: python bench/lightning.py [--rounds N]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from collections.abc import AsyncIterator

import anyio
from websockets.asyncio.client import ClientConnection, connect

from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer

PHRASE = ["Sure. ", "The answer is forty two."]
FILLER = "Let me check the weather for you."
ANSWER = "It is sunny and twenty degrees in Paris."
RATE = 24000


async def _fragments(texts: list[str], marks: dict[str, float]) -> AsyncIterator[str]:
    for text in texts:
        marks.setdefault("first_fragment", time.perf_counter())
        yield text


async def ours_first_audio_ms(tts: LightningTTS) -> float:
    marks: dict[str, float] = {}
    first = None
    async for _ in tts.synthesize(_fragments(PHRASE, marks)):
        if first is None:
            first = time.perf_counter()
    assert first is not None
    return (first - marks["first_fragment"]) * 1000


async def bare_first_audio_ms(ws: ClientConnection, n: int) -> float:
    """The same phrase with nothing but websockets: the floor our adapter is measured against."""
    config = {
        "voice_id": "sophia",
        "model": "lightning_v3.1",
        "language": "en",
        "sample_rate": RATE,
        "speed": 1.0,
        "complete_backoff_ms": 0,
        "request_id": f"bare-{n}",
    }
    started = time.perf_counter()
    for text in PHRASE:
        await ws.send(json.dumps({**config, "text": text, "continue": True, "flush": False}))
    await ws.send(json.dumps({**config, "text": "", "continue": False, "flush": True}))
    first = None
    while True:
        message = json.loads(await ws.recv())
        if message["status"] == "chunk" and first is None:
            base64.b64decode(message["data"]["audio"])
            first = time.perf_counter()
        if message["status"] == "complete":
            break
    assert first is not None
    return (first - started) * 1000


async def first_audio(rounds: int) -> None:
    server = LightningServer(voice="synthetic", close_after_complete=False)
    async with server, connect(server.ws_url, compression=None) as bare:
        async with LightningTTS(server.ws_url, complete_backoff_ms=0) as tts:
            await ours_first_audio_ms(tts)  # warm up both sockets and imports
            await bare_first_audio_ms(bare, 0)
            ours, floor = [], []
            for n in range(1, rounds + 1):  # interleaved, so machine noise hits both alike
                ours.append(await ours_first_audio_ms(tts))
                floor.append(await bare_first_audio_ms(bare, n))
    ours_ms, floor_ms = statistics.median(ours), statistics.median(floor)
    print(f"first fragment → first audio, median of {rounds} (local fake, persistent socket):")
    print(f"  bare websockets client  {floor_ms:6.2f} ms")
    print(f"  LightningTTS            {ours_ms:6.2f} ms")
    print(f"  overhead                {ours_ms - floor_ms:6.2f} ms (target ≤ 5 ms)")


async def filler_answer_gap_ms(backoff_ms: int) -> tuple[float, float]:
    """Filler then answer through the one-request limit; (gap, filler audio ms)."""
    server = LightningServer(voice="synthetic", account_limit=1, close_after_complete=True)
    arrivals: dict[str, list[float]] = {"filler": [], "answer": []}
    filler_samples = 0

    async def segment(name: str, text: str, tts: LightningTTS) -> None:
        nonlocal filler_samples
        async for pcm in tts.synthesize(_fragments([text], {})):
            arrivals[name].append(time.perf_counter())
            if name == "filler":
                filler_samples += len(pcm) // 2

    async with server, LightningTTS(server.ws_url, complete_backoff_ms=backoff_ms) as tts:
        async with anyio.create_task_group() as tg:
            tg.start_soon(segment, "filler", FILLER, tts)
            await anyio.sleep(0.05)  # the tool finished: the answer is asked for at once
            tg.start_soon(segment, "answer", ANSWER, tts)
    gap = (arrivals["answer"][0] - arrivals["filler"][-1]) * 1000
    return gap, filler_samples * 1000 / RATE


async def gaps(rounds: int) -> None:
    print("filler's last audio → answer's first audio, one-request account limit:")
    low = [await filler_answer_gap_ms(100) for _ in range(rounds)]
    default = [await filler_answer_gap_ms(4000) for _ in range(2)]
    low_gap = statistics.median(gap for gap, _ in low)
    default_gap = statistics.median(gap for gap, _ in default)
    print(f"  complete_backoff_ms=100  (ours)      {low_gap:7.1f} ms  (median of {rounds})")
    print(f"  complete_backoff_ms=4000 (default)   {default_gap:7.1f} ms  (median of 2)")
    print(f"  (the filler itself plays for {low[0][1]:.0f} ms: a gap shorter than that is")
    print("   hidden behind it in playback; 4 s is not)")


async def main(rounds: int) -> None:
    await first_audio(rounds)
    await gaps(max(3, rounds // 10))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    anyio.run(main, parser.parse_args().rounds)
