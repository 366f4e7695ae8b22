"""Live latency on real devices (PulseAudio null sinks, the offline stack): ``voiceagent
demo`` runs live; questions are played into the virtual microphone and both ends are
recorded, so every figure is as heard at the speaker.

- end of user speech (in the mic recording) -> first agent audio (in the speaker's), p50/p90
- barge-in onset (the interruption's first sound) -> speaker silent (300 ms below -50 dBFS)

Usage: python bench/live.py [--turns 10] [--barge-in]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from voiceagent import audio
from voiceagent.adapters.null_sinks import MIC, RATE, NullSinks, Recorder

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))
FRAME = RATE // 100  # 10 ms
SILENT_DB = -50.0
QUESTIONS = [f"What is {a} times {b}?" for a, b in ((12, 7), (6, 9), (8, 4), (3, 11), (5, 5))]


def espeak(text: str, path: Path) -> float:
    """Writes ``text`` spoken at 16 kHz; returns its length in seconds."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True)
    pcm, rate = audio.read_wav(path)
    resampler = audio.Resampler(rate, RATE)
    pcm = resampler.process(pcm) + resampler.flush()
    audio.write_wav(path, pcm, RATE)
    return len(pcm) / 2 / RATE


def loud(pcm: bytes, i: int) -> bool:
    return audio.rms_dbfs(pcm[2 * i : 2 * (i + FRAME)]) > SILENT_DB


def first_sound(pcm: bytes, start: int, end: int) -> int | None:
    return next((i for i in range(max(0, start), end - FRAME, FRAME) if loud(pcm, i)), None)


def last_sound(pcm: bytes, start: int, end: int) -> int | None:
    found = [i for i in range(max(0, start), end - FRAME, FRAME) if loud(pcm, i)]
    return found[-1] + FRAME if found else None


def first_quiet(pcm: bytes, start: int, span: int) -> int | None:
    """The first sample from which ``span`` samples are all quiet."""
    for i in range(start, len(pcm) // 2 - span, FRAME):
        if all(not loud(pcm, j) for j in range(i, i + span, FRAME)):
            return i
    return None


def read_line(demo: subprocess.Popen[str]) -> str:
    assert demo.stdout is not None
    return demo.stdout.readline().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--barge-in", action="store_true", help="run the demo with --barge-in")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="voiceagent-bench-"))
    sinks = NullSinks().start()
    try:
        return run(sinks, folder, args.turns, args.barge_in)
    finally:
        sinks.stop()


def run(sinks: NullSinks, folder: Path, turns: int, barge_in: bool) -> int:
    wavs = []
    for k, text in enumerate(QUESTIONS):
        wavs.append((folder / f"q{k}.wav", text))
        espeak(text, wavs[-1][0])
    interruption = folder / "stop.wav"
    espeak("Wait, wait. Stop talking please.", interruption)
    env = dict(sinks.env)
    for key in ("SMALLEST_API_KEY", "ELECTRON_BASE_URL", "LIGHTNING_URL", "PULSE_URL"):
        env.pop(key, None)
    mic: Recorder = sinks.record(f"{MIC}.monitor")
    speaker: Recorder = sinks.record()
    command = [VOICEAGENT, "demo", *(["--barge-in"] if barge_in else [])]
    demo = subprocess.Popen(
        command, cwd=folder, env=env, text=True, stdout=subprocess.PIPE,
        stderr=open(folder / "demo.err", "w"),
    )  # fmt: skip
    try:
        # barge-in on the greeting: 1.5 s after it starts, the user talks over it
        while not (speaker.first_at and loud(speaker.pcm(), len(speaker.pcm()) // 2 - FRAME)):
            time.sleep(0.02)
        time.sleep(1.5)
        play_at = time.monotonic()
        sinks.play(interruption)
        read_line(demo)  # the greeting turn, cut
        read_line(demo)  # the answer to the interruption
        time.sleep(1.0)
        barge = (play_at, len(mic.pcm()) // 2)
        starts = []
        for turn in range(turns):
            path, _text = wavs[turn % len(wavs)]
            starts.append(time.monotonic())
            sinks.play(path)
            read_line(demo)
            time.sleep(1.0)  # the answer's echo tail passes before the next question
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=20)
    mic_pcm, speaker_pcm = mic.stop(), speaker.stop()
    report(mic, speaker, mic_pcm, speaker_pcm, barge, starts, barge_in)
    return 0


def report(
    mic: Recorder,
    speaker: Recorder,
    mic_pcm: bytes,
    speaker_pcm: bytes,
    barge: tuple[float, int],
    starts: list[float],
    barge_in: bool,
) -> None:
    ms = 1000 / RATE
    # mic sample i and speaker sample j are on one clock through their arrival times
    offset = speaker.at(0.0) - mic.at(0.0)
    latencies = []
    for k, start in enumerate(starts):
        end_window = mic.at(starts[k + 1]) if k + 1 < len(starts) else len(mic_pcm) // 2
        speech_end = last_sound(mic_pcm, mic.at(start), end_window)
        if speech_end is None:
            continue
        reply = first_sound(speaker_pcm, speech_end + offset, len(speaker_pcm) // 2)
        if reply is not None:
            latencies.append((reply - speech_end - offset) * ms)
    onset = first_sound(mic_pcm, mic.at(barge[0]), barge[1])
    mode = "full duplex (--barge-in)" if barge_in else "half-duplex (default)"
    print(f"voiceagent demo, live on PulseAudio null sinks, offline stack, {mode}")
    if latencies:
        cuts = statistics.quantiles(latencies, n=10) if len(latencies) > 1 else latencies * 9
        print(
            f"end of user speech -> first agent audio at the speaker, {len(latencies)} turns: "
            f"p50 {statistics.median(latencies):.0f} ms, p90 {cuts[8]:.0f} ms "
            f"(min {min(latencies):.0f}, max {max(latencies):.0f})"
        )
    if onset is not None:
        quiet = first_quiet(speaker_pcm, onset + offset, RATE * 3 // 10)
        if quiet is not None:
            print(f"barge-in onset -> speaker silent: {(quiet - onset - offset) * ms:.0f} ms")


if __name__ == "__main__":
    os.environ.setdefault("OPEN_METEO_GEOCODING_URL", "http://127.0.0.1:9")
    sys.exit(main())
