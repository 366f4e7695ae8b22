"""The commands' event loop: uvloop where installed, the plain loop when asked."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from voiceagent import loop


def test_uvloop_by_default_where_installed() -> None:
    assert loop.have_uvloop()  # a dependency on this platform
    assert loop.choose(None, {}) == "uvloop"


def test_the_flag_wins_over_the_environment() -> None:
    assert loop.choose("asyncio", {"VOICEAGENT_LOOP": "uvloop"}) == "asyncio"
    assert loop.choose(None, {"VOICEAGENT_LOOP": "asyncio"}) == "asyncio"
    assert loop.choose("uvloop", {"VOICEAGENT_LOOP": "asyncio"}) == "uvloop"


def test_an_unknown_loop_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="use uvloop or asyncio"):
        loop.choose(None, {"VOICEAGENT_LOOP": "trio"})


@pytest.mark.parametrize("name", ["uvloop", "asyncio"])
def test_run_runs_on_the_loop_chosen(name: str) -> None:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    module = loop.run(which, loop=name, env={})
    assert module.startswith("uvloop") == (name == "uvloop")


def test_the_chat_command_runs_on_either_loop() -> None:
    for name in ("uvloop", "asyncio"):
        done = subprocess.run(
            [sys.executable, "-m", "voiceagent.cli", "chat", "--loop", name, "--tts", "test",
             "--say", "What is 12 times 7?"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "84" in done.stdout
