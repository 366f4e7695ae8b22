"""The phone load bench runs end to end in its smoke mode (no timing asserts)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "phone_load.py"


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (the callers)")
def test_quick_run_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--n", "3", "--silent", "--floor",
         "--max-calls", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "CPU s/call-min" in done.stdout
    assert "ours" in done.stdout and "echo" in done.stdout
    silent = done.stdout.split("silent calls (")[1].splitlines()
    n, ours, echo, _ratio, _core0, _echo0, failed, loop, *_valid = silent[2].split()
    assert n == "3" and float(ours) > 0 and float(echo) > 0 and failed == "0", silent
    assert loop == "uvloop", silent  # the bots' loop by default
    # the floor: the echo bot, and the one that also hears each call through the Pulse fake
    floor = done.stdout.split("the floor: ")[1].splitlines()
    n, echo, heard, _ratio, ours, _ours_ratio, failed, loop, *_valid = floor[2].split()
    assert n == "3" and float(heard) > 0 and float(echo) > 0 and failed == "0", floor
    assert float(ours) > 0, floor
    # each run says whether the caller side kept up (then its ratio is counted)
    assert "valid" in done.stdout and (
        "ours/echo CPU per call-minute" in done.stdout
        or "invalid (the caller side did not keep up" in done.stdout
    )
    # three callers dial within 0.1 s of each other; the bot takes two at once
    assert "N=3: 1 of 3 calls refused (503 or 1013) (--max-calls 2)" in done.stdout, done.stdout


SOAK = BENCH.with_name("phone_soak.py")


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (the callers)")
def test_short_soak_ends_every_task_and_logs_no_error() -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--n", "3", "--minutes", "0.4", "--turns", "2",
         "--warmup-s", "8"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = done.stdout
    assert "memory flat after the warm-up" in out, done.stderr[-2000:]
    assert "PASS  no task left after the calls" in out, out
    assert "PASS  no error in the logs, no failed call" in out, out


def test_repeated_runs_print_the_median_of_the_valid_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sys.path.insert(0, str(BENCH.parent))  # the bench's own modules (load_caller)
    try:
        import phone_load
    finally:
        sys.path.remove(str(BENCH.parent))

    def row(label: str, cpu_s: float, caller_lag_ms: float = 1.0) -> phone_load.Row:
        r = phone_load.Row(label, 50, "uvloop")
        r.call_min, r.cpu_s, r.wall_s, r.caller_lag_p99 = 10.0, cpu_s, 60.0, caller_lag_ms
        return r

    # three runs of ours and the echo; the second's callers fell behind: not counted
    rows = [row("ours", 6.0), row("echo", 3.0), row("ours", 9.0, 30.0), row("echo", 3.0),
            row("ours", 8.0), row("echo", 2.0)]  # fmt: skip
    floor = [row("echo", 2.0), row("listen", 3.0), row("echo", 2.0), row("listen", 2.8),
             row("echo", 2.0), row("listen", 3.4)]  # fmt: skip
    phone_load.print_medians(rows, floor)
    out = capsys.readouterr().out
    assert "N=50 uvloop: ours/echo median 3.00x of 2 valid run(s) (2.00x, 4.00x)" in out
    assert "N=50 uvloop: listen/echo median 1.50x of 3 valid run(s) (1.50x, 1.40x, 1.70x)" in out
