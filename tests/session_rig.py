"""Spoken input for session tests: espeak-ng questions laid out on a timeline in a WAV."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from voiceagent import audio

RATE = 16000


def have_offline_stack() -> bool:
    try:
        import faster_whisper  # noqa: F401
        import webrtcvad  # noqa: F401
    except ImportError:
        return False
    return shutil.which("espeak-ng") is not None


needs_offline = pytest.mark.skipif(
    not have_offline_stack(),
    reason="needs the offline extra (pip install 'voiceagent[offline]') and espeak-ng",
)


def spoken(text: str) -> bytes:
    """``text`` said by espeak-ng, as PCM16 mono at 16 kHz."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True
    ).stdout
    pcm, rate = audio.parse_wav(wav)
    resampler = audio.Resampler(rate, RATE)
    return resampler.process(pcm) + resampler.flush()


def conversation_wav(path: Path, lines: list[tuple[float, str]], total_s: float) -> Path:
    """A WAV of silence with each (start second, text) spoken at its place."""
    pcm = bytearray(audio.silence(int(total_s * RATE)))
    for start_s, text in lines:
        speech = spoken(text)
        at = int(start_s * RATE) * 2
        pcm[at : at + len(speech)] = speech
    audio.write_wav(path, bytes(pcm[: int(total_s * RATE) * 2]), RATE)
    return path
