"""``voiceagent web`` as a user types it: the command runs (no longer "not available yet"),
and a bad option is a usage error before anything loads."""

from __future__ import annotations

import subprocess
import sys

import pytest


def voiceagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voiceagent.cli", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_web_is_available_and_documents_its_options() -> None:
    done = voiceagent("web", "--help")
    assert done.returncode == 0
    for option in ("--host", "--port", "--allow-origin", "--timeline", "--loop"):
        assert option in done.stdout


@pytest.mark.parametrize("origin", ["example.com", "http://example.com/path", "ftp://x.example"])
def test_an_allowed_origin_must_be_an_origin(origin: str) -> None:
    done = voiceagent("web", "--allow-origin", origin, "--port", "0")
    assert done.returncode == 2, done.stderr
    assert "not available yet" not in done.stderr
    assert f"--allow-origin {origin}: an origin is scheme://host[:port]" in done.stderr
