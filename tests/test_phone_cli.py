"""``voiceagent phone`` as a process: the TwiML, the URL on the first stdout line, calls
served, and SIGTERM draining: no new calls, the call in progress finishes, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from test_phone_call import SAFETY_S, played

from voiceagent.testing.pulse import PulseServer
from voiceagent.testing.twilio import TwilioCaller

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))
EXAMPLE = str(Path(__file__).parents[1] / "examples" / "phone_bot.py")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMALLEST", "TWILIO"))}
    env.pop("ELECTRON_BASE_URL", None)
    env.pop("LIGHTNING_URL", None)
    return env


def test_twiml_is_printed_for_the_public_url() -> None:
    done = subprocess.run([VOICEAGENT, "phone", "--twiml", "--public-url", "https://bot.example.com"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        '<Response><Connect><Stream url="wss://bot.example.com/twilio"/></Connect></Response>'
    )


def test_twiml_needs_a_public_url() -> None:
    done = subprocess.run([VOICEAGENT, "phone", "--twiml"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--public-url" in done.stderr


def test_a_token_without_a_public_url_refuses_to_start() -> None:
    env = {**_env(), "TWILIO_AUTH_TOKEN": "tok", "PULSE_URL": "ws://127.0.0.1:9/x"}
    done = subprocess.run([VOICEAGENT, "phone", "--port", "0", "--tts", "test"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--public-url" in done.stderr and done.stdout == ""


async def test_sigterm_drains_the_call_in_progress_then_exits(tmp_path: Path) -> None:
    async with PulseServer(transcribe="table") as pulse:
        stt = ["--stt", "pulse", "--stt-url", pulse.url]
        command = [VOICEAGENT, "phone", EXAMPLE, "--port", "0", "--tts", "test", *stt,
                   "--timeline", str(tmp_path)]  # fmt: skip
        async with await anyio.open_process(command, env=_env()) as process:
            assert process.stdout is not None
            first = b""
            with anyio.fail_after(SAFETY_S):
                while not first.endswith(b"\n"):
                    first += await process.stdout.receive(1)
            url = first.decode().strip()
            assert url.startswith("ws://127.0.0.1:") and url.endswith("/twilio")
            caller = TwilioCaller(url, call_sid="CA" + "1" * 32)
            async with caller:
                with anyio.fail_after(SAFETY_S):
                    await caller.wait_for(lambda: len(played(caller)) >= 1)  # the greeting
                process.send_signal(signal.SIGTERM)
                with anyio.fail_after(SAFETY_S):
                    while True:  # the listening socket closes; the call goes on
                        try:
                            await anyio.connect_tcp(
                                "127.0.0.1", int(url.split(":")[2].split("/")[0])
                            )
                        except OSError:
                            break
                        await anyio.sleep(0.05)
                assert not caller.ended
            with anyio.fail_after(SAFETY_S):
                code = await process.wait()
    assert code == 0
    assert caller.protocol_errors == []
    assert (tmp_path / f"{caller.call_sid}.json").is_file()


@pytest.mark.parametrize("url", ["ftp://x", "nohost"])
def test_a_bad_public_url_is_refused(url: str) -> None:
    done = subprocess.run([VOICEAGENT, "phone", "--twiml", "--public-url", url],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2


def test_max_calls_below_one_is_refused() -> None:
    env = {**_env(), "PULSE_URL": "ws://127.0.0.1:9/x"}
    done = subprocess.run([VOICEAGENT, "phone", "--port", "0", "--tts", "test", "--max-calls",
                           "0"], env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--max-calls 0" in done.stderr and done.stdout == ""
