"""LiveKit's Smallest AI STT (``livekit-plugins-smallestai``) against a Pulse server.

Run by ``.venv/peers/bin/python`` (tests/test_peer_clients.py): streams a 16 kHz mono WAV in
10 ms frames (the plugin re-frames to 50 ms), waits for its final transcript, stays silent
for ``--idle`` seconds (the plugin sends ``{"type":"keepalive"}`` every 5 s on the public
API's path and skips the ``pong``; any other answer makes it reconnect), then ends the input
(``finalize``, ``close_stream``) and reads until the stream ends.

Prints one JSON line: the speech events in order, the plugin's error events, and what went
over the wire (wiretap: every connect, every control message, the server's messages).
"""

from __future__ import annotations

import argparse
import asyncio
import wave
from typing import Any

from wiretap import Tap, drive, tap_aiohttp


async def run(args: argparse.Namespace, tap: Tap) -> dict[str, Any]:
    import aiohttp
    from livekit import rtc
    from livekit.agents import APIConnectOptions, stt
    from livekit.plugins import smallestai

    with wave.open(args.wav, "rb") as reader:
        rate = reader.getframerate()
        pcm = reader.readframes(reader.getnframes())
    events: list[dict[str, Any]] = []
    errors: list[str] = []
    got_final = asyncio.Event()

    async with aiohttp.ClientSession() as session:
        recognizer = smallestai.STT(
            api_key="peer-test-key", base_url=args.base_url, sample_rate=rate, http_session=session
        )
        recognizer.on("error", lambda event: errors.append(repr(getattr(event, "error", event))))
        options = APIConnectOptions(max_retry=3, retry_interval=0.1, timeout=10)
        stream = recognizer.stream(conn_options=options)

        async def read() -> None:
            async for event in stream:
                text = event.alternatives[0].text if event.alternatives else None
                events.append({"type": event.type.name, "text": text})
                if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                    got_final.set()

        reader_task = asyncio.create_task(read())
        step = rate // 100 * 2  # 10 ms of PCM16
        for start in range(0, len(pcm), step):
            piece = pcm[start : start + step]
            samples = len(piece) // 2
            stream.push_frame(rtc.AudioFrame(piece, rate, 1, samples))
            await asyncio.sleep(0)
        await asyncio.wait_for(got_final.wait(), 20)
        events.append({"type": "-- idle --", "text": None})
        await asyncio.sleep(args.idle)
        events.append({"type": "-- end_input --", "text": None})
        stream.end_input()
        await asyncio.wait_for(reader_task, 20)
        await stream.aclose()
        await recognizer.aclose()
    return {"events": events, "stt_errors": errors, "audio_bytes": len(pcm)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:PORT/waves/v1")
    parser.add_argument("--wav", required=True)
    parser.add_argument("--idle", type=float, default=6.0)
    drive(parser, run, tap_aiohttp)


if __name__ == "__main__":
    main()
