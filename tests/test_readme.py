"""README stays true: its runnable Python example works against the local simulator."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from voiceagent.testing.electron import ElectronServer

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_electron_client_example_runs_against_the_simulator() -> None:
    (example,) = [block for block in python_blocks() if "client.stream(" in block]
    with ElectronServer.running_in_thread() as server:
        code = example.replace("http://127.0.0.1:8765/waves/v1", server.base_url)
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert "84" in done.stdout
    assert "req_" in done.stdout  # the request id is printed


def test_the_first_agent_runs_with_the_command_the_readme_gives(tmp_path: Path) -> None:
    (agent,) = [block for block in python_blocks() if "Agent(" in block]
    (tmp_path / "my_agent.py").write_text(agent)
    (command,) = re.findall(r"\.venv/bin/voiceagent chat my_agent\.py .*", README.read_text())
    args = shlex.split(command)[1:]
    env = {
        k: v for k, v in os.environ.items() if k not in ("SMALLEST_API_KEY", "ELECTRON_BASE_URL")
    }
    if shutil.which("espeak-ng") is None:
        args += ["--tts", "test"]  # the offline voice is a system package; CI installs it
    done = subprocess.run(
        [str(Path(sys.executable).with_name("voiceagent")), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "18 degrees" in done.stdout and "Paris" in done.stdout
    assert (tmp_path / "reply.wav").stat().st_size > 44


def test_the_session_example_imports_what_exists() -> None:
    (example,) = [block for block in python_blocks() if "Session(" in block]
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # defines converse(), runs nothing
    assert callable(namespace["converse"])
