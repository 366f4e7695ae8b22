"""`make demo` runs examples/sim_conversation.py: with no key it must start `voiceagent sim`
and hold a whole conversation with tools against it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_converses_with_the_simulator_without_a_key() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("SMALLEST_API_KEY", "ELECTRON_BASE_URL")
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sim_conversation.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "simulator" in done.stderr
    assert "tool get_weather" in done.stderr  # the weather question went through a tool
    assert "Paris" in done.stdout
    assert "84" in done.stdout  # 12 times 7
