"""`voiceagent chat --tts lightning --tts-url ws://…` speaks through the local
Lightning-compatible server: the phrases reach it over the real protocol and the reply WAV
holds the audio it sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voiceagent.audio import read_wav
from voiceagent.testing.lightning import LightningServer

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_chat_speaks_through_the_local_lightning_server(transport: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SMALLEST_API_KEY", "LIGHTNING_URL")}
    env.pop("ELECTRON_BASE_URL", None)
    out = tmp_path / "reply.wav"
    with LightningServer.running_in_thread(
        voice="synthetic", complete_backoff_default_ms=100
    ) as server:
        url = server.ws_url if transport == "ws" else server.http_url
        done = subprocess.run(
            [
                VOICEAGENT,
                "chat",
                "--tts",
                "lightning",
                "--tts-url",
                url,
                "--out",
                str(out),
                "--say",
                "What is 12 times 7?",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        spoken = [r for r in server.requests if r.status != "error"]
    assert done.returncode == 0, done.stderr
    assert "84" in done.stdout
    assert "Lightning" in done.stderr
    assert spoken and all(r.transport == transport for r in spoken)
    assert "84" in " ".join(r.text or str(r.config.get("text", "")) for r in spoken)
    pcm, rate = read_wav(out)
    assert rate == 24000
    assert sum(r.samples for r in spoken) <= len(pcm) // 2
    assert any(pcm)  # the server's audio is in the recording
