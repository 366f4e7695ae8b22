"""`make demo` and `voiceagent demo` without a sound card: file mode (a spoken question in,
the reply in demo-reply.wav); the mic-to-speaker example; the scripted simulator example."""

from __future__ import annotations

import importlib.util
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


needs_offline = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None,
    reason="the offline extra is not installed: pip install 'voiceagent[offline]'",
)


def no_device_env(tmp_path: Path) -> dict[str, str]:
    """Offline, and no sound server to be found: an empty PulseAudio runtime folder."""
    env = offline_env()
    (tmp_path / "no-pulse").mkdir()
    env["PULSE_RUNTIME_PATH"] = str(tmp_path / "no-pulse")
    env.pop("PULSE_SERVER", None)
    return env


def assert_file_mode_answered(tmp_path: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout  # the weather question was heard and answered
    assert "file mode" in done.stderr
    assert "simulator" in done.stderr
    for loading in ("Whisper tiny.en", "voice activity detector"):
        assert f"loading the {loading}" in done.stderr or loading in done.stderr
    assert "key figures: end of speech -> first audio" in done.stderr
    assert f"timeline picture: {tmp_path / 'demo-timeline.html'}" in done.stderr
    assert str(tmp_path / "demo-reply.wav") in done.stderr  # it says where the reply is
    with wave.open(str(tmp_path / "demo-reply.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() > 24000  # a few seconds of speech
    assert (tmp_path / "demo-timeline.html").stat().st_size > 0


@needs_offline
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_without_a_device_runs_file_mode(tmp_path: Path) -> None:
    # the Makefile's own recipe, run in a scratch folder; -o: the venv is already set up
    done = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "-o", ".venv/.installed",
         f"BIN={Path(sys.executable).parent}", "demo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, env=no_device_env(tmp_path),
    )  # fmt: skip
    assert_file_mode_answered(tmp_path, done)
    assert "no input device" in done.stderr


@needs_offline
def test_demo_file_flag_forces_file_mode_and_names_the_reply(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("voiceagent")), "demo", "--file", "--out",
         str(tmp_path / "demo-reply.wav"), "--timeline", str(tmp_path / "t.json")],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, env=no_device_env(tmp_path),
    )  # fmt: skip
    assert_file_mode_answered(tmp_path, done)
    assert "(--file)" in done.stderr
    turns = json.loads((tmp_path / "t.json").read_text())["turns"]
    assert [turn["trigger"] for turn in turns] == ["user"]


def test_mic_to_speaker_example_is_about_forty_lines() -> None:
    source = (ROOT / "examples" / "mic_to_speaker.py").read_text()
    code = [
        line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    assert len(code) <= 50


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
