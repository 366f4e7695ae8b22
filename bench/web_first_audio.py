"""End of speech → first audio at the page: ``voiceagent web`` on the offline stack (the local
simulator, Whisper tiny.en, piper, Silero VAD), talked to by a real headless Chromium whose
fake microphone plays questions spoken by espeak-ng.

The end of each question is where its last voiced sample falls in the WAV, placed on the
page's clock from the microphone's first frame; the first audio is when the page's player
starts playing the answer's first segment (after its jitter buffer). Both are the page's
``performance.now()``, so the figure includes the network, the jitter buffer, VAD hangover,
STT, LLM and TTS. The server's own ``first_audio_ms`` (VAD end → the first sample handed to
the socket) is printed beside it.

    .venv/bin/python bench/web_first_audio.py [--turns 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser rig the tests use

import numpy as np  # noqa: E402
from web_rig import WAV_RATE, WebServerProcess, browser_missing, chromium, speak_wav  # noqa: E402

from voiceagent import audio  # noqa: E402

QUESTIONS = [
    "What is twelve times seven?",
    "What time is it?",
    "What is eight times nine?",
    "What is the weather in Paris?",
    "What is seven times seven?",
]
GREETING_S = 9.0  # silence first: the greeting plays out
GAP_S = 9.0  # silence after each question: the answer plays out
VOICED_DBFS = -45.0  # a 10 ms window louder than this is speech


def speech_ends(wav: Path) -> list[float]:
    """Seconds into ``wav`` where each stretch of speech ends (gaps over 1 s split them)."""
    pcm, rate = audio.read_wav(wav)
    window = rate // 100
    samples = audio.pcm_to_int16(pcm).astype(np.float64)
    ends: list[float] = []
    last_voiced = None
    for i in range(0, len(samples) - window, window):
        block = samples[i : i + window]
        level = 20 * np.log10(max(1e-9, float(np.sqrt(np.mean(block**2))) / 32768))
        t = i / rate
        if level > VOICED_DBFS:
            last_voiced = t + window / rate
        elif last_voiced is not None and t - last_voiced > 1.0:
            ends.append(last_voiced)
            last_voiced = None
    if last_voiced is not None:
        ends.append(last_voiced)
    return ends


def page_figures(state: dict[str, Any], ends: list[float]) -> list[float]:
    """End of each question → the first start of play after it (ms, the page's clock)."""
    first_frame = state["firstFrameAt"]
    figures = []
    for turn, end_s in zip(state["userTurns"], ends, strict=False):
        # the first segment of this user turn, and the player's first start at or after it
        segments = state["segments"][turn["segments"] :]
        if not segments:
            continue
        at = segments[0]["at"]
        starts = [s for s in state["starts"] if s["position"] >= at]
        if not starts:
            continue
        speech_end = first_frame - 20.0 + end_s * 1000.0  # the first frame is 20 ms of it
        figures.append(starts[0]["t"] - speech_end)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=3, help=f"questions (1-{len(QUESTIONS)})")
    args = parser.parse_args()
    why = browser_missing()
    if why is not None:
        print(f"web_first_audio: cannot run: {why}", file=sys.stderr)
        return 2
    turns = max(1, min(args.turns, len(QUESTIONS)))
    with tempfile.TemporaryDirectory(prefix="web-first-audio-") as folder_name:
        folder = Path(folder_name)
        parts: list[str | float] = [GREETING_S]
        for question in QUESTIONS[:turns]:
            parts += [question, GAP_S]
        wav = speak_wav(folder / "questions.wav", parts, tail_s=2.0)
        ends = speech_ends(wav)[:turns]
        duration_s = audio.pcm_samples(audio.read_wav(wav)[0]) / WAV_RATE
        server = WebServerProcess(folder)
        try:
            with chromium(wav) as driver:
                driver.get(server.url)
                driver.find_element("id", "talk").click()
                deadline = time.monotonic() + duration_s + 120
                state: dict[str, Any] = {}
                while time.monotonic() < deadline:
                    time.sleep(1.0)
                    state = driver.execute_script("return window.voiceagent")
                    answered = [t for t in state["turns"] if t["trigger"] == "user"]
                    if len(answered) >= turns:
                        break
        finally:
            server.close()
        timeline = json.loads(server.timeline.read_text()) if server.timeline.exists() else {}
    figures = page_figures(state, ends)
    server_figures = [
        t["metrics"]["first_audio_ms"]
        for t in timeline.get("turns", [])
        if t["trigger"] == "user" and t["metrics"]["first_audio_ms"] is not None
    ]
    heard = [t["heard"] for t in state.get("turns", []) if t["trigger"] == "user"]
    print(f"questions: {turns}; answered on the page: {len(heard)}")
    for i, figure in enumerate(figures):
        server_ms = f"{server_figures[i]:.0f} ms" if i < len(server_figures) else "n/a"
        said = heard[i] if i < len(heard) else ""
        print(f"  turn {i + 1}: end of speech -> first audio at the page {figure:.0f} ms "
              f"(server: VAD end -> first sample sent {server_ms}); {said!r}")  # fmt: skip
    if not figures:
        print("no turn measured", file=sys.stderr)
        return 1
    print(f"median end of speech -> first audio at the page: {statistics.median(figures):.0f} ms "
          f"over {len(figures)} turns")  # fmt: skip
    if server_figures:
        print(f"median server first_audio_ms: {statistics.median(server_figures):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
