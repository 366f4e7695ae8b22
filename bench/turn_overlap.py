"""The overlapped follow-up, measured: the weather turn through the real turn engine against
the local Electron-compatible server, ours (``FollowUp.IMMEDIATE``: the follow-up is sent
the moment the tool ends) against the baseline of pipecat and LiveKit
(``FollowUp.AFTER_PLAYBACK``: the follow-up waits until the filler has played).

The model (TTFT 300 ms, 20 ms per token) says "Let me check the weather for you." and calls
``get_weather`` in 4 argument fragments; the tool takes 0.2 s, then 1.5 s; the answer is
"It is 18 degrees and sunny in Paris.". Two voices, each synthesising a phrase only at its
flush, as Lightning does, its first audio 150 ms after it: ``test``, the test TTS at
60 ms of audio per character, and ``lightning``, our Lightning adapter against the Lightning
fake (its synthetic voice, 55 ms per character). (``streaming``, the test TTS voicing each
fragment as it arrives, measures what the bench reported before: first audio from the
first fragment.) First audio is judged against the time the first phrase's last token
reached the engine (``on_text``, on the client: the server is on this machine, so that is
when it left the server but for the local socket and the client's parsing). The speaker is
a real-time paced ``WavSpeaker``: the silence between filler and answer is measured in its
recorded samples (neither voice makes an exact zero, so a run of zeros is silence), next
to the timeline's ``filler_answer_gap_ms``. Both policies run in the same process,
interleaved (ours, baseline, ours, …) so machine noise hits both alike; figures are medians.

Run: ``.venv/bin/python bench/turn_overlap.py [--runs N] [--quick] [--voices test,lightning]
[--wav-dir DIR] [--block-ms MS]`` (the whole default run takes about two minutes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import numpy as np

from voiceagent import ports
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.adapters.wav_speaker import WavSpeaker
from voiceagent.agent import Agent
from voiceagent.history import History
from voiceagent.llm import ElectronClient
from voiceagent.speech import SpeechQueue
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.lightning import LightningServer
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
VOICE_NOTES = {
    "test": f"TestTTS, synthesising at the flush, {MS_PER_CHAR:g} ms/char",
    "lightning": "LightningTTS against the Lightning fake (synthetic voice, 55 ms/char)",
    "streaming": "TestTTS voicing each fragment as it comes (stream_fragments: the old bench)",
}
DEFAULT_VOICES = ("test", "lightning")


def weather_tool(seconds: float) -> Tool[..., Any]:
    @tool
    async def get_weather(city: str) -> dict[str, object]:
        """Current weather for a city."""
        await anyio.sleep(seconds)
        return {"city": city, "temperature_c": 18, "conditions": "sunny"}

    return get_weather


# --- the voices -------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """One TTS request as its voice served it: the text, the samples it made, when its
    flush arrived and when it sent its first audio (``time.monotonic()``)."""

    text: str
    samples: int
    flushed_at: float | None
    first_chunk_at: float | None


class Voice(Protocol):
    def make(self, warm_up: bool) -> ports.TTS:
        """One turn's TTS (``warm_up``: no first-byte delay, and fast)."""
        ...

    def served(self, tts: ports.TTS) -> list[Served]:
        """What ``tts`` served in its turn, in the order the requests began."""
        ...


class TestVoice:
    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, *, stream_fragments: bool) -> None:
        self.stream_fragments = stream_fragments

    def make(self, warm_up: bool) -> TestTTS:
        return TestTTS(
            RATE,
            first_byte_ms=0.0 if warm_up else FIRST_BYTE_MS,
            ms_per_char=1.0 if warm_up else MS_PER_CHAR,
            stream_fragments=self.stream_fragments,
        )

    def served(self, tts: ports.TTS) -> list[Served]:
        assert isinstance(tts, TestTTS)
        per_char = tts.ms_per_char * RATE / 1000.0
        return [
            Served(r.text, round(len(r.text) * per_char), r.flushed_at, r.first_audio_at)
            for r in tts.records
        ]


class LightningVoice:
    """Our Lightning adapter on a fresh socket per turn, against the fake in its thread."""

    def __init__(self, server: LightningServer) -> None:
        self.server = server
        self._first = 0  # the fake's first request of the current turn

    def make(self, warm_up: bool) -> LightningTTS:
        self.server.first_byte_ms = 0.0 if warm_up else FIRST_BYTE_MS
        self._first = len(self.server.requests)
        return LightningTTS(self.server.ws_url, sample_rate=RATE, speed=2.0 if warm_up else 1.0)

    def served(self, tts: ports.TTS) -> list[Served]:
        requests = self.server.requests[self._first :]
        return [
            Served(r.text, r.samples, r.flushed_at, r.first_chunk_at) for r in requests if r.samples
        ]


# --- one turn ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    timeline: TurnTimeline
    served: list[Served]
    pcm: bytes  # the speaker's recording
    text: list[tuple[float, str]]  # each content delta as the engine read it (monotonic)


@dataclass(frozen=True)
class Measured:
    """One turn's figures (ms, t=0 the question's submission); bounds are the targets'
    right-hand sides for this turn."""

    first_audio: float
    last_token: float  # the first phrase's last token reached the engine
    flush: float  # the first phrase's flush reached the TTS − last_token
    first_byte: float  # the TTS sent its first audio − the flush reached it
    tool_start: float  # tool start − args ready
    followup: float  # follow-up request − last tool end
    wav_gap: float  # silence between filler and answer in the recorded samples
    timeline_gap: float  # the timeline's filler_answer_gap_ms
    total: float
    gap_bound: float  # max(0, answer's last token + first byte − filler end) + slack
    block_wait: float  # first audio.start − tts.first_audio: waiting for the next block

    @property
    def after_last_token(self) -> float:
        return self.first_audio - self.last_token

    @property
    def first_audio_bound(self) -> float:
        return self.last_token + FIRST_BYTE_MS + ENGINE_SLACK_MS


ROWS: list[tuple[str, Callable[[Measured], float]]] = [
    ("first audio ms", lambda m: m.first_audio),
    ("first phrase's last token ms", lambda m: m.last_token),
    ("first audio − last token ms", lambda m: m.after_last_token),
    ("TTS flush − last token ms", lambda m: m.flush),
    ("TTS first chunk − flush ms", lambda m: m.first_byte),
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
    voice: Voice,
    block_ms: float,
    wav: Path | None = None,
    *,
    warm_up: bool = False,
) -> Turn:
    """One weather turn on a fresh conversation."""
    clock = SessionClock()
    agent = Agent(
        instructions="You are a friendly voice assistant.",
        tools=[weather_tool(tool_seconds)],
        temperature=0,
    )
    text: list[tuple[float, str]] = []
    speaker = WavSpeaker(wav, sample_rate=RATE, block_ms=block_ms, origin=clock.origin)
    tts = voice.make(warm_up)
    try:
        engine = TurnEngine(
            agent,
            ElectronClient(server.base_url),
            History(agent.instructions),
            Timeline(clock),
            speech=SpeechQueue(tts),
            follow_up=policy,
            on_text=lambda delta: text.append((time.monotonic(), delta)),
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(speaker.play, engine.speech)
            result = await engine.run(QUESTION)
            tg.cancel_scope.cancel()  # the turn ends once its last sample has played
    finally:
        await tts.aclose()
    return Turn(result.timeline, voice.served(tts), speaker.samples, text)


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


def last_token_ms(turn: Turn, round_: int) -> float:
    """When the last character of the round's first spoken phrase reached the engine."""
    timeline = turn.timeline
    start = next(
        e for e in timeline.events if e.kind == "audio.start" and e.attrs["round"] == round_
    )
    # its text as it ended (a voice that streams fragments starts before the phrase is whole)
    end = next(
        e
        for e in timeline.events
        if e.kind == "audio.end" and e.attrs["segment"] == start.attrs["segment"]
    )
    phrase = str(end.attrs["text"])
    content = "".join(delta for _, delta in turn.text)
    skip = 0 if round_ == 1 else len(FILLER)  # round 1's content comes first
    found = content.find(phrase, skip)
    if found < 0:
        raise RuntimeError(f"{phrase!r} is not in the streamed content {content!r}")
    last, arrived = found + len(phrase), 0
    for at, delta in turn.text:
        arrived += len(delta)
        if arrived >= last:
            return ms(timeline, at)
    raise AssertionError("unreachable: the phrase is in the content")


def ms(timeline: TurnTimeline, monotonic: float) -> float:
    """A ``time.monotonic()`` reading as the turn's t_ms."""
    return timeline.clock.ms_at(monotonic) - timeline.start_ms


def wav_gap_ms(pcm: bytes, filler_samples: int, made: int) -> float:
    """Silence between the filler's last sample and the answer's first, in the recording
    (which must hold every sample the TTS made, ``made``, exactly once).

    The filler is the first ``filler_samples`` non-zero samples (the voices make exactly
    that many for its text, and never a zero), the answer everything voiced after them.
    """
    voiced = np.flatnonzero(np.frombuffer(pcm, dtype=np.int16))
    if len(voiced) != made:
        raise RuntimeError(f"the recording holds {len(voiced)} voiced samples; TTS made {made}")
    gap = int(voiced[filler_samples]) - int(voiced[filler_samples - 1]) - 1
    return gap * 1000.0 / RATE


def measure(turn: Turn) -> Measured:
    timeline = turn.timeline
    metrics = timeline.metrics()
    # Round 1's segments were opened first, so they are the TTS's first requests.
    made = [served.samples for served in turn.served]
    filler_samples = sum(made[: len(times(timeline, "tts.request", round=1))])
    last_token = last_token_ms(turn, 1)
    flushed_at, first_chunk_at = turn.served[0].flushed_at, turn.served[0].first_chunk_at
    if flushed_at is None or first_chunk_at is None:
        raise RuntimeError(f"the first phrase was never flushed or voiced: {turn.served[0]}")
    answer_ready = last_token_ms(turn, 2) + FIRST_BYTE_MS
    filler_end = times(timeline, "audio.end", round=1)[-1]
    return Measured(
        first_audio=metrics["first_audio_ms"],
        last_token=last_token,
        flush=ms(timeline, flushed_at) - last_token,
        first_byte=(first_chunk_at - flushed_at) * 1000.0,
        tool_start=metrics["tool_start_after_args_ms"],
        followup=metrics["followup_after_tools_ms"],
        wav_gap=wav_gap_ms(turn.pcm, filler_samples, sum(made)),
        timeline_gap=metrics["filler_answer_gap_ms"],
        total=metrics["total_ms"],
        gap_bound=max(0.0, answer_ready - filler_end) + GAP_SLACK_MS,
        block_wait=first(timeline, "audio.start") - first(timeline, "tts.first_audio"),
    )


# --- the runs ---------------------------------------------------------------------------

Results = dict[tuple[str, float, str], list[Measured]]


async def bench(
    server: ElectronServer,
    voices: dict[str, Voice],
    runs: int,
    block_ms: float,
    wav_dir: Path | None,
) -> Results:
    results: Results = {(v, s, p): [] for v in voices for s in TOOL_SECONDS for p in POLICIES}
    # Warm-up, unpaced and discarded: imports, first-call paths and the connections.
    server.ttft_ms, server.token_ms = 0.0, 0.0
    for voice in voices.values():
        await run_turn(server, FollowUp.IMMEDIATE, 0.0, voice, block_ms, warm_up=True)
    server.ttft_ms, server.token_ms = TTFT_MS, TOKEN_MS
    for run in range(1, runs + 1):
        for voice_name, voice in voices.items():
            for seconds in TOOL_SECONDS:
                for name, policy in POLICIES.items():  # interleaved: ours, baseline, ours, …
                    wav = None
                    if wav_dir is not None:
                        wav = wav_dir / f"turn_overlap-{voice_name}-{seconds:g}s-{name}-{run}.wav"
                    turn = await run_turn(server, policy, seconds, voice, block_ms, wav)
                    results[voice_name, seconds, name].append(measure(turn))
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
    ("first audio ≤ last token+byte+5", lambda m: m.first_audio, lambda m: m.first_audio_bound),
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


def report(results: Results, voices: list[str], runs: int, block_ms: float) -> str:
    lines = [
        f"weather turn: TTFT {TTFT_MS:g} ms, {TOKEN_MS:g} ms/token, 4 argument fragments; "
        f"TTS first byte {FIRST_BYTE_MS:g} ms",
        f"after the flush; speaker {RATE} Hz in {block_ms:g} ms blocks; "
        f"median of {runs} run(s) per cell, interleaved",
        "ours = follow-up at once (IMMEDIATE); baseline = after the filler played (AFTER_PLAYBACK)",
        "ratio = baseline ÷ ours (the difference when ours is under 1 ms); last token = when",
        "the first phrase's last character reached the engine",
    ]
    for voice in voices:
        lines += ["", f"voice {voice}: {VOICE_NOTES[voice]}"]
        for seconds in TOOL_SECONDS:
            ours, baseline = results[voice, seconds, "ours"], results[voice, seconds, "baseline"]
            lines += ["", *table(seconds, ours, baseline)]
    lines += [
        "",
        "targets, ours: medians; bounds read from the timeline (last token as above; ready =",
        "the answer's first phrase's last token, end = the filler's last audio.end, byte = the",
        f"TTS's {FIRST_BYTE_MS:g} ms first byte); k/n runs = runs within their own bound,",
        "worst = the worst run's value − its bound",
    ]
    for voice in voices:
        lines.append(f"voice {voice}:")
        for seconds in TOOL_SECONDS:
            lines += targets(seconds, results[voice, seconds, "ours"])
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
    parser.add_argument(
        "--voices",
        default=",".join(DEFAULT_VOICES),
        help=f"comma-separated, of {', '.join(VOICE_NOTES)} (default: %(default)s)",
    )
    parser.add_argument("--wav-dir", type=Path, help="also write each run's recording here")
    parser.add_argument("--block-ms", type=float, default=BLOCK_MS, help="speaker block size")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    names = [name.strip() for name in args.voices.split(",") if name.strip()]
    unknown = [name for name in names if name not in VOICE_NOTES]
    if unknown or not names:
        parser.error(f"--voices takes {', '.join(VOICE_NOTES)}, not {args.voices!r}")
    if args.wav_dir is not None:
        args.wav_dir.mkdir(parents=True, exist_ok=True)
    # The servers run on their own loops and threads, as remote ones would: the engine's
    # work does not delay their tokens and audio, nor theirs the engine.
    with (
        ElectronServer.running_in_thread(script=SCRIPT) as server,
        LightningServer.running_in_thread(voice="synthetic") as lightning,
    ):
        voices: dict[str, Voice] = {
            "test": TestVoice(stream_fragments=False),
            "lightning": LightningVoice(lightning),
            "streaming": TestVoice(stream_fragments=True),
        }
        chosen = {name: voices[name] for name in names}
        results = anyio.run(bench, server, chosen, runs, args.block_ms, args.wav_dir)
    print(report(results, names, runs, args.block_ms))


if __name__ == "__main__":
    main()
