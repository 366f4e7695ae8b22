"""Whole sessions, measured. From the issue (quoted to the letter):

    With the WAV transports on the offline stack and on the local fakes: end of user speech
    → first agent audio (p50/p90 over 10 turns), broken down by VAD hangover, STT, LLM, TTS
    and our own code; barge-in: user speech onset → output silent, for our code alone.

Each stack runs real ``Session``s over ``WavTransport`` at real time: the caller is a WAV of
espeak-ng questions the Electron simulator answers (arithmetic, time, weather through a
tool), with room for each answer; the agent is recorded by the real-time ``WavSpeaker``.
(a) offline: WebRTC VAD + Whisper tiny.en + the simulator + piper; (b) local fakes: PulseSTT
against ``PulseServer(transcribe="table")`` (every question's audio in its table; its own VAD
events, no local VAD) + the simulator + LightningTTS against ``LightningServer(voice=
"synthetic")``. The fakes run in their own threads, as remote servers would.

Per turn, on the session clock: the contract's first audio (``user.speech_end`` →
``audio.start``) and, from the true end of speech (known from the WAV layout) to the first
audio, its parts: VAD hangover (true end → the VAD's SpeechEnded reaches the session), STT
(finalize → ``stt.final``), LLM (``llm.request`` → the first phrase's ``tts.request``), TTS
(``tts.request`` → ``tts.first_audio``) and ours, the rest. Barge-in: a second question
asked while the agent answers a long one; ours = the VAD's SpeechStarted reaches the session
→ the recording's first silent block; the VAD's own onset delay is shown apart.

Run: ``.venv/bin/python bench/session.py [--runs N] [--quick] [--wav-dir DIR]`` (the default
run takes about six minutes: every conversation plays at real time).

``--sessions 1,50`` measures instead N sessions of the fakes stack at once, each the README's
``Session`` over its own ``WavTransport``, all on one ``ElectronClient`` pointed at the
simulator (127.0.0.1: not Electron's host, so no plan limit unless asked), with the issue's
pace (TTFT 300 ms, 20 ms/token) and no TTS account limit: first audio p50/p95 per N, the
turn's total, and the requests that waited for a concurrency slot (``llm.slot``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np
from forked import forked
from session_stacks import (
    END_OF_TURN_MS,
    HANGOVER_MS,
    IN_RATE,
    OFFLINE_EXTRA,
    OUT_RATE,
    TOOL_S,
    Conversation,
    Recording,
    Stack,
    converse,
    fakes_stack,
    have_offline_stack,
    offline_stack,
)

from voiceagent import loop
from voiceagent.llm import ElectronClient
from voiceagent.session_events import BargeIn, TurnEnded
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.lightning import LightningServer
from voiceagent.testing.pulse import PulseServer
from voiceagent.timeline import TurnTimeline

QUESTIONS = [
    "what is twelve times seven",
    "what time is it",
    "what is the weather in Paris",
    "what is fifteen plus twenty seven",
    "what is the weather in London",
    "what is ninety minus thirty",
    "what time is it now",
    "what is the weather in Tokyo",
    "what is eight times nine",
    "what is the temperature in Berlin",
]
LONG_QUESTION = "what is the weather in Paris and London"  # filler + two sentences
INTERRUPTION = "what time is it"
GAP_S = 7.5  # from a question's end to the next question: room for the whole answer
BARGE_AFTER_S = 3.5  # from the long question's end to the interruption: mid-answer
BARGE_INS = 6
BLOCK_MS = 20.0  # WavSpeaker's block
SILENT_BLOCKS = 10  # the output counts as silent from a run of this many all-zero blocks


def conversation(questions: int) -> Conversation:
    talk = Conversation()
    for text in (QUESTIONS * 2)[:questions]:
        talk.say(text, 0.5 if not talk.lines else GAP_S)
    return talk


def barge_conversation(barge_ins: int) -> Conversation:
    talk = Conversation()
    for _ in range(barge_ins):
        talk.say(LONG_QUESTION, 0.5 if not talk.lines else GAP_S)
        talk.say(INTERRUPTION, BARGE_AFTER_S)
    return talk


# --- the figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnFigures:
    """One turn, ms. The parts after ``true_end`` add up to it exactly."""

    first_audio: float  # user.speech_end → audio.start (the timeline's first_audio_ms)
    true_end: float  # true end of speech → audio.start
    hangover: float  # true end → SpeechEnded reaches the session
    stt: float  # finalize → stt.final
    llm: float  # llm.request → the first phrase's tts.request
    tts: float  # tts.request → tts.first_audio
    ours: float  # the rest: the three below
    end_wait: float  # SpeechEnded → finalize (the end-of-turn wait)
    hand_off: float  # stt.final → llm.request
    block_wait: float  # tts.first_audio → audio.start (the speaker's next block)
    dating: float  # user.speech_end − true end: where the VAD dates the end


@dataclass(frozen=True)
class BargeFigures:
    ours: float  # SpeechStarted reaches the session → the output's first silent block
    to_interrupt: float  # SpeechStarted reaches the session → session.interrupt()
    vad_onset: float  # true onset → SpeechStarted reaches the session (not ours)


def at(turn: TurnTimeline, kind: str, **attrs: object) -> float:
    """Session ms of the turn's first ``kind`` event whose attributes match."""
    for event in turn.events:
        if event.kind == kind and all(event.attrs.get(k) == v for k, v in attrs.items()):
            return turn.start_ms + event.t_ms
    raise LookupError(kind)


def after(stamps: list[float], ms: float) -> float:
    return next(s for s in stamps if s >= ms)


def turn_figures(rec: Recording) -> list[TurnFigures]:
    turns = [e.result.timeline for e in rec.events if isinstance(e, TurnEnded)]
    turns = [t for t in turns if t.trigger == "user" and t.metrics()["first_audio_ms"] is not None]
    found = []
    for line in rec.talk.lines:
        end = line.end_ms
        mine = [t for t in turns if abs(at(t, "user.speech_end") - end) < 500]
        if not mine:
            continue  # not answered (or not heard as one turn): counted as missing
        turn = mine[0]
        heard, final = after(rec.stamps.ended, end), at(turn, "stt.final")
        finalize = after(rec.stamps.finalized, heard)
        request = at(turn, "llm.request", round=1)
        phrase = at(turn, "tts.request")
        segment = next(e.attrs["segment"] for e in turn.events if e.kind == "tts.request")
        first_audio, start = at(turn, "tts.first_audio", segment=segment), at(turn, "audio.start")
        parts = (heard - end, final - finalize, phrase - request, first_audio - phrase)
        found.append(
            TurnFigures(
                first_audio=turn.metrics()["first_audio_ms"],
                true_end=start - end,
                hangover=parts[0],
                stt=parts[1],
                llm=parts[2],
                tts=parts[3],
                ours=start - end - sum(parts),
                end_wait=finalize - heard,
                hand_off=request - final,
                block_wait=start - first_audio,
                dating=at(turn, "user.speech_end") - end,
            )
        )
    return found


def silent_from(pcm: bytes, at_ms: float) -> float | None:
    """Where the recording falls silent for good after ``at_ms`` (the start of the first of
    ``SILENT_BLOCKS`` all-zero blocks), or None if the agent was not audible just before."""
    samples = np.frombuffer(pcm, np.int16)
    block = round(BLOCK_MS * OUT_RATE / 1000)
    k = int(at_ms * OUT_RATE / 1000) // block
    if k < 1 or not samples[(k - 1) * block : k * block].any():
        return None
    for j in range(k, len(samples) // block - SILENT_BLOCKS):
        if not samples[j * block : (j + SILENT_BLOCKS) * block].any():
            return 1000.0 * j * block / OUT_RATE
    return None


def barge_figures(rec: Recording) -> list[BargeFigures]:
    found = []
    onsets = [line.onset_ms for line in rec.talk.lines if line.text == INTERRUPTION]
    for barge in (e for e in rec.events if isinstance(e, BargeIn)):
        heard = max(s for s in rec.stamps.started if s <= barge.at_ms)
        onset = max((o for o in onsets if o <= heard), default=None)
        silent = silent_from(rec.pcm, barge.at_ms)
        if onset is None or silent is None:
            continue  # not a planned interruption, or nothing audible was cut
        found.append(
            BargeFigures(max(silent, barge.at_ms) - heard, barge.at_ms - heard, heard - onset)
        )
    return found


# --- the runs ----------------------------------------------------------------------------


@dataclass
class Results:
    stack: Stack
    turns: list[TurnFigures] = field(default_factory=list)
    barges: list[BargeFigures] = field(default_factory=list)
    asked: int = 0  # questions asked, of which len(turns) were measured
    interruptions: int = 0  # of which len(barges) cut audible speech
    unplanned: int = 0  # barge-ins in the plain conversations (a question cut an answer)
    late_blocks: int = 0  # the speaker's blocks written over a block late (the loop lagged)


@dataclass(frozen=True)
class Plan:
    talk: Conversation
    wav: Path
    barge: bool  # a barge-in conversation (else plain questions)


async def bench(
    plans: list[Plan],
    runs: int,
    offline: bool,
    urls: tuple[str, str, str],  # Electron, Pulse, Lightning
    verbose: bool,
) -> list[Results]:
    llm_url, pulse_url, tts_url = urls
    async with contextlib.AsyncExitStack() as resources:
        stacks = [await resources.enter_async_context(offline_stack())] if offline else []
        stacks.append(await resources.enter_async_context(fakes_stack(pulse_url, tts_url)))
        results = [Results(s) for s in stacks]
        for _ in range(runs):
            for plan in plans:  # interleaved: each conversation on each stack in turn
                for result in results:
                    rec = await converse(result.stack, plan.talk, plan.wav, llm_url)
                    barges = barge_figures(rec) if plan.barge else []
                    turns = [] if plan.barge else turn_figures(rec)
                    if plan.barge:
                        result.interruptions += len(plan.talk.lines) // 2
                    else:
                        result.asked += len(plan.talk.lines)
                        result.unplanned += sum(isinstance(e, BargeIn) for e in rec.events)
                    result.late_blocks += rec.late_blocks
                    result.barges += barges
                    result.turns += turns
                    for figures in [*turns, *barges] if verbose else []:
                        print(f"\n{result.stack.name}: {figures}", file=sys.stderr)
    print(file=sys.stderr)
    return results


# --- the report --------------------------------------------------------------------------

TURN_ROWS = [
    ("first_audio", "user.speech_end → audio.start (first_audio_ms)"),
    ("true_end", "true end of speech (WAV) → audio.start"),
    ("hangover", "  VAD hangover: true end → SpeechEnded reaches us"),
    ("stt", "  STT: finalize → stt.final"),
    ("llm", "  LLM: llm.request → first phrase's tts.request"),
    ("tts", "  TTS: tts.request → tts.first_audio"),
    ("ours", "  ours: the rest"),
    ("end_wait", "    SpeechEnded → finalize (end-of-turn wait)"),
    ("hand_off", "    stt.final → llm.request"),
    ("block_wait", "    tts.first_audio → audio.start (next block)"),
    ("dating", "user.speech_end − true end (the VAD's dating)"),
]
BARGE_ROWS = [
    ("ours", "ours: SpeechStarted reaches us → output silent"),
    ("to_interrupt", "  of which SpeechStarted → session.interrupt()"),
    ("vad_onset", "not ours: true onset (WAV) → SpeechStarted"),
]
WIDTH = 58


def row(label: str, values: list[float]) -> str:
    p50, p90 = np.percentile(values, [50, 90]) if values else (float("nan"),) * 2
    return f"{label:<{WIDTH}} {p50:>9.1f} {p90:>9.1f}"


def table(result: Results) -> list[str]:
    turns, barges = result.turns, result.barges
    lines = [result.stack.label]
    if result.unplanned or result.late_blocks:
        lines.append(
            f"  ({result.unplanned} answer(s) cut by the next question; the speaker wrote "
            f"{result.late_blocks} block(s) late)"
        )
    lines.append(
        f"{f'end of speech → first audio, {len(turns)}/{result.asked} turns':<{WIDTH}}"
        f" {'p50':>9} {'p90':>9}"
    )
    lines += [row(label, [getattr(t, name) for t in turns]) for name, label in TURN_ROWS]
    lines.append(
        f"{f'barge-in, {len(barges)}/{result.interruptions} cut the agent mid-speech':<{WIDTH}}"
        f" {'p50':>9} {'p90':>9}"
    )
    lines += [row(label, [getattr(b, name) for b in barges]) for name, label in BARGE_ROWS]
    return lines


def report(results: list[Results], runs: int) -> str:
    lines = [
        f"sessions over WavTransport at real time: {IN_RATE} Hz in, {OUT_RATE} Hz out in "
        f"{BLOCK_MS:g} ms blocks; {runs} run(s),",
        "stacks interleaved; Electron simulator instant (TTFT 0, 0 ms/token); "
        f"weather tool {TOOL_S:g} s;",
        f"VAD hangover {HANGOVER_MS} ms (Pulse: eou_timeout_ms); end_of_turn_ms "
        f"{END_OF_TURN_MS:g}; percentiles interpolated.",
        "Parts are per-turn differences of stamps on the session clock; their p50s need not add",
        "up to the total's p50 (per turn they do: true end → audio.start = hangover + STT + LLM",
        "+ TTS + ours). Barge-in: ours ends at the recording's first silent block.",
    ]
    for result in results:
        lines += ["", *table(result)]
    return "\n".join([*lines, "", *NOTES])


NOTES = [
    "Notes. Both stacks' VADs are webrtcvad: it dates the end of speech ~0.1 s after the last",
    "voiced sample (the dating row), and SpeechEnded comes the hangover after that date.",
    "WavTransport hands each 20 ms input frame over at its first sample's time, a frame before",
    "a microphone could; the session dates input as if it came at its last sample, so",
    "user.speech_end and the turn's t=0 sit ~20 ms early: first_audio_ms reads ~20 ms high, the",
    "hangover and the VAD's onset delay ~20 ms low (left as measured). Offline, input frames",
    "and output blocks share one 20 ms grid: the block after a barge-in is often due that very",
    "instant, so ours is 0 or ~20 ms by which task the loop wakes first. A block read after its",
    "due time still sits at its due position: tts.first_audio → audio.start goes negative when",
    "the loop was busy (piper resamples each phrase on it, ~7 ms).",
]


# --- many sessions at once (--sessions) ---------------------------------------------------

CROWD_TTFT_MS, CROWD_TOKEN_MS = 300.0, 20.0  # the pace


@dataclass
class Crowd:
    sessions: int
    asked: int = 0  # user questions asked over all sessions
    first_audio: list[float] = field(default_factory=list)  # first_audio_ms, answered turns
    total: list[float] = field(default_factory=list)  # the turns' total_ms
    waits: list[float] = field(default_factory=list)  # waited_ms of requests that queued
    requests: int = 0  # llm.request events
    peak_in_flight: int = 0  # the simulator's peak of requests in flight
    late_blocks: int = 0


async def crowd(
    n: int, talk: Conversation, wav: Path, urls: tuple[str, str, str], stagger_s: float
) -> Crowd:
    """N sessions at once on one ElectronClient, session i starting ``i * stagger_s / n``
    seconds after the first."""
    llm_url, pulse_url, tts_url = urls
    result = Crowd(n, asked=n * len(talk.lines))
    async with fakes_stack(pulse_url, tts_url, tts_concurrency=0) as stack:
        llm = ElectronClient(llm_url)  # as in the README: one client, no plan given
        recordings: list[Recording] = []

        async def one(index: int) -> None:
            await anyio.sleep(index * stagger_s / n)
            rec = await converse(
                stack, talk, wav, llm_url, llm=llm, tag=f"-{index}", progress=False
            )
            recordings.append(rec)

        async with anyio.create_task_group() as tg:
            for index in range(n):
                tg.start_soon(one, index)
    for rec in recordings:
        result.late_blocks += rec.late_blocks
        for event in rec.events:
            if not isinstance(event, TurnEnded) or event.result.timeline.trigger != "user":
                continue
            turn = event.result.timeline
            metrics = turn.metrics()
            if metrics["first_audio_ms"] is not None:
                result.first_audio.append(metrics["first_audio_ms"])
                result.total.append(metrics["total_ms"])
            for e in turn.events:
                result.requests += e.kind == "llm.request"
                if e.kind == "llm.slot":  # a request that waited for a concurrency slot
                    result.waits.append(float(e.attrs["waited_ms"]))
    return result


def crowd_report(crowds: list[Crowd]) -> str:
    def pct(values: list[float], q: float) -> str:
        return f"{np.percentile(values, q):.1f}" if values else "-"

    lines = [
        f"N sessions at once (fakes stack, WavTransport at real time), one ElectronClient at "
        f"the simulator (127.0.0.1), TTFT {CROWD_TTFT_MS:g} ms, {CROWD_TOKEN_MS:g} ms/token,",
        "no TTS account limit; first audio = user.speech_end → audio.start; ms, interpolated.",
        f"{'N':>4} {'answered':>9} {'first p50':>10} {'first p95':>10} {'turn p50':>9} "
        f"{'turn p95':>9} {'queued':>11} {'wait p95':>9} {'peak':>5} {'late':>5}",
    ]
    for c in crowds:
        queued = f"{len(c.waits)}/{c.requests}"
        lines.append(
            f"{c.sessions:>4} {f'{len(c.first_audio)}/{c.asked}':>9} "
            f"{pct(c.first_audio, 50):>10} {pct(c.first_audio, 95):>10} "
            f"{pct(c.total, 50):>9} {pct(c.total, 95):>9} {queued:>11} "
            f"{pct(c.waits, 95):>9} {c.peak_in_flight:>5} {c.late_blocks:>5}"
        )
    lines.append(
        "queued: requests that waited for a concurrency slot (llm.slot's waited_ms); peak:"
    )
    lines.append("the simulator's most requests in flight; late: speaker blocks written late.")
    return "\n".join(lines)


def run_crowds(args: argparse.Namespace, questions: int) -> None:
    with contextlib.ExitStack() as resources:
        folder = args.wav_dir or Path(resources.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        talk = conversation(questions)
        wav = talk.write(folder / "questions.wav", GAP_S)

        def learn(pulse: PulseServer) -> None:
            for line in talk.lines:
                pulse.table.add(line.pcm, line.text, IN_RATE)

        # each fake in a process of its own, as remote servers are (see bench/forked.py)
        electron = resources.enter_context(
            forked(
                lambda: ElectronServer.running_in_thread(
                    ttft_ms=CROWD_TTFT_MS, token_ms=CROWD_TOKEN_MS
                )
            )
        )
        pulse = resources.enter_context(
            forked(lambda: PulseServer.running_in_thread(transcribe="table"), learn)
        )
        lightning = resources.enter_context(
            forked(lambda: LightningServer.running_in_thread(voice="synthetic", account_limit=0))
        )
        urls = (electron.get("base_url"), pulse.get("url"), lightning.get("ws_url"))
        crowds = []
        for n in args.sessions:
            print(f"{n} session(s)…", file=sys.stderr, flush=True)
            electron.set("max_in_flight", 0)
            crowds.append(loop.run(crowd, n, talk, wav, urls, args.stagger_s, loop=args.loop))
            crowds[-1].peak_in_flight = electron.get("max_in_flight")
    print(crowd_report(crowds))


def sessions_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a list of session counts >= 1, e.g. 1,50")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="conversations per stack and kind")
    parser.add_argument("--quick", action="store_true", help="3 questions, 1 barge-in (smoke)")
    parser.add_argument("--wav-dir", type=Path, help="keep the conversations and recordings here")
    parser.add_argument("--verbose", action="store_true", help="each turn's figures to stderr")
    parser.add_argument(
        "--sessions",
        type=sessions_list,
        metavar="N[,N…]",
        help="instead: N sessions at once on one ElectronClient (fakes stack), e.g. 1,50",
    )
    parser.add_argument(
        "--loop",
        choices=loop.LOOPS,
        default="asyncio",
        help="with --sessions: the event loop (default asyncio, as README's anyio.run(main))",
    )
    parser.add_argument(
        "--stagger-s",
        type=float,
        default=0.0,
        metavar="S",
        help="with --sessions: spread the sessions' starts evenly over S seconds (default 0: "
        "all ask at the same instant)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    questions, barge_ins = (3, 1) if args.quick else (len(QUESTIONS), BARGE_INS)
    if args.sessions:
        run_crowds(args, questions)
        return
    offline = have_offline_stack()
    with contextlib.ExitStack() as resources:
        folder = args.wav_dir or Path(resources.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        plans = [
            Plan(talk, talk.write(folder / f"{name}.wav", GAP_S), name == "barge")
            for name, talk in [
                ("questions", conversation(questions)),
                ("barge", barge_conversation(barge_ins)),
            ]
        ]
        # The fakes run on their own loops and threads, as remote servers would.
        electron = resources.enter_context(ElectronServer.running_in_thread())
        pulse = resources.enter_context(PulseServer.running_in_thread(transcribe="table"))
        for text, pcm in {line.text: line.pcm for p in plans for line in p.talk.lines}.items():
            pulse.table.add(pcm, text, IN_RATE)
        lightning = resources.enter_context(LightningServer.running_in_thread(voice="synthetic"))
        urls = (electron.base_url, pulse.url, lightning.ws_url)
        results = anyio.run(bench, plans, args.runs, offline, urls, args.verbose)
    if not offline:
        print(f"(the offline stack was skipped: it needs {OFFLINE_EXTRA})")
    print(report(results, args.runs))


if __name__ == "__main__":
    main()
