"""The ``voiceagent`` command as a user runs it: a real process, real stdout and stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VOICEAGENT, *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_command() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for command in ("chat", "demo", "phone", "sim"):
        assert command in done.stdout


def test_chat_accepts_the_shared_option_set() -> None:
    done = run_cli("chat", "--help")
    assert done.returncode == 0
    assert "greeting is not spoken" in " ".join(done.stdout.split())
    for flag in ("--llm-url", "--api-key", "--model", "--temperature", "--seed", "--tts",
                 "--tts-url", "--voice", "--stt", "--stt-url", "--language", "--timeline",
                 "--timeline-html", "--say", "--in", "--out"):  # fmt: skip
        assert flag in done.stdout, flag


def test_demo_accepts_the_shared_option_set_and_its_own() -> None:
    done = run_cli("demo", "--help")
    assert done.returncode == 0
    for flag in ("--file", "--out", "--barge-in", "--llm-url", "--tts", "--stt",
                 "--timeline", "--timeline-html"):  # fmt: skip
        assert flag in done.stdout, flag


def test_sim_help_says_it_is_a_simulator() -> None:
    done = run_cli("sim", "--help")
    assert done.returncode == 0
    assert "voiceagent sim" in done.stdout
    assert "not a model" in done.stdout.replace("\n", " ")


@pytest.fixture
def sim_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [VOICEAGENT, "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_sim_prints_its_base_url_first_and_serves_it(sim_url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/waves/v1", sim_url), sim_url
    client = openai.AsyncOpenAI(base_url=sim_url, api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model="electron",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip()
    await client.close()
