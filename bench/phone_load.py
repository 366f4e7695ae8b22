"""How many calls one ``voiceagent phone`` process holds: N simulated Twilio calls at once
(N = 1, 50, 200, 400) against one bot pinned to core 0, each a few turns with a tool.

Everything else runs on core 1 (``taskset -c 1``): the Electron fake (``--concurrency N``, so
the plan limit is not what is measured), the Lightning fake (synthetic voice, no account
limit) and the Pulse fake (``--transcribe table``: it knows the callers' utterances); the bot
hears speech with webrtcvad (no neural VAD, no whisper). The callers (``load_caller.py``: Twilio
Media Streams in real time, lean enough that core 1 can drive 200 calls and the fakes) run in
worker processes on core 1 as well. Baseline in the same run:
``bench/echo_bot.py`` (each inbound frame answered by one outbound frame) on core 0 with the
same callers, audio only.

Per N: the bot's CPU seconds per call-minute (utime+stime from ``/proc``), peak RSS (VmHWM)
and RSS per call (above the idle process), event-loop lag p50/p99 (oversleep of a 10 ms
ticker, ``VOICEAGENT_LOOP_LAG_FILE``), end of caller speech → first bot audio p50/p99 as the
callers heard it (the playback model's clock), late frames (the caller's playback buffer ran
dry in the middle of a segment) and failed calls. The callers' own loop lag is printed too:
above a few ms the caller side (core 1), not the bot, is what limits the figures.
``--silent`` also measures N callers who never speak, ours and the echo bot: what a call's
frames cost alone (both ways, listening, pacing), before any turn. ``--floor`` also measures
the echo bot that hears each call through the Pulse fake (``echo_bot.py --listen``): the least
any bot that listens through a remote STT costs, next to the plain echo.

Run: ``.venv/bin/python bench/phone_load.py [--n 1,50,200,400] [--turns 3] [--silent]
[--floor] [--repeat K] [--quick] [--profile N --profile-out FILE]`` (400 calls take a few
minutes; progress on stderr). ``--repeat K`` measures each N K times and prints the median
ratios: on a shared machine one run's figures move by 10-20 % with the machine's load.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
from load_caller import LoadCaller, first_audio_ms, ulaw_frames
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voiceagent import audio, loop

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
VOICEAGENT = str(Path(PYTHON).with_name("voiceagent"))
AGENT = f"{BENCH / 'phone_load_agent.py'}:agent"
BOT_CORE, OTHER_CORE = "0", "1"
RATE = 8000
BUSY_CLOSE = 1013  # the bot closes a call that starts while --max-calls are up: "try again later"
UTTERANCES = ("what is the weather in paris", "what is the weather in london")
CALLS_PER_WORKER = 100
LAG_ENV = "VOICEAGENT_LOOP_LAG_FILE"


# --- processes --------------------------------------------------------------------------


def pinned(core: str, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", core, *argv]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def first_line(self, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.stdout.read_text() if self.stdout.exists() else ""
            if "\n" in text:
                return text.split("\n", 1)[0].strip()
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} printed no URL: {self.stderr.read_text()[-2000:]}")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextmanager
def spawned(
    name: str, argv: Sequence[str], folder: Path, env: dict[str, str] | None = None
) -> Iterator[Proc]:
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        popen = subprocess.Popen(argv, stdout=o, stderr=e, env=env, cwd=BENCH.parent)
    proc = Proc(name, popen, out, err)
    try:
        yield proc
    finally:
        proc.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def spoken(text: str) -> bytes:
    """PCM16 at 8 kHz of espeak-ng saying ``text`` (what the callers say)."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
    pcm, native = audio.parse_wav(wav)
    resampler = audio.Resampler(native, RATE)
    return resampler.process(pcm) + resampler.flush()


def write_utterances(folder: Path) -> tuple[Path, list[Path]]:
    """The callers' utterances as 8 kHz WAVs and the Pulse fake's ``--table`` of them."""
    wavs = []
    for i, text in enumerate(UTTERANCES):
        wav = folder / f"utterance{i}.wav"
        audio.write_wav(wav, spoken(text), RATE)
        wavs.append(wav)
    table = folder / "table.json"
    entries = [{"wav": str(w), "text": t} for w, t in zip(wavs, UTTERANCES, strict=True)]
    table.write_text(json.dumps(entries))
    return table, wavs


@dataclass
class Fakes:
    llm_url: str
    tts_url: str
    stt_url: str
    pids: tuple[int, ...] = ()


@contextmanager
def fakes(folder: Path, table: Path, concurrency: int) -> Iterator[Fakes]:
    """The three fakes on core 1, each with the limits that would otherwise be measured off."""
    m = [PYTHON, "-m"]
    with ExitStack() as stack:
        llm = stack.enter_context(
            spawned(
                "electron",
                pinned(
                    OTHER_CORE,
                    [
                        *m,
                        "voiceagent.testing.electron",
                        "--port",
                        "0",
                        "--concurrency",
                        str(concurrency),
                        "--quiet",
                    ],
                ),
                folder,
            )
        )
        tts = stack.enter_context(
            spawned(
                "lightning",
                pinned(
                    OTHER_CORE,
                    [
                        *m,
                        "voiceagent.testing.lightning",
                        "--port",
                        "0",
                        "--voice",
                        "synthetic",
                        "--account-limit",
                        "0",
                        "--complete-backoff-ms",
                        "0",
                        "--keep-open",
                        "--quiet",
                    ],
                ),
                folder,
            )
        )
        stt = stack.enter_context(
            spawned(
                "pulse",
                pinned(
                    OTHER_CORE,
                    [
                        *m,
                        "voiceagent.testing.pulse",
                        "--port",
                        "0",
                        "--transcribe",
                        "table",
                        "--table",
                        str(table),
                        "--partial-every-ms",  # partials are a lookup each: the bot needs
                        "60000",  # only finals, and core 1 has 200 callers to drive
                        "--quiet",
                    ],
                ),
                folder,
            )
        )
        yield Fakes(llm.first_line(), tts.first_line(), stt.first_line(),
                    (llm.pid, tts.pid, stt.pid))  # fmt: skip


def bot_argv(
    f: Fakes, loop_name: str, max_calls: int | None = None, stack: str = "websockets"
) -> list[str]:
    limit = ["--max-calls", str(max_calls)] if max_calls else []
    # on picows: the same calls served by bench/phone_picows.py (the frame path alone moved)
    picows = [PYTHON, str(BENCH / "phone_picows.py")]
    phone = [VOICEAGENT, "phone"] if stack == "websockets" else picows
    return pinned(BOT_CORE, [*phone, AGENT, "--port", "0", "--llm-url", f.llm_url,
                             "--tts", "lightning", "--tts-url", f.tts_url, "--stt", "pulse",
                             "--stt-url", f.stt_url, "--drain-s", "5", "--loop", loop_name,
                             *limit])  # fmt: skip


def echo_argv(loop_name: str, stack: str = "websockets", listen: str | None = None) -> list[str]:
    echo = [PYTHON, str(BENCH / "echo_bot.py"), "--loop", loop_name, "--stack", stack]
    return pinned(BOT_CORE, [*echo, "--listen", listen] if listen else echo)


# --- the callers (worker processes on core 1) ----------------------------------------------


@dataclass
class CallResult:
    ok: bool = True
    refused: bool = False  # 503 at the upgrade, or 1013 at the start: at --max-calls
    error: str = ""
    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    media: int = 0
    late: int = 0  # the playback buffer ran dry inside a segment
    underruns: int = 0  # ... at any time after the first audio
    clears: int = 0


async def ours_call(url: str, utterances: list[list[str]], turns: int, barge: bool) -> CallResult:
    """Greeting, then ``turns`` questions each answered (filler, tool, answer) before the
    next; with ``barge`` every other question is cut into by the next one while the bot talks."""
    result = CallResult()
    ends: list[float] = []
    caller = LoadCaller(url)
    heard = caller.heard

    def answered(before: int) -> bool:  # the filler's mark and the answer's, all played
        return heard.marks_played >= before + 2 and not caller.pending_marks

    try:
        async with caller:
            with anyio.fail_after(30):
                await caller.wait_for(lambda: heard.marks_played >= 1)  # the greeting
            turn = 0
            while turn < turns:
                before = heard.marks_played
                ends.append(caller.say(utterances[turn % len(utterances)]))
                if barge and turn % 2 == 0 and turn + 1 < turns:
                    with anyio.fail_after(30):
                        await caller.wait_for(
                            lambda e=ends[-1]: bool(heard.voiced_at) and heard.voiced_at[-1] >= e
                        )
                    await anyio.sleep(0.5)  # into the filler: cut it
                    turn += 1
                    before = heard.marks_played
                    ends.append(caller.say(utterances[turn % len(utterances)]))
                with anyio.fail_after(30):
                    await caller.wait_for(lambda b=before: answered(b))
                await anyio.sleep(0.3)
                turn += 1
            result.duration_s = caller.now()
    except InvalidStatus as error:  # refused: counted apart from the failures
        result.ok, result.refused = False, error.response.status_code == 503
        result.error = "" if result.refused else describe(error)
    except Exception as error:  # a failed call is counted, the run goes on
        # let in at the upgrade, then closed "busy" at its start (1013): refused as well
        result.ok, result.refused = False, closed_busy(error)
        result.error = "" if result.refused else describe(error)
        result.duration_s = caller.now()
    result.latencies_ms = first_audio_ms(heard, ends)
    result.media, result.late, result.underruns = heard.media, heard.late, heard.underruns
    result.clears = heard.clears
    return result


def closed_busy(error: BaseException) -> bool:
    """The bot closed the call "busy" at its start (``error`` or every error it groups)."""
    inner = getattr(error, "exceptions", None)
    if isinstance(inner, tuple) and inner:
        return all(closed_busy(e) for e in inner)
    received = error.rcvd if isinstance(error, ConnectionClosed) else None
    return received is not None and received.code == BUSY_CLOSE


def describe(error: BaseException) -> str:
    """The innermost errors of ``error`` (an ExceptionGroup says only how many it holds), each
    with the line it was raised at."""
    inner = getattr(error, "exceptions", None)  # an ExceptionGroup (3.11+ or the backport)
    if isinstance(inner, tuple) and inner:
        return " | ".join(describe(e) for e in inner)
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
    return f"{type(error).__name__}: {error}{at}"


async def echo_call(url: str, utterances: list[list[str]], call_s: float) -> CallResult:
    """Audio only: an utterance every 5 s for ``call_s``, then hang up. Without utterances,
    a caller who never speaks: the line's frames both ways and nothing else."""
    result = CallResult()
    caller = LoadCaller(url)
    try:
        async with caller:
            for i in range(max(1, int(call_s // 5)) if utterances else 0):
                await anyio.sleep(max(0.0, 1.0 + 5 * i - caller.now()))
                caller.say(utterances[i % len(utterances)])
            await anyio.sleep(max(0.0, call_s - caller.now()))
            result.duration_s = caller.now()
    except Exception as error:
        result.ok, result.error = False, describe(error)
        result.duration_s = caller.now()
    result.media = caller.heard.media
    return result


async def worker(args: argparse.Namespace) -> None:
    pcms = [audio.parse_wav(await anyio.Path(w).read_bytes())[0] for w in args.wav]
    utterances = [ulaw_frames(pcm) for pcm in pcms]
    results: list[CallResult] = []
    lags: list[float] = []
    deadline = time.monotonic() + args.slot_s

    async def slot(i: int) -> None:
        await anyio.sleep(i * args.stagger)
        while True:
            if args.mode == "echo":
                results.append(await echo_call(args.url, utterances, args.call_s))
            elif args.mode == "silent":
                results.append(await echo_call(args.url, [], args.call_s))
            else:
                call = await ours_call(args.url, utterances, args.turns, args.mode == "barge")
                results.append(call)
            if time.monotonic() >= deadline:
                return

    async def ticker() -> None:
        while True:
            before = time.monotonic()
            await anyio.sleep(0.01)
            lags.append((time.monotonic() - before - 0.01) * 1000)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with anyio.create_task_group() as calls:
            for i in range(args.calls):
                calls.start_soon(slot, i)
        tg.cancel_scope.cancel()
    out = {"calls": [asdict(r) for r in results], "lag_ms": [round(x, 2) for x in lags],
           "cpu_s": time.process_time()}  # fmt: skip
    await anyio.Path(args.out).write_text(json.dumps(out))


# --- one measurement --------------------------------------------------------------------


# A run is valid only when the caller side (core 1: callers and fakes) kept up: else it,
# not the bot, shaped the figures, and the run is reported as invalid, not counted.
CALLER_LAG_P99_MAX_MS = 10.0
CALLER_CORE_MAX_PCT = 85.0


@dataclass
class Row:
    label: str
    n: int
    loop: str = "uvloop"
    calls: int = 0
    failed: int = 0
    refused: int = 0  # 503 at the upgrade or 1013 at the start (--max-calls)
    call_min: float = 0.0
    cpu_s: float = 0.0
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    lag_p50: float = math.nan
    lag_p99: float = math.nan
    lag_max: float = math.nan
    lat_p50: float = math.nan
    lat_p99: float = math.nan
    late: int = 0
    underruns: int = 0
    media: int = 0
    caller_lag_p99: float = math.nan
    other_cpu_s: float = 0.0  # the callers' and the fakes' CPU seconds (core 1)
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    tasks_idle: int = 0
    tasks_after: int = -1
    rss_series: list[tuple[float, float]] = field(default_factory=list)

    @property
    def cpu_per_call_min(self) -> float:
        return self.cpu_s / self.call_min if self.call_min else math.nan

    @property
    def core0_pct(self) -> float:  # the bot's share of its core
        return 100 * self.cpu_s / self.wall_s if self.wall_s else math.nan

    @property
    def core1_pct(self) -> float:  # the callers' and fakes' share of theirs
        return 100 * self.other_cpu_s / self.wall_s if self.wall_s else math.nan

    @property
    def invalid(self) -> str:
        """Why the caller side did not keep up ("" when the run is valid)."""
        why = []
        if not self.caller_lag_p99 <= CALLER_LAG_P99_MAX_MS:
            why.append(f"caller lag p99 {self.caller_lag_p99:.1f} ms")
        if not self.core1_pct <= CALLER_CORE_MAX_PCT:
            why.append(f"core 1 at {self.core1_pct:.0f} %")
        return ", ".join(why)

    @property
    def rss_per_call_mb(self) -> float:
        at_once = min(self.n, self.calls) if self.calls else self.n  # refused ones hold nothing
        return (self.peak_rss_mb - self.idle_rss_mb) / at_once if at_once else math.nan


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(q / 100 * len(ordered)))]


def settled_tasks(lag_file: Path, idle: int, timeout_s: float = 30.0) -> int:
    """The bot's task count once it is back to ``idle`` (or after ``timeout_s``): calls the
    callers hung up on end within the bot's own timeouts, not at once."""
    deadline = time.monotonic() + timeout_s
    tasks = -1
    while time.monotonic() < deadline:
        time.sleep(1.0)
        lines = lag_lines(lag_file)
        tasks = lines[-1]["tasks"] if lines else -1
        if tasks == idle:
            break
    return tasks


def lag_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_callers(
    folder: Path, label: str, url: str, n: int, wavs: list[Path], options: list[str],
    bot_pid: int, row: Row, rss_every_s: float = 0.0,
) -> None:  # fmt: skip
    """N callers in ceil(N/100) worker processes on core 1; samples the bot's RSS meanwhile."""
    workers = max(1, math.ceil(n / CALLS_PER_WORKER))
    shares = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    stagger = min(0.05, 10.0 / max(n, 1)) * workers  # all calls placed within ~10 s
    outs = [folder / f"{label}-{n}-w{i}.json" for i in range(workers)]
    with ExitStack() as stack:
        procs = []
        for i, share in enumerate(shares):
            argv = [PYTHON, __file__, "--worker", "--url", url, "--calls", str(share),
                    "--stagger", f"{stagger:.4f}", "--out", str(outs[i]), *options]  # fmt: skip
            for wav in wavs:
                argv += ["--wav", str(wav)]
            procs.append(
                stack.enter_context(spawned(f"{label}-{n}-w{i}", pinned(OTHER_CORE, argv), folder))
            )
        t0 = time.monotonic()
        last_note = t0
        while any(p.popen.poll() is None for p in procs):
            time.sleep(rss_every_s or 1.0)
            now = time.monotonic()
            if rss_every_s:
                row.rss_series.append((round(now - t0, 1), status_kb(bot_pid, "VmRSS") / 1024))
            if now - last_note >= 10:
                last_note = now
                note(f"  {label} N={n}: {now - t0:.0f} s, bot RSS "
                     f"{status_kb(bot_pid, 'VmRSS') / 1024:.0f} MB")  # fmt: skip
        for p in procs:
            if p.popen.returncode != 0:
                row.errors.append(f"{p.name} exited {p.popen.returncode}: "
                                  f"{p.stderr.read_text()[-500:]}")  # fmt: skip
    lat: list[float] = []
    caller_lags: list[float] = []
    errors: Counter[str] = Counter()
    for out in outs:
        if not out.exists():
            continue
        data = json.loads(out.read_text())
        caller_lags += data["lag_ms"]
        row.other_cpu_s += data["cpu_s"]
        for call in data["calls"]:
            if call["refused"]:
                row.refused += 1
                continue
            row.calls += 1
            row.failed += 0 if call["ok"] else 1
            if call["error"]:
                errors[call["error"][:300]] += 1
            row.call_min += call["duration_s"] / 60
            lat += call["latencies_ms"]
            row.late += call["late"]
            row.underruns += call["underruns"]
            row.media += call["media"]
    row.errors += [f"{count}× {error}" for error, count in errors.most_common(5)]
    row.lat_p50, row.lat_p99 = pct(lat, 50), pct(lat, 99)
    row.caller_lag_p99 = pct(caller_lags, 99)


def measure(
    folder: Path, label: str, n: int, f: Fakes | None, wavs: list[Path], options: list[str],
    *, profile_out: Path | None = None, rss_every_s: float = 0.0, max_calls: int | None = None,
    loop_name: str = "uvloop", echo_stack: str = "websockets", listen: str | None = None,
) -> Row:  # fmt: skip
    """One bot (ours, or the echo baseline when ``f`` is None; with ``listen``, the echo that
    also hears each call through that STT) under N callers, on the event loop ``loop_name``."""
    row = Row(label, n, loop_name)
    lag_file = folder / f"{label}-{n}-lag.jsonl"
    # The Lightning fake has no account limit: neither has the bot (else every call's reply
    # queues behind one slot, ~0.8 s a call, and at N=50 the callers time out).
    env = {**os.environ, LAG_ENV: str(lag_file), "LIGHTNING_MAX_CONCURRENT": "0"}
    argv = (
        bot_argv(f, loop_name, max_calls, echo_stack)
        if f is not None
        else echo_argv(loop_name, echo_stack, listen)
    )
    with spawned(f"{label}-{n}-bot", argv, folder, env) as bot:
        url = bot.first_line()
        time.sleep(1.5)  # the ticker's first lines; the process settled
        row.idle_rss_mb = status_kb(bot.pid, "VmRSS") / 1024
        row.tasks_idle = lag_lines(lag_file)[-1]["tasks"] if lag_lines(lag_file) else 0
        cpu0, t0 = cpu_seconds(bot.pid), time.monotonic()
        fakes0 = sum(cpu_seconds(pid) for pid in f.pids) if f is not None else 0.0
        with ExitStack() as stack:
            if profile_out is not None:
                spy = [shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy")), "record",
                       "--pid", str(bot.pid), "--rate", "100", "--format", "raw", "--nonblocking",
                       "--output", str(profile_out), "--duration", "40"]  # fmt: skip
                profiler = stack.enter_context(
                    spawned(f"{label}-{n}-py-spy", pinned(OTHER_CORE, spy), folder)
                )
            run_callers(folder, label, url, n, wavs, options, bot.pid, row, rss_every_s)
            if profile_out is not None and profiler.popen.poll() is None:
                profiler.popen.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT only
                profiler.popen.wait(30)
        t1, row.cpu_s = time.monotonic(), cpu_seconds(bot.pid) - cpu0
        row.wall_s = t1 - t0
        row.other_cpu_s += sum(cpu_seconds(pid) for pid in f.pids) - fakes0 if f else 0.0
        row.peak_rss_mb = status_kb(bot.pid, "VmHWM") / 1024
        if f is not None:  # every call over: the loop back to its idle task count?
            row.tasks_after = settled_tasks(lag_file, row.tasks_idle)
        lags = [x for line in lag_lines(lag_file) if t0 <= line["t"] <= t1 for x in line["lag_ms"]]
        row.lag_p50, row.lag_p99, row.lag_max = pct(lags, 50), pct(lags, 99), max(lags or [0.0])
    log = bot.stderr.read_text()
    bad = [
        ln for ln in log.splitlines() if ln.startswith(("ERROR", "CRITICAL")) or "Traceback" in ln
    ]
    row.errors += [f"bot log: {ln[:160]}" for ln in bad[:5]]
    if bad:
        row.errors.append(f"bot log: {len(bad)} ERROR/Traceback line(s)")
    return row


# --- the table ----------------------------------------------------------------------------

HEADER = (
    f"{'N':>4} {'bot':<5} {'loop':<7} {'calls':>5} {'fail':>4} {'call-min':>8} "
    f"{'CPU s/call-min':>14} "
    f"{'peak RSS MB':>11} {'MB/call':>7} {'lag p50':>7} {'lag p99':>7} {'lag max':>7} "
    f"{'1st audio p50':>13} {'p99':>6} {'late':>5} {'underrun':>8} {'caller lag p99':>14} "
    f"{'core0 %':>7} {'core1 %':>7}  valid"
)


def fmt(row: Row) -> str:
    def num(x: float, spec: str) -> str:
        return "-" if math.isnan(x) else format(x, spec)

    ours = row.label == "ours"
    return (
        f"{row.n:>4} {row.label:<5} {row.loop:<7} {row.calls:>5} {row.failed:>4} "
        f"{row.call_min:>8.1f} "
        f"{num(row.cpu_per_call_min, '.3f'):>14} {row.peak_rss_mb:>11.1f} "
        f"{num(row.rss_per_call_mb, '.2f'):>7} {num(row.lag_p50, '.2f'):>7} "
        f"{num(row.lag_p99, '.2f'):>7} {num(row.lag_max, '.1f'):>7} "
        f"{num(row.lat_p50, '.0f') if ours else '-':>13} "
        f"{num(row.lat_p99, '.0f') if ours else '-':>6} "
        f"{row.late if ours else '-':>5} {row.underruns if ours else '-':>8} "
        f"{num(row.caller_lag_p99, '.1f'):>14} {num(row.core0_pct, '.0f'):>7} "
        f"{num(row.core1_pct, '.0f'):>7}  {'no: ' + row.invalid if row.invalid else 'yes'}"
    )  # fmt: skip


def measure_silent(
    folder: Path, table: Path, wavs: list[Path], n: int, call_s: float, loop_name: str
) -> list[Row]:
    """Ours and the echo bot under N callers who never speak: what every call costs for its
    frames alone (in and out, listening, pacing), before any turn."""
    options = ["--mode", "silent", "--call-s", str(call_s)]
    note(f"N={n}: silent calls, ours ({loop_name})")
    with fakes(folder, table, n) as f:
        ours = measure(folder, "ours-silent", n, f, wavs, options, loop_name=loop_name)
    note(f"N={n}: silent calls, baseline (echo, {loop_name})")
    return [ours, measure(folder, "echo-silent", n, None, wavs, options, loop_name=loop_name)]


def print_silent(rows: list[Row], call_s: float) -> None:
    print(f"silent calls (callers who never speak, {call_s:.0f} s each: the per-frame cost alone)")
    print(f"{'N':>4} {'ours CPU s/call-min':>19} {'echo':>6} {'ours/echo':>9} "
          f"{'ours core0 %':>12} {'echo core0 %':>12} {'fail':>4} {'loop':<7} valid")  # fmt: skip
    for ours, echo in zip(rows[::2], rows[1::2], strict=True):
        ratio = ours.cpu_per_call_min / echo.cpu_per_call_min
        invalid = "; ".join(f"{r.label}: {r.invalid}" for r in (ours, echo) if r.invalid)
        print(f"{ours.n:>4} {ours.cpu_per_call_min:>19.3f} {echo.cpu_per_call_min:>6.3f} "
              f"{ratio:>8.2f}x {ours.core0_pct:>12.0f} {echo.core0_pct:>12.0f} "
              f"{ours.failed + echo.failed:>4} {ours.loop:<7} "
              f"{'no: ' + invalid if invalid else 'yes'}")  # fmt: skip


def measure_stacks(
    folder: Path, table: Path, wavs: list[Path], n: int, call_s: float, loop_name: str,
    turns: int, ours_ws: Row | None,
) -> None:  # fmt: skip
    """The echo bot and ours, each on websockets and on picows (ours: bench/phone_picows.py),
    under the same N silent callers, and ours on picows with turns beside the main table's
    run: what the frame path alone would save with a faster websocket stack."""
    options = ["--mode", "silent", "--call-s", str(call_s)]
    rows: dict[str, Row] = {}
    for stack in ("websockets", "picows"):
        note(f"N={n}: silent calls, echo bot on {stack} ({loop_name})")
        rows[f"echo-{stack}"] = measure(folder, f"echo-{stack}", n, None, wavs, options,
                                        loop_name=loop_name, echo_stack=stack)  # fmt: skip
        note(f"N={n}: silent calls, ours on {stack} ({loop_name})")
        with fakes(folder, table, n) as f:
            rows[f"ours-{stack}"] = measure(folder, f"ours-{stack}", n, f, wavs, options,
                                            loop_name=loop_name, echo_stack=stack)  # fmt: skip
    note(f"N={n}: ours on picows, with turns ({loop_name})")
    with fakes(folder, table, n) as f:
        turned = measure(folder, "ours-picows", n, f, wavs, ["--turns", str(turns)],
                         loop_name=loop_name, echo_stack="picows")  # fmt: skip
    every = [*rows.values(), turned] + ([ours_ws] if ours_ws is not None else [])
    invalid = "; ".join(f"{r.label}: {r.invalid}" for r in every if r.invalid)
    print(f"websocket stacks, N={n} ({loop_name}), CPU s/call-min; silent calls:")
    for who in ("echo", "ours"):
        ws, pw = rows[f"{who}-websockets"], rows[f"{who}-picows"]
        ratio = pw.cpu_per_call_min / ws.cpu_per_call_min
        print(f"  {who:<4} websockets {ws.cpu_per_call_min:.3f}, picows {pw.cpu_per_call_min:.3f}"
              f", picows/websockets {ratio:.2f}x; lag p99 {ws.lag_p99:.2f} / {pw.lag_p99:.2f} "
              f"ms; failed {ws.failed} / {pw.failed}")  # fmt: skip
    for stack in ("websockets", "picows"):
        ours, echo = rows[f"ours-{stack}"], rows[f"echo-{stack}"]
        print(f"  ours/echo on {stack}: {ours.cpu_per_call_min / echo.cpu_per_call_min:.2f}x")
    if ours_ws is not None:
        print(f"with turns: ours on websockets {ours_ws.cpu_per_call_min:.3f} (the table above), "
              f"on picows {turned.cpu_per_call_min:.3f} ({turned.failed} failed, 1st audio "
              f"p50 {turned.lat_p50:.0f} ms), picows/websockets "
              f"{turned.cpu_per_call_min / ours_ws.cpu_per_call_min:.2f}x; ours on picows / "
              f"echo on picows (silent) "
              f"{turned.cpu_per_call_min / rows['echo-picows'].cpu_per_call_min:.2f}x")  # fmt: skip
    print(f"  valid: {'no: ' + invalid if invalid else 'yes'}")


def measure_floor(
    folder: Path, table: Path, wavs: list[Path], n: int, call_s: float, loop_name: str
) -> list[Row]:
    """The echo bot, and the echo bot that also hears each call (``echo_bot.py --listen``:
    μ-law decoded, webrtcvad, 100 ms frames to the Pulse fake), under the same N callers: what
    hearing a caller through a remote STT costs at least, before any turn."""
    options = ["--mode", "echo", "--call-s", str(call_s)]
    note(f"N={n}: floor: echo ({loop_name})")
    echo = measure(folder, "echo", n, None, wavs, options, loop_name=loop_name)
    note(f"N={n}: floor: echo that listens ({loop_name})")
    with fakes(folder, table, n) as f:
        heard = measure(folder, "listen", n, None, wavs, options, loop_name=loop_name,
                        listen=f.stt_url)  # fmt: skip
    return [echo, heard]


def print_floor(rows: list[Row], ours: list[Row]) -> None:
    print("the floor: the echo bot, and the echo bot that also hears each call through the "
          "Pulse fake (decode, webrtcvad, 100 ms frames); ours (with turns) from the table "
          "above, the run before")  # fmt: skip
    print(f"{'N':>4} {'echo':>6} {'listen':>7} {'listen/echo':>11} {'ours':>6} "
          f"{'ours/listen':>11} {'fail':>4} {'loop':<7} valid")  # fmt: skip
    for echo, heard, mine in zip(rows[::2], rows[1::2], ours, strict=True):
        cpu = mine.cpu_per_call_min
        invalid = "; ".join(f"{r.label}: {r.invalid}" for r in (echo, heard) if r.invalid)
        print(f"{echo.n:>4} {echo.cpu_per_call_min:>6.3f} {heard.cpu_per_call_min:>7.3f} "
              f"{heard.cpu_per_call_min / echo.cpu_per_call_min:>10.2f}x {cpu:>6.3f} "
              f"{cpu / heard.cpu_per_call_min:>10.2f}x {echo.failed + heard.failed:>4} "
              f"{echo.loop:<7} {'no: ' + invalid if invalid else 'yes'}")  # fmt: skip


def print_medians(rows: list[Row], floor: list[Row]) -> None:
    """The ratios of repeated runs and their medians: on a shared machine one run's echo
    figure moves by 10-20 % from one minute to the next, so one ratio says little."""
    pairs = list(zip(rows[::2], rows[1::2], strict=True))
    keys = sorted({(ours.n, ours.loop) for ours, _ in pairs})
    for n, loop_name in keys:
        for label, ratios in (
            ("ours/echo", [o.cpu_per_call_min / e.cpu_per_call_min for o, e in pairs
                           if (o.n, o.loop) == (n, loop_name) and not (o.invalid or e.invalid)]),
            ("listen/echo", [h.cpu_per_call_min / e.cpu_per_call_min
                             for e, h in zip(floor[::2], floor[1::2], strict=True)
                             if (e.n, e.loop) == (n, loop_name)
                             and not (e.invalid or h.invalid)]),
        ):  # fmt: skip
            if ratios:
                runs = ", ".join(f"{r:.2f}x" for r in ratios)
                print(f"N={n} {loop_name}: {label} median {statistics.median(ratios):.2f}x of "
                      f"{len(ratios)} valid run(s) ({runs})")  # fmt: skip


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def top_items(raw: Path, limit: int = 15) -> list[str]:
    """py-spy's collapsed stacks → the functions with the most samples on top (self) and
    under them (inclusive), each as a share of all samples."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [fr.split(" (", 1)[0] + " " + fr.rsplit("/", 1)[-1].rstrip(")").split(":")[0]
                  for fr in stack.split(";")]  # fmt: skip
        own[frames[-1]] += count
        for name in set(frames):
            under[name] += count
    lines = [f"{total} samples; self:"]
    lines += [f"  {c / total:6.1%}  {name}" for name, c in own.most_common(limit)]
    lines.append("inclusive (package code):")
    ours = [(name, c) for name, c in under.most_common() if "voiceagent" in name or ".py" in name]
    lines += [f"  {c / total:6.1%}  {name}" for name, c in ours[: limit + 10]]
    return lines


def orchestrate(args: argparse.Namespace) -> int:
    if shutil.which("taskset") is None:
        note("taskset is missing: the bench pins processes to cores")
        return 2
    if args.stacks and importlib.util.find_spec("picows") is None:
        note("--stacks measures the echo bot and ours on picows too: pip install picows")
        return 2
    if args.repeat < 1:
        note(f"--repeat {args.repeat}: at least 1")
        return 2
    ns = (
        [1, 5]
        if args.quick and not args.n
        else [int(x) for x in (args.n or "1,50,200,400").split(",")]
    )
    turns = 1 if args.quick else args.turns
    call_s = 8.0 if args.quick else args.call_s
    rows: list[Row] = []
    silent: list[Row] = []
    floor: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="phone_load-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        table, wavs = write_utterances(folder)
        loops = ["uvloop", "asyncio"] if args.loop == "both" else [args.loop]
        for n in ns:
            for name, rep in itertools.product(loops, range(args.repeat)):
                run = f" run {rep + 1} of {args.repeat}" if args.repeat > 1 else ""
                note(f"N={n}: ours ({name}){run}")
                with fakes(folder, table, n) as f:
                    profile = (
                        Path(args.profile_out)
                        if args.profile == n and args.profile_out and rep == 0
                        else None
                    )
                    ours = measure(folder, "ours", n, f, wavs, ["--turns", str(turns)],
                                   profile_out=profile, max_calls=args.max_calls,
                                   loop_name=name)  # fmt: skip
                rows.append(ours)
                note(f"N={n}: baseline (echo, {name}){run}")
                echo = ["--mode", "echo", "--call-s", str(call_s)]
                rows.append(measure(folder, "echo", n, None, wavs, echo, loop_name=name))
                note(HEADER)
                for row in rows[-2:]:
                    note(fmt(row))
                if args.silent:
                    silent += measure_silent(folder, table, wavs, n, call_s, name)
                if args.floor:
                    floor += measure_floor(folder, table, wavs, n, call_s, name)
        print("phone load: one bot process on core 0; fakes and callers (on uvloop) on core 1")
        print(
            "CPU s/call-min = bot CPU seconds per minute of call; lag = oversleep of a 10 ms "
            "ticker (ms); 1st audio = end of caller speech -> first bot audio heard (ms); "
            "core0 % = the bot's CPU over the run's wall time; core1 % = the callers' and the "
            "fakes' (near 100: the caller side, not the bot, limits the figures)"
        )
        print(HEADER)
        for row in rows:
            print(fmt(row))
        for ours, echo in zip(rows[::2], rows[1::2], strict=True):
            n, pair = ours.n, [ours, echo]
            invalid = "; ".join(f"{r.label}: {r.invalid}" for r in pair if r.invalid)
            if invalid:
                print(f"N={n} {ours.loop}: invalid (the caller side did not keep up: {invalid})"
                      " - not counted")  # fmt: skip
            elif echo.cpu_per_call_min:
                ratio = ours.cpu_per_call_min / echo.cpu_per_call_min
                print(
                    f"N={n} {ours.loop}: ours/echo CPU per call-minute = {ratio:.2f}x; "
                    f"tasks idle {ours.tasks_idle} -> after calls {ours.tasks_after}"
                )
            if pair and args.max_calls:
                offered = pair[0].calls + pair[0].refused
                print(f"N={n}: {pair[0].refused} of {offered} calls refused (503 or 1013) "
                      f"(--max-calls {args.max_calls}); calls, latencies and late frames "
                      "above are the admitted calls'")  # fmt: skip
        if args.repeat > 1:
            print_medians(rows, floor)
        if silent:
            print_silent(silent, call_s)
        if floor:
            print_floor(floor, rows[::2])
        if args.stacks:
            for n in ns:
                first = next((r for r in rows[::2] if r.n == n), None)
                measure_stacks(folder, table, wavs, n, call_s, loops[0], turns, first)
        for row in rows + silent + floor:
            for error in row.errors:
                print(f"N={row.n} {row.label}: {error}")
        if args.profile_out and Path(args.profile_out).exists():
            print(f"profile of the bot at N={args.profile} ({args.profile_out}):")
            print("\n".join(top_items(Path(args.profile_out))))
    return 1 if any(r.calls == 0 for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", help="concurrent calls, comma-separated (1,50,200,400)")
    parser.add_argument("--turns", type=int, default=3, help="questions per call")
    parser.add_argument("--call-s", type=float, default=30.0, help="baseline call length")
    parser.add_argument("--quick", action="store_true", help="smoke test: N=1,5, short calls")
    parser.add_argument("--profile", type=int, help="py-spy the bot at this N")
    parser.add_argument("--profile-out", help="py-spy raw (collapsed stacks) output")
    parser.add_argument("--keep", help="keep logs and records in this folder")
    parser.add_argument(
        "--silent", action="store_true", help="also silent calls per N: the per-frame cost alone"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also per N the echo bot that hears each call through the Pulse fake (the least "
        "any bot that listens through a remote STT costs) next to the plain echo",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each N this many times (ours and echo, and the floor, in turn) and print "
        "the median ratios: one run's figures move with the machine's load",
    )
    parser.add_argument("--max-calls", type=int, help="run our bot with --max-calls M")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio", "both"),
        default="uvloop",
        help="the bots' event loop (ours and the echo baseline alike); both: each N twice",
    )
    parser.add_argument(
        "--stacks",
        action="store_true",
        help="also the echo bot and ours on websockets and on picows per N (ours on picows: "
        "bench/phone_picows.py; pip install picows)",
    )
    worker_opts = parser.add_argument_group("worker (internal)")
    worker_opts.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    worker_opts.add_argument("--url", help=argparse.SUPPRESS)
    worker_opts.add_argument("--calls", type=int, default=1, help=argparse.SUPPRESS)
    worker_opts.add_argument("--stagger", type=float, default=0.0, help=argparse.SUPPRESS)
    worker_opts.add_argument("--out", help=argparse.SUPPRESS)
    worker_opts.add_argument("--wav", action="append", default=[], help=argparse.SUPPRESS)
    worker_opts.add_argument("--mode", default="ours", choices=("ours", "barge", "echo", "silent"),
                             help=argparse.SUPPRESS)  # fmt: skip
    worker_opts.add_argument("--slot-s", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        loop.run(worker, args, loop="uvloop")  # the callers: the leanest loop there is
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
