"""The session benchmark runs end to end on both stacks and prints its tables (figures are
not asserted: they are wall-clock timings of real-time sessions on a shared machine)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "session.py"
OFFLINE = ("faster_whisper", "webrtcvad", "piper")


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in OFFLINE)
    or shutil.which("espeak-ng") is None,
    reason="needs the offline extra (pip install 'voiceagent[offline]') and espeak-ng",
)
def test_the_quick_session_benchmark_prints_both_stacks_tables() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for header in ("offline: WebRTC VAD + Whisper tiny.en", "local fakes: PulseSTT"):
        assert sum(line.startswith(header) for line in lines) == 1, header
    for header in ("end of speech → first audio", "barge-in,"):
        assert sum(line.startswith(header) and "p50" in line for line in lines) == 2, header
    for row in ("VAD hangover:", "STT:", "LLM:", "TTS:", "ours: the rest"):
        assert sum(line.startswith(f"  {row}") for line in lines) == 2, row
    assert max(len(line) for line in lines) <= 100
