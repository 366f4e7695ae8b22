"""pipecat's ``SmallestTTSService`` (pipecat-ai 1.14, services/smallest/tts.py) against a
Lightning server, driven through a real pipecat pipeline.

Run by ``.venv/peers/bin/python`` (tests/test_peer_clients.py). The pipeline is pipecat's own
test idiom (``pipecat.tests.utils.run_test``: a source, the service, a sink): one LLM turn
of text frames (the service sends each sentence through ``run_tts`` under the turn's
``context_id`` with ``continue: true`` and closes the context with ``continue: false`` at
the turn's end), a pause long enough for several keepalives, then a second turn.
The keepalive interval is pipecat's 30 s, shortened here (``--keepalive``) by overriding
``_create_keepalive_task``: the message it sends is pipecat's own ``_send_keepalive``.

Prints one JSON line: audio bytes and frames per turn, the error frames, and the wire.
"""

from __future__ import annotations

import argparse
from typing import Any

from wiretap import Tap, drive, tap_websockets

TURNS = [
    ["Hello there. ", "This is pipecat speaking ", "to a Lightning fake."],
    ["And a second turn."],
]


async def run(args: argparse.Namespace, tap: Tap) -> dict[str, Any]:
    from pipecat.frames.frames import (
        ErrorFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
        TTSAudioRawFrame,
    )
    from pipecat.services.smallest.tts import SmallestTTSService
    from pipecat.tests.utils import SleepFrame, run_test

    class QuickKeepalive(SmallestTTSService):  # type: ignore[misc]
        def _create_keepalive_task(self, interval: float) -> None:
            super()._create_keepalive_task(args.keepalive)

    service = QuickKeepalive(api_key="peer-test-key", base_url=args.base_url, sample_rate=24000)
    frames: list[Any] = []
    for turn in TURNS:
        frames.append(LLMFullResponseStartFrame())
        frames.extend(LLMTextFrame(text) for text in turn)
        frames.append(LLMFullResponseEndFrame())
        frames.append(SleepFrame(sleep=args.pause))
    down, up = await run_test(service, frames_to_send=frames, start_timeout=10.0)

    turns: list[dict[str, Any]] = []
    for frame in down:
        if isinstance(frame, TTSAudioRawFrame):
            if not turns or turns[-1]["context_id"] != frame.context_id:
                turns.append({"context_id": frame.context_id, "bytes": 0, "frames": 0})
            turns[-1]["bytes"] += len(frame.audio)
            turns[-1]["frames"] += 1
            turns[-1]["sample_rate"] = frame.sample_rate
    errors = [str(f.error) for f in (*down, *up) if isinstance(f, ErrorFrame)]
    return {
        "turns": turns,
        "errors": errors,
        "down": [type(f).__name__ for f in down if not isinstance(f, TTSAudioRawFrame)],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help="ws://127.0.0.1:PORT (no path)")
    parser.add_argument("--keepalive", type=float, default=0.3, help="seconds between them")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds after each turn")
    drive(parser, run, tap_websockets)


if __name__ == "__main__":
    main()
