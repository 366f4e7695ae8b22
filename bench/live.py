"""Live latency on real devices (PulseAudio null sinks, the offline stack): ``voiceagent
demo`` runs live; questions are played into the virtual microphone and both ends are
recorded, so every figure is as heard at the speaker.

- end of user speech (in the mic recording) -> first agent audio (in the speaker's), p50/p90
- barge-in onset (the interruption's first sound) -> speaker silent, p50/p90 over
  ``--barge-ins`` sessions, each interrupting the greeting at a different point

Both recordings are dated on one clock (``time.monotonic()``, through their arrival). The
greeting is one long sentence with no pause over 140 ms (a comma's pause is ~300 ms, and a
barge-in landing in one looked like a 150 ms cut), and "silent" is the end of the agent's
last sound before the user stopped talking, with the speaker quiet from there until past
it (the reply comes later). The session's own ``barge-in`` line (stderr, dated on
arrival) is the cross-check.

Usage: python bench/live.py [--turns 10] [--barge-ins 5] [--barge-in]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from voiceagent import audio
from voiceagent.adapters.null_sinks import MIC, RATE, NullSinks, Recorder

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))
FRAME = RATE // 100  # 10 ms
SILENT_DB = -50.0
SILENT_S = 0.3  # silenced: quiet this long, through the user's end (the reply comes >1 s later)
QUESTIONS = [f"What is {a} times {b}?" for a, b in ((12, 7), (6, 9), (8, 4), (3, 11), (5, 5))]
GREETING = (
    "Hello there and welcome to the demo where I can tell you the time and do some simple "
    "arithmetic and also check the weather in any city you would like to know about so "
    "just ask me whenever you are ready"
)
AGENT = f"""import dataclasses

from voiceagent.demo_agent import agent as demo

agent = dataclasses.replace(demo, greeting={GREETING!r})
"""


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
    end = min(end, len(pcm) // 2)
    return next((i for i in range(max(0, start), end - FRAME, FRAME) if loud(pcm, i)), None)


def last_sound(pcm: bytes, start: int, end: int) -> int | None:
    end = min(end, len(pcm) // 2)
    found = [i for i in range(max(0, start), end - FRAME, FRAME) if loud(pcm, i)]
    return found[-1] + FRAME if found else None


def when(recorder: Recorder, sample: int) -> float:
    """The ``monotonic()`` time of ``sample`` (the inverse of ``Recorder.at``)."""
    return (sample - recorder.at(0.0)) / RATE


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 else []
    p90 = cuts[8] if cuts else values[0]
    return (
        f"p50 {statistics.median(values):.0f} ms, p90 {p90:.0f} ms "
        f"(min {min(values):.0f}, max {max(values):.0f})"
    )


class Demo:
    """``voiceagent demo`` live, its stderr lines dated on arrival (and kept in a file)."""

    def __init__(self, sinks: NullSinks, folder: Path, barge_in: bool) -> None:
        env = dict(sinks.env)
        for key in ("SMALLEST_API_KEY", "ELECTRON_BASE_URL", "LIGHTNING_URL", "PULSE_URL"):
            env.pop(key, None)
        command = [VOICEAGENT, "demo", "agent.py", *(["--barge-in"] if barge_in else [])]
        self.process = subprocess.Popen(
            command, cwd=folder, env=env, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._log = folder / "demo.err"
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self._log.open("a") as log:
            for line in self.process.stderr:
                self.lines.append((time.monotonic(), line))
                log.write(line)

    def said(self) -> str:
        """The agent's next turn (its line on stdout)."""
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def barge_in_at(self, after: float) -> float | None:
        return next((t for t, line in self.lines if "barge-in:" in line and t > after), None)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=20)
        self._reader.join(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--barge-ins", type=int, default=5)
    parser.add_argument("--barge-in", action="store_true", help="run the demo with --barge-in")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="voiceagent-bench-"))
    (folder / "agent.py").write_text(AGENT)
    sinks = NullSinks().start()
    try:
        return run(sinks, folder, args.turns, max(1, args.barge_ins), args.barge_in)
    finally:
        sinks.stop()


def run(sinks: NullSinks, folder: Path, turns: int, barge_ins: int, barge_in: bool) -> int:
    wavs = []
    for k, text in enumerate(QUESTIONS):
        wavs.append(folder / f"q{k}.wav")
        espeak(text, wavs[-1])
    interruption = folder / "stop.wav"
    length = espeak("Wait, wait. Stop talking please.", interruption)
    latencies: list[float] = []
    cuts: list[float] = []
    for k in range(barge_ins):
        mic, speaker = sinks.record(f"{MIC}.monitor"), sinks.record()
        demo = Demo(sinks, folder, barge_in)
        try:
            # the user talks over the greeting, 1.0 to 2.2 s after it started
            while not (speaker.first_at and loud(speaker.pcm(), len(speaker.pcm()) // 2 - FRAME)):
                time.sleep(0.02)
            time.sleep(1.0 + 0.3 * (k % 5))
            play_at = time.monotonic()
            sinks.play(interruption)
            demo.said()  # the greeting, cut
            demo.said()  # the answer to the interruption
            time.sleep(1.0)
            starts = []
            for turn in range(turns if k == 0 else 0):
                starts.append(time.monotonic())
                sinks.play(wavs[turn % len(wavs)])
                demo.said()
                time.sleep(1.0)  # the answer's echo tail passes before the next question
        finally:
            demo.stop()
            mic_pcm, speaker_pcm = mic.stop(), speaker.stop()
        latencies += turn_latencies(mic, speaker, mic_pcm, speaker_pcm, starts)
        cut = barge_in_cut(mic, speaker, mic_pcm, speaker_pcm, play_at, length, demo)
        if cut is not None:
            cuts.append(cut)
    mode = "full duplex (--barge-in)" if barge_in else "half-duplex (default)"
    print(f"voiceagent demo, live on PulseAudio null sinks, offline stack, {mode}")
    if latencies:
        print(
            f"end of user speech -> first agent audio at the speaker, {len(latencies)} turns: "
            + percentiles(latencies)
        )
    if cuts:
        print(f"barge-in onset -> speaker silent, {len(cuts)} barge-ins: " + percentiles(cuts))
    return 0 if cuts and len(cuts) == barge_ins else 1


def turn_latencies(
    mic: Recorder, speaker: Recorder, mic_pcm: bytes, speaker_pcm: bytes, starts: list[float]
) -> list[float]:
    latencies = []
    for k, start in enumerate(starts):
        end_window = mic.at(starts[k + 1]) if k + 1 < len(starts) else len(mic_pcm) // 2
        speech_end = last_sound(mic_pcm, mic.at(start), end_window)
        if speech_end is None:
            continue
        at = speaker.at(when(mic, speech_end))
        reply = first_sound(speaker_pcm, at, len(speaker_pcm) // 2)
        if reply is not None:
            latencies.append((reply - at) * 1000 / RATE)
    return latencies


def barge_in_cut(
    mic: Recorder,
    speaker: Recorder,
    mic_pcm: bytes,
    speaker_pcm: bytes,
    play_at: float,
    length: float,
    demo: Demo,
) -> float | None:
    """Onset -> the end of the agent's last sound before it fell silent for good (quiet
    from there to ``SILENT_S`` after the user stopped talking), in ms, printed with the
    session's barge-in event; None when the speaker was not silenced."""
    onset = first_sound(mic_pcm, mic.at(play_at), mic.at(play_at + 1.0))
    if onset is None:
        print("barge-in: the interruption was not heard in the microphone")
        return None
    user_end = last_sound(mic_pcm, onset, onset + round((length + 0.3) * RATE))
    assert user_end is not None  # onset itself is a sound
    onset_at, user_end_at = when(mic, onset), when(mic, user_end)
    until = user_end_at + SILENT_S + 0.2
    cut = last_sound(speaker_pcm, speaker.at(onset_at), speaker.at(until))
    event = demo.barge_in_at(play_at)
    seen = "none" if event is None else f"{(event - onset_at) * 1000:.0f} ms"
    if cut is None or when(speaker, cut) > until - SILENT_S:
        print(f"barge-in: the speaker was not silenced while the user spoke (event: {seen})")
        return None
    ms = (when(speaker, cut) - onset_at) * 1000
    print(f"barge-in: onset -> speaker silent {ms:.0f} ms (session's barge-in event: {seen})")
    return ms


if __name__ == "__main__":
    os.environ.setdefault("OPEN_METEO_GEOCODING_URL", "http://127.0.0.1:9")
    sys.exit(main())
