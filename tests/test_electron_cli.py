"""The simulator's command line: base URL first on stdout, serves, stops cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from voiceagent.testing.electron.cli import build_parser


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "Scripted hello."}]))
    flags = ["--port", "0", "--script", str(script), "--fail", "503", "--api-key", "cli-key"]
    process = subprocess.Popen(
        [sys.executable, "-m", "voiceagent.testing.electron", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
        yield process, first_line
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=10)


def test_cli_prints_the_base_url_first_and_serves(
    simulator: tuple[subprocess.Popen[str], str],
) -> None:
    process, base_url = simulator
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/waves/v1")
    body = {"model": "electron", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer cli-key"}
    with httpx2.Client(timeout=10) as http:
        failed = http.post(base_url + "/chat/completions", json=body, headers=headers)
        served = http.post(base_url + "/chat/completions", json=body, headers=headers)
        unauthorised = http.post(base_url + "/chat/completions", json=body)
    assert failed.status_code == 503  # --fail 503
    assert served.status_code == 200
    assert served.json()["choices"][0]["message"]["content"] == "Scripted hello."
    assert unauthorised.status_code == 401
    process.terminate()
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "cli-key" not in stderr


def test_help_says_it_is_a_simulator_not_a_model() -> None:
    text = build_parser(prog="voiceagent sim").format_help()
    assert text.startswith("usage: voiceagent sim")
    assert "a simulator, not a model" in text
    for flag in ("--host", "--port", "--script", "--concurrency", "--fail", "--ttft-ms",
                 "--token-ms", "--cache-ttl", "--api-key"):  # fmt: skip
        assert flag in text


def test_fail_flag_rejects_non_error_statuses() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fail", "200"])


def test_pause_after_flag_reads_chunks_and_seconds_and_repeats() -> None:
    args = build_parser().parse_args(["--pause-after", "1:30", "--pause-after", "2:0.5"])
    assert args.pause_after == [(1, 30.0), (2, 0.5)]
    for bad in ("1", "x:1", "-1:2", "1:-2"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--pause-after", bad])


def test_an_unreadable_script_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voiceagent.testing.electron",
            "--port",
            "0",
            "--script",
            str(missing),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--script" in result.stderr
