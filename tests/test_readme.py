"""README stays true: its runnable Python example works against the local simulator."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from voiceagent.testing.electron import ElectronServer

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_electron_client_example_runs_against_the_simulator() -> None:
    (example,) = [block for block in python_blocks() if "ElectronClient(" in block]
    with ElectronServer.running_in_thread() as server:
        code = example.replace("http://127.0.0.1:8765/waves/v1", server.base_url)
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert "84" in done.stdout
    assert "req_" in done.stdout  # the request id is printed
