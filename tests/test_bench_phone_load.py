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
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "CPU s/call-min" in done.stdout
    assert "ours" in done.stdout and "echo" in done.stdout
