"""Soak: N simulated calls at once (default 200) for several minutes against one
``voiceagent phone`` process, each call a few questions with barge-ins (every other question
cuts into the bot's answer); each caller dials again as soon as its call ends.

The layout is ``bench/phone_load.py``'s: the bot on core 0, the fakes and the callers on
core 1. Passes when
- memory is flat after the first minute: the bot's RSS (sampled every 2 s) grows less than
  ``--rss-growth`` (5%) from the first minute's end to the run's end, the slope of a line
  fitted to those samples included;
- no task is left: after every call has ended the bot's event loop holds as many tasks as
  before the first call;
- no error: no ERROR/CRITICAL line or traceback in the bot's log, and no call failed.

Run: ``.venv/bin/python bench/phone_soak.py [--n 200] [--minutes 4] [--turns 4]``; it prints
the RSS series (one sample a minute), the verdict of each check, and exits 1 if one fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import phone_load as load


def slope_mb_per_min(series: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(series) < 2:
        return 0.0
    n = len(series)
    mean_t = sum(t for t, _ in series) / n
    mean_m = sum(m for _, m in series) / n
    var = sum((t - mean_t) ** 2 for t, _ in series)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in series)
    return 60.0 * cov / var if var else 0.0


def verdicts(
    row: load.Row, growth_limit: float, warmup_s: float = 60.0
) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) for each of the soak's three checks."""
    steady = [(t, mb) for t, mb in row.rss_series if t >= warmup_s]
    # while every caller is still dialling: the workers stop placing calls at the deadline
    checks: list[tuple[str, bool, str]] = []
    if len(steady) >= 2:
        first, last = steady[0][1], max(mb for _, mb in steady[-5:])
        growth = last / first - 1
        slope = slope_mb_per_min(steady)
        span_min = (steady[-1][0] - steady[0][0]) / 60
        flat = growth < growth_limit and slope * span_min < growth_limit * first
        checks.append(("memory flat after the warm-up", flat,
                       f"RSS {first:.1f} MB at {steady[0][0]:.0f} s -> {last:.1f} MB at the end "
                       f"({growth:+.1%}); fitted slope {slope:+.2f} MB/min"))  # fmt: skip
    else:
        checks.append(("memory flat after the warm-up", False, "the run was too short"))
    tasks = f"tasks idle {row.tasks_idle} -> after every call {row.tasks_after}"
    checks.append(("no task left after the calls", row.tasks_after == row.tasks_idle, tasks))
    clean = row.calls > 0 and row.failed == 0 and not row.errors
    detail = f"{row.calls} calls, {row.failed} failed"
    checks.append(("no error in the logs, no failed call", clean,
                   "; ".join([detail, *row.errors[:6]])))  # fmt: skip
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="calls at once")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long callers dial")
    parser.add_argument("--turns", type=int, default=4, help="questions per call")
    parser.add_argument("--rss-growth", type=float, default=0.05, help="allowed RSS growth")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="RSS judged after this")
    parser.add_argument("--keep", help="keep logs and records in this folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="phone_soak-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        table, wavs = load.write_utterances(folder)
        options = ["--turns", str(args.turns), "--mode", "barge",
                   "--slot-s", str(args.minutes * 60)]  # fmt: skip
        load.note(f"soak: {args.n} calls at once for {args.minutes:g} min, barge-ins")
        with load.fakes(folder, table, args.n) as f:
            row = load.measure(folder, "ours", args.n, f, wavs, options, rss_every_s=2.0)
    print(f"phone soak: {args.n} calls at once for {args.minutes:g} min, {args.turns} questions "
          "a call with barge-ins; bot on core 0, fakes and callers on core 1")  # fmt: skip
    print(load.HEADER)
    print(load.fmt(row))
    minute = [(t, mb) for t, mb in row.rss_series if t % 60 < 2.0]
    print("bot RSS by minute: " + ", ".join(f"{t:.0f} s {mb:.1f} MB" for t, mb in minute))
    checks = verdicts(row, args.rss_growth, args.warmup_s)
    for name, passed, detail in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")
    return 0 if all(passed for _, passed, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
