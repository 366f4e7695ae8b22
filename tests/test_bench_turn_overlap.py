"""The turn-overlap benchmark runs end to end and prints its tables and target verdicts
(figures are not asserted: they are wall-clock timings on a shared machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "turn_overlap.py"


def test_the_quick_benchmark_prints_both_tables_and_every_target() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for header in ("tool 0.2 s", "tool 1.5 s"):
        assert any(line.startswith(header) and "ours" in line for line in out.splitlines())
    for row in (
        "first audio ms",
        "tool start − args ready ms",
        "follow-up − last tool end ms",
        "WAV gap ms",
        "timeline gap ms",
        "total turn ms",
    ):
        assert out.count(row) == 2, row
    verdicts = [
        line.split()[0] for line in out.splitlines() if line.strip()[:4] in {"PASS", "FAIL"}
    ]
    assert len(verdicts) == 9
    assert set(verdicts) <= {"PASS", "FAIL"}
    assert max(len(line) for line in out.splitlines()) <= 100
