"""`make demo`: two questions to the built-in demo agent through `voiceagent chat`, spoken into
demo-reply.wav with the timelines beside it; and the scripted example it used to run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def offline_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SMALLEST_API_KEY", "ELECTRON_BASE_URL", "LIGHTNING_URL", "PULSE_URL")
    }
    # nothing listens on the discard port: the same offline failure on every machine
    env["OPEN_METEO_GEOCODING_URL"] = env["OPEN_METEO_FORECAST_URL"] = "http://127.0.0.1:9"
    return env


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the demo speaks with espeak-ng")
def test_make_demo_answers_both_questions_into_a_wav_and_timelines(tmp_path: Path) -> None:
    # the Makefile's own recipe, run in a scratch folder; -o: the venv is already set up
    done = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "-o", ".venv/.installed",
         f"BIN={Path(sys.executable).parent}", "demo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=offline_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    weather, arithmetic = done.stdout.splitlines()
    assert "Paris" in weather
    assert "84" in arithmetic
    assert "simulator" in done.stderr
    with wave.open(str(tmp_path / "demo-reply.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() > 24000  # both replies, a few seconds of speech
    turns = json.loads((tmp_path / "demo-timeline.json").read_text())["turns"]
    assert len(turns) == 2
    assert (tmp_path / "demo-timeline.html").stat().st_size > 0


def test_sim_conversation_example_converses_with_the_simulator_without_a_key() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sim_conversation.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=offline_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "simulator" in done.stderr
    assert "tool get_weather" in done.stderr  # the weather question went through a tool
    assert "Paris" in done.stdout
    assert "84" in done.stdout  # 12 times 7
