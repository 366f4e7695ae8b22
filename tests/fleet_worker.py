"""A fleet worker for tests/test_fleet_redis.py: one process of a fleet sharing a plan.

``llm URL --requests N --plan P``: N concurrent ElectronClient streams;
``tts URL --sessions S --segments K --slots P``: S LightningTTS sessions at once, each
speaking K segments one after another. Events go to stdout as JSON lines (``ready``, then, after a
``go`` line on stdin, ``sent``/``done``/``failed`` per request, and ``finished``); logs
(WARNING and up) go to stderr. The Redis URL comes from VOICEAGENT_REDIS_URL.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread

from voiceagent.adapters.lightning import LightningTTS
from voiceagent.llm import ElectronClient, RetryPolicy

KEY = "sk-fleet-test-DO-NOT-LOG-5678"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


async def one_llm(client: ElectronClient, i: int, counts: dict[str, int]) -> None:
    try:
        text = []
        sent = lambda waited_s: emit("sent", i=i, waited_s=waited_s)  # noqa: E731
        messages = [{"role": "user", "content": f"question {i}"}]
        async with client.stream(messages, on_send=sent) as stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
        emit("done", i=i, chars=len("".join(text)))
        counts["ok"] += 1
    except Exception as exc:  # a failure is reported, not raised: the count tells
        emit("failed", i=i, error=f"{type(exc).__name__}: {exc}")
        counts["failed"] += 1


async def fragments(text: str) -> AsyncIterator[str]:
    yield text


async def one_segment(tts: LightningTTS, name: str, counts: dict[str, int]) -> None:
    try:
        pcm = b"".join([chunk async for chunk in tts.synthesize(fragments(name))])
        emit("done", i=name, bytes=len(pcm))
        counts["ok" if pcm else "failed"] += 1
    except Exception as exc:
        emit("failed", i=name, error=f"{type(exc).__name__}: {exc}")
        counts["failed"] += 1


async def main(args: argparse.Namespace) -> None:
    emit("ready")
    await anyio.to_thread.run_sync(sys.stdin.readline)
    counts = {"ok": 0, "failed": 0}
    if args.kind == "llm":
        client = ElectronClient(args.url, KEY, plan=args.plan, retry=RetryPolicy(scale=0.1))
        async with anyio.create_task_group() as tg:
            for i in range(args.requests):
                tg.start_soon(one_llm, client, i, counts)
    else:
        sessions = [
            LightningTTS(args.url, KEY, max_concurrent=args.slots) for _ in range(args.sessions)
        ]

        async def session(s: int, tts: LightningTTS) -> None:
            for k in range(args.segments):  # one after another, as a call's replies
                await one_segment(tts, f"Session {s} says segment {k}.", counts)

        async with anyio.create_task_group() as tg:
            for s, tts in enumerate(sessions):
                tg.start_soon(session, s, tts)
        for tts in sessions:
            await tts.aclose()
    emit("finished", **counts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["llm", "tts"])
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=1)
    parser.add_argument("--plan", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--segments", type=int, default=1)
    parser.add_argument("--slots", type=int, default=1)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    anyio.run(main, parser.parse_args())
