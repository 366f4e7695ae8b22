"""pipecat's ``SmallestSTTService`` (pipecat-ai 1.14, services/smallest/stt.py) against a
Pulse server, driven through a real pipecat pipeline (``pipecat.tests.utils.run_test``).

Run by ``.venv/peers/bin/python`` (tests/test_peer_clients.py): the WAV goes in as 20 ms
``InputAudioRawFrame``s, then ``VADUserStoppedSpeakingFrame`` (the service sends
``{"type":"finalize"}``), then a silent pause: pipecat's keepalive sends 100 ms of silence
as a binary frame once no audio went out for ``keepalive_timeout`` (10 s in the service,
shortened here with ``--keepalive-after``; what it sends is pipecat's own
``_send_keepalive``).

Prints one JSON line: the transcription frames in order, the error frames, and the wire.
"""

from __future__ import annotations

import argparse
import wave
from typing import Any

from wiretap import Tap, drive, tap_websockets


async def run(args: argparse.Namespace, tap: Tap) -> dict[str, Any]:
    from pipecat.frames.frames import (
        ErrorFrame,
        InputAudioRawFrame,
        InterimTranscriptionFrame,
        TranscriptionFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.services.smallest.stt import SmallestSTTService
    from pipecat.tests.utils import SleepFrame, run_test

    with wave.open(args.wav, "rb") as reader:
        rate = reader.getframerate()
        pcm = reader.readframes(reader.getnframes())

    service = SmallestSTTService(api_key="peer-test-key", base_url=args.base_url, sample_rate=rate)
    service._keepalive_timeout = args.keepalive_after  # pipecat passes 10 s to its base
    service._keepalive_interval = min(service._keepalive_interval, args.keepalive_after / 2)

    step = rate // 50 * 2  # 20 ms of PCM16
    frames: list[Any] = [VADUserStartedSpeakingFrame()]
    for start in range(0, len(pcm), step):
        frames.append(InputAudioRawFrame(pcm[start : start + step], rate, 1))
    frames.append(SleepFrame(sleep=args.settle))
    frames.append(VADUserStoppedSpeakingFrame())
    frames.append(SleepFrame(sleep=args.idle))
    down, up = await run_test(service, frames_to_send=frames, start_timeout=10.0)

    transcripts = [
        {"final": isinstance(f, TranscriptionFrame), "text": f.text}
        for f in down
        if isinstance(f, (TranscriptionFrame, InterimTranscriptionFrame))
    ]
    errors = [str(f.error) for f in (*down, *up) if isinstance(f, ErrorFrame)]
    return {"transcripts": transcripts, "errors": errors, "audio_bytes": len(pcm)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help="ws://127.0.0.1:PORT (no path)")
    parser.add_argument("--wav", required=True)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before the VAD stop")
    parser.add_argument("--keepalive-after", type=float, default=1.0)
    parser.add_argument("--idle", type=float, default=2.5, help="silent seconds at the end")
    drive(parser, run, tap_websockets)


if __name__ == "__main__":
    main()
