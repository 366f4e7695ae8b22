"""The turn-overlap benchmark runs end to end and prints its tables and target verdicts
(figures are not asserted: they are wall-clock timings on a shared machine; only the
orderings a flush-realistic voice guarantees are)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "turn_overlap.py"
VOICES = ("test", "lightning")  # the default: both synthesise at the flush
ROWS = (
    "first audio ms",
    "first phrase's last token ms",
    "first audio − last token ms",
    "TTS flush − last token ms",
    "TTS first chunk − flush ms",
    "tool start − args ready ms",
    "follow-up − last tool end ms",
    "WAV gap ms",
    "timeline gap ms",
    "total turn ms",
)


def figures(out: str, row: str) -> list[tuple[float, float]]:
    """(ours, baseline) of every table's ``row``, in the order printed (the label takes 30
    columns; the ratio after them is one word or two)."""
    cells = [line[30:].split() for line in out.splitlines() if line.startswith(row)]
    return [(float(ours), float(baseline)) for ours, baseline, *_ratio in cells]


def test_the_quick_benchmark_prints_every_voice_both_tables_and_every_target() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("voice ")] == [
        *(f"voice {voice}" for voice in VOICES),  # the tables
        *(f"voice {voice}" for voice in VOICES),  # the targets
    ]
    for header in ("tool 0.2 s", "tool 1.5 s"):
        tables = [line for line in lines if line.startswith(header) and "ours" in line]
        assert len(tables) == len(VOICES)
    for row in ROWS:
        assert len(figures(out, row)) == 2 * len(VOICES), row
    # A voice that synthesises at the flush: the phrase is flushed after its last token
    # reached the engine, and its first audio comes after that.
    for ours, baseline in figures(out, "TTS flush − last token ms"):
        assert ours >= 0 and baseline >= 0
    for ours, baseline in figures(out, "first audio − last token ms"):
        assert ours > 0 and baseline > 0
    verdicts = [line.split()[0] for line in lines if line.strip()[:4] in {"PASS", "FAIL"}]
    assert len(verdicts) == 9 * len(VOICES)
    assert set(verdicts) <= {"PASS", "FAIL"}
    assert max(len(line) for line in lines) <= 100
