"""The overlapped follow-up, measured: the weather turn through the real turn engine against
the local Electron-compatible server, ours (``FollowUp.IMMEDIATE``: the follow-up is sent
the moment the tool ends) against the baseline of pipecat and LiveKit
(``FollowUp.AFTER_PLAYBACK``: the follow-up waits until the filler has played).

The model (TTFT 300 ms, 20 ms per token) says "Let me check the weather for you." and calls
``get_weather`` in 4 argument fragments; the tool takes 0.2 s, then 1.5 s; the answer is
"It is 18 degrees and sunny in Paris."; the test TTS gives its first audio 150 ms after a
phrase's first text and 60 ms of audio per character. The speaker is a real-time paced
``WavSpeaker``: the silence between filler and answer is measured in its recorded samples
(the test TTS never makes an exact zero, so a run of zeros is silence), next to the
timeline's ``filler_answer_gap_ms``. Both policies run in the same process, interleaved
(ours, baseline, ours, …) so machine noise hits both alike; figures are medians.

Run: ``.venv/bin/python bench/turn_overlap.py [--runs N] [--quick] [--wav-dir DIR]
[--block-ms MS]`` (the whole default run takes about a minute).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from voiceagent.adapters.wav_speaker import WavSpeaker
from voiceagent.agent import Agent
from voiceagent.history import History
from voiceagent.llm import ElectronClient
from voiceagent.speech import SpeechQueue
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import SessionClock, Timeline, TurnTimeline
from voiceagent.toolkit import Tool, tool
from voiceagent.turn import FollowUp, TurnEngine

TTFT_MS = 300.0
TOKEN_MS = 20.0
FIRST_BYTE_MS = 150.0
MS_PER_CHAR = 60.0
TOOL_SECONDS = (0.2, 1.5)
RATE = 24000  # the output's rate (DESIGN.md: 24 kHz unless a component needs another)
BLOCK_MS = 5.0  # a sound card's period; a 20 ms phone frame adds 0-20 ms (``--block-ms``)
ENGINE_SLACK_MS = 5.0  # what the engine may add to first audio, tool start and follow-up
GAP_SLACK_MS = 20.0  # what a gap may exceed the time the answer's audio could be ready
ZERO_MS = 1.0  # an "ours" below this makes a ratio meaningless: show the difference

FILLER = "Let me check the weather for you."
ANSWER = "It is 18 degrees and sunny in Paris."
QUESTION = "What's the weather in Paris?"
SCRIPT = [
    {
        "text": FILLER,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "fragments": 4}],
    },
    {"text": ANSWER},
]
POLICIES = {"ours": FollowUp.IMMEDIATE, "baseline": FollowUp.AFTER_PLAYBACK}


def weather_tool(seconds: float) -> Tool[..., Any]:
    @tool
    async def get_weather(city: str) -> dict[str, object]:
        """Current weather for a city."""
        await anyio.sleep(seconds)
        return {"city": city, "temperature_c": 18, "conditions": "sunny"}

    return get_weather


# --- one turn ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One turn's figures (ms); bounds are the targets' right-hand sides for this turn."""

    first_audio: float
    tool_start: float  # tool start − args ready
    followup: float  # follow-up request − last tool end
    wav_gap: float  # silence between filler and answer in the recorded samples
    timeline_gap: float  # the timeline's filler_answer_gap_ms
    total: float
    first_audio_bound: float  # TTFT + first phrase + first byte + slack
    gap_bound: float  # max(0, answer phrase ready + first byte − filler end) + slack
    block_wait: float  # first audio.start − tts.first_audio: waiting for the next block


ROWS: list[tuple[str, Callable[[Measured], float]]] = [
    ("first audio ms", lambda m: m.first_audio),
    ("tool start − args ready ms", lambda m: m.tool_start),
    ("follow-up − last tool end ms", lambda m: m.followup),
    ("WAV gap ms", lambda m: m.wav_gap),
    ("timeline gap ms", lambda m: m.timeline_gap),
    ("total turn ms", lambda m: m.total),
]


async def run_turn(
    server: ElectronServer,
    policy: FollowUp,
    tool_seconds: float,
    tts: TestTTS,
    block_ms: float,
    wav: Path | None = None,
) -> tuple[TurnTimeline, TestTTS, bytes]:
    """One weather turn on a fresh conversation; its timeline, TTS and recorded samples."""
    clock = SessionClock()
    agent = Agent(
        instructions="You are a friendly voice assistant.",
        tools=[weather_tool(tool_seconds)],
        temperature=0,
    )
    speaker = WavSpeaker(wav, sample_rate=RATE, block_ms=block_ms, origin=clock.origin)
    engine = TurnEngine(
        agent,
        ElectronClient(server.base_url),
        History(agent.instructions),
        Timeline(clock),
        speech=SpeechQueue(tts),
        follow_up=policy,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(speaker.play, engine.speech)
        result = await engine.run(QUESTION)
        tg.cancel_scope.cancel()  # the turn ends once its last sample has played
    return result.timeline, tts, speaker.samples


def first(turn: TurnTimeline, kind: str, **attrs: Any) -> float:
    return times(turn, kind, **attrs)[0]


def times(turn: TurnTimeline, kind: str, **attrs: Any) -> list[float]:
    """t_ms of the turn's events of this kind whose attributes match, in order."""
    found = [
        e.t_ms
        for e in turn.events
        if e.kind == kind and all(e.attrs.get(k) == v for k, v in attrs.items())
    ]
    if not found:
        raise RuntimeError(f"the turn has no {kind} event with {attrs}: {turn.summary()}")
    return found


def wav_gap_ms(pcm: bytes, filler_samples: int, made: int) -> float:
    """Silence between the filler's last sample and the answer's first, in the recording
    (which must hold every sample the TTS made, ``made``, exactly once).

    The filler is the first ``filler_samples`` non-zero samples (the test TTS makes exactly
    that many for its text, and never a zero), the answer everything voiced after them.
    """
    voiced = np.flatnonzero(np.frombuffer(pcm, dtype=np.int16))
    if len(voiced) != made:
        raise RuntimeError(f"the recording holds {len(voiced)} voiced samples; TTS made {made}")
    gap = int(voiced[filler_samples]) - int(voiced[filler_samples - 1]) - 1
    return gap * 1000.0 / RATE


def measure(turn: TurnTimeline, tts: TestTTS, pcm: bytes) -> Measured:
    metrics = turn.metrics()
    # Round 1's segments were opened first, so they are the TTS's first requests.
    made = [round(len(r.text) * MS_PER_CHAR * RATE / 1000.0) for r in tts.records]
    filler_samples = sum(made[: len(times(turn, "tts.request", round=1))])
    first_token = first(turn, "llm.first_token", round=1)
    first_phrase = first(turn, "tts.request", round=1) - first_token
    answer_ready = first(turn, "tts.request", round=2)
    filler_end = times(turn, "audio.end", round=1)[-1]
    return Measured(
        first_audio=metrics["first_audio_ms"],
        tool_start=metrics["tool_start_after_args_ms"],
        followup=metrics["followup_after_tools_ms"],
        wav_gap=wav_gap_ms(pcm, filler_samples, sum(made)),
        timeline_gap=metrics["filler_answer_gap_ms"],
        total=metrics["total_ms"],
        first_audio_bound=first_token + first_phrase + FIRST_BYTE_MS + ENGINE_SLACK_MS,
        gap_bound=max(0.0, answer_ready + FIRST_BYTE_MS - filler_end) + GAP_SLACK_MS,
        block_wait=first(turn, "audio.start") - first(turn, "tts.first_audio"),
    )


# --- the runs ---------------------------------------------------------------------------

Results = dict[tuple[float, str], list[Measured]]


async def bench(
    server: ElectronServer, runs: int, block_ms: float, wav_dir: Path | None
) -> Results:
    results: Results = {(s, p): [] for s in TOOL_SECONDS for p in POLICIES}
    # Warm-up, unpaced and discarded: imports, first-call paths and the connection.
    server.ttft_ms, server.token_ms = 0.0, 0.0
    await run_turn(server, FollowUp.IMMEDIATE, 0.0, TestTTS(RATE, 0.0, 1.0), block_ms)
    server.ttft_ms, server.token_ms = TTFT_MS, TOKEN_MS
    for run in range(1, runs + 1):
        for seconds in TOOL_SECONDS:
            for name, policy in POLICIES.items():  # interleaved: ours, baseline, ours, …
                wav = None
                if wav_dir is not None:
                    wav = wav_dir / f"turn_overlap-{seconds:g}s-{name}-{run}.wav"
                tts = TestTTS(RATE, first_byte_ms=FIRST_BYTE_MS, ms_per_char=MS_PER_CHAR)
                turn, tts, pcm = await run_turn(server, policy, seconds, tts, block_ms, wav)
                results[seconds, name].append(measure(turn, tts, pcm))
                print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return results


# --- the report -------------------------------------------------------------------------


def median(runs: list[Measured], field: Callable[[Measured], float]) -> float:
    return statistics.median(field(m) for m in runs)


def ratio(ours: float, baseline: float) -> str:
    if ours < ZERO_MS:
        return f"{baseline - ours:+.1f} ms"
    return f"{baseline / ours:.2f}×"


def table(seconds: float, ours: list[Measured], baseline: list[Measured]) -> list[str]:
    lines = [f"{f'tool {seconds:g} s':<30} {'ours':>10} {'baseline':>10} {'ratio':>14}"]
    for label, field in ROWS:
        a, b = median(ours, field), median(baseline, field)
        lines.append(f"{label:<30} {a:>10.1f} {b:>10.1f} {ratio(a, b):>14}")
    return lines


Check = tuple[str, Callable[[Measured], float], Callable[[Measured], float]]
CHECKS: list[Check] = [
    ("first audio ≤ TTFT+phrase+byte+5", lambda m: m.first_audio, lambda m: m.first_audio_bound),
    ("tool start − args ready ≤ 5", lambda m: m.tool_start, lambda m: ENGINE_SLACK_MS),
    ("follow-up − last tool end ≤ 5", lambda m: m.followup, lambda m: ENGINE_SLACK_MS),
    ("WAV gap ≤ max(0,ready+byte−end)+20", lambda m: m.wav_gap, lambda m: m.gap_bound),
]
SHORT_TOOL_CHECK: Check = ("WAV gap ≤ 20", lambda m: m.wav_gap, lambda m: GAP_SLACK_MS)


def targets(seconds: float, ours: list[Measured]) -> list[str]:
    """Each target: the median measured, the median bound, PASS/FAIL on those medians, how
    many runs met their own bound, and the worst run's excess over its bound."""
    checks = [*CHECKS, SHORT_TOOL_CHECK] if seconds == TOOL_SECONDS[0] else CHECKS
    lines = []
    for label, value, bound in checks:
        v, b = median(ours, value), median(ours, bound)
        met = sum(value(m) <= bound(m) for m in ours)
        worst = max(value(m) - bound(m) for m in ours)
        verdict = "PASS" if v <= b else "FAIL"
        lines.append(
            f"  {verdict}  {seconds:g} s  {label:<35} {v:>7.1f} ≤ {b:>7.1f} ms  "
            f"{met}/{len(ours)} runs, worst {worst:+.1f}"
        )
    return lines


def report(results: Results, runs: int, block_ms: float) -> str:
    lines = [
        f"weather turn: TTFT {TTFT_MS:g} ms, {TOKEN_MS:g} ms/token, 4 argument fragments; "
        f"TTS first byte {FIRST_BYTE_MS:g} ms,",
        f"{MS_PER_CHAR:g} ms/char; speaker {RATE} Hz in {block_ms:g} ms blocks; "
        f"median of {runs} run(s) per cell, interleaved",
        "ours = follow-up at once (IMMEDIATE); baseline = after the filler played (AFTER_PLAYBACK)",
        "ratio = baseline ÷ ours (the difference when ours is under 1 ms)",
    ]
    for seconds in TOOL_SECONDS:
        lines += ["", *table(seconds, results[seconds, "ours"], results[seconds, "baseline"])]
    lines += [
        "",
        "targets, ours: medians; bounds read from the timeline (TTFT = llm.first_token,",
        "phrase = round-1 tts.request − TTFT, ready = round-2 tts.request, end = the filler's",
        f"last audio.end, byte = the TTS's {FIRST_BYTE_MS:g} ms first byte); k/n runs = runs",
        "within their own bound, worst = the worst run's value − its bound",
    ]
    for seconds in TOOL_SECONDS:
        lines += targets(seconds, results[seconds, "ours"])
    waits = [m.block_wait for runs_ in results.values() for m in runs_]
    lines += [
        "",
        f"first audio includes the wait for the speaker's next {block_ms:g} ms block "
        "(audio.start − tts.first_audio):",
        f"median {statistics.median(waits):.1f} ms, max {max(waits):.1f} ms over all runs",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per cell (median)")
    parser.add_argument("--quick", action="store_true", help="one run per cell (smoke test)")
    parser.add_argument("--wav-dir", type=Path, help="also write each run's recording here")
    parser.add_argument("--block-ms", type=float, default=BLOCK_MS, help="speaker block size")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    if args.wav_dir is not None:
        args.wav_dir.mkdir(parents=True, exist_ok=True)
    # The server runs on its own loop and thread, as a remote one would: the engine's work
    # does not delay its tokens, nor its work the engine.
    with ElectronServer.running_in_thread(script=SCRIPT) as server:
        results = anyio.run(bench, server, runs, args.block_ms, args.wav_dir)
    print(report(results, runs, args.block_ms))


if __name__ == "__main__":
    main()
