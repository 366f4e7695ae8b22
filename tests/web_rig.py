"""The browser rig: ``voiceagent web`` as a subprocess, a real headless Chromium (Debian
``chromium`` + ``chromium-driver`` through selenium) whose fake microphone plays a WAV,
questions spoken by espeak-ng, and a PNG screenshot decoded to check it is not blank.

Without chromium or chromedriver the browser tests skip saying why, or fail when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("VOICEAGENT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VOICEAGENT_CHROMEDRIVER", "/usr/bin/chromedriver")
WAV_RATE = 16000


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} not found: apt-get install {package}"
    if shutil.which("espeak-ng") is None:
        return "espeak-ng not found: apt-get install espeak-ng"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (the dev extra)"
    return None


def require_browser() -> None:
    """Skip (fail under CI) when the browser rig is missing."""
    from ci_env import missing

    why = browser_missing()
    if why is not None:
        missing(f"browser tests cannot run: {why}")


def speak_wav(path: Path, parts: list[str | float], tail_s: float = 20.0) -> Path:
    """A mono 16 kHz WAV: each ``str`` spoken by espeak-ng, each ``float`` that many seconds
    of silence, then ``tail_s`` of silence (the fake microphone plays it from the start)."""
    from voiceagent import audio

    pcm = bytearray()
    for part in parts:
        if isinstance(part, float):
            pcm += audio.silence(round(part * WAV_RATE))
            continue
        with tempfile.NamedTemporaryFile(suffix=".wav") as spoken:
            subprocess.run(["espeak-ng", "-s", "150", "-w", spoken.name, part], check=True)
            voice, rate = audio.read_wav(spoken.name)
        resampler = audio.Resampler(rate, WAV_RATE)
        pcm += resampler.process(voice) + resampler.flush()
    pcm += audio.silence(round(tail_s * WAV_RATE))
    audio.write_wav(path, bytes(pcm), WAV_RATE)
    return path


class WebServerProcess:
    """``voiceagent web`` on a free port; stdout and stderr go to files the test can read."""

    def __init__(self, folder: Path, *extra: str) -> None:
        self.folder = folder
        self.stdout_path = folder / "web.stdout"
        self.stderr_path = folder / "web.stderr"
        self.timeline = folder / "timeline.json"
        self._out = self.stdout_path.open("w")
        self._err = self.stderr_path.open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("SMALLEST_API_KEY", None)  # the offline stack, whatever the machine has
        command = [sys.executable, "-m", "voiceagent.cli", "web", "--port", "0",
                   "--timeline", str(self.timeline), *extra]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self._out, stderr=self._err, env=env,
                                        cwd=folder)  # fmt: skip
        self.url = self._first_line(timeout_s=180)

    def _first_line(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.stdout_path.read_text()
            if "\n" in text:
                return text.split("\n", 1)[0]
            if self.process.poll() is not None:
                raise RuntimeError(f"voiceagent web exited:\n{self.stderr()}")
            time.sleep(0.1)
        raise TimeoutError(f"voiceagent web printed no URL:\n{self.stderr()}")

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._err.close()


@contextmanager
def chromium(microphone: Path) -> Iterator[Any]:
    """A headless Chromium whose microphone plays ``microphone`` (once), autoplay allowed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,800",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, *, detail: Callable[[], str]
             = lambda: "") -> Any:  # fmt: skip
    """``check()``'s first truthy value, polled; AssertionError naming ``what`` at the end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{detail()}")


def png_colours(png: bytes, limit: int = 2) -> int:
    """How many distinct pixel colours the PNG holds (counting stops at ``limit``)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat = 8, b""
    width = height = depth = colour = 0
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", data[:10])
        elif kind == b"IDAT":
            idat += data
        at += 12 + length
    assert depth == 8 and colour in (2, 6), f"a PNG of depth {depth}, colour type {colour}"
    channels = 4 if colour == 6 else 3
    rows = _unfilter(zlib.decompress(idat), width, height, channels)
    pixels = rows.reshape(-1, channels)
    first = pixels[0]
    return 1 if bool((pixels == first).all()) else limit


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> np.ndarray[Any, Any]:
    stride = width * bpp
    data = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.int32)
    prior = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = int(data[y, 0]), data[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + prior) & 0xFF
        else:
            row = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                left = int(row[x - bpp]) if x >= bpp else 0
                up = int(prior[x])
                if kind == 1:
                    guess = left
                elif kind == 3:
                    guess = (left + up) // 2
                else:
                    corner = int(prior[x - bpp]) if x >= bpp else 0
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[x] = (int(line[x]) + guess) & 0xFF
        out[y] = row
        prior = row
    return out
