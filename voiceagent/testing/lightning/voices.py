"""The fake's voices: espeak-ng (real speech, resampled) or a deterministic synthetic tone."""

from __future__ import annotations

import math
import shutil
from functools import lru_cache

import anyio

from voiceagent import audio

SYNTHETIC_MS_PER_CHAR = 55.0  # at speed 1: a brisk speaking rate for English text
ESPEAK_WORDS_PER_MINUTE = 175
VOICES = ("espeak", "synthetic")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def resolve_voice(voice: str) -> str:
    """The voice that will really speak: espeak falls back to synthetic when not installed."""
    if voice not in VOICES:
        raise ValueError(f"voice must be one of {', '.join(VOICES)}, not {voice!r}")
    return "espeak" if voice == "espeak" and espeak_available() else "synthetic"


async def render(voice: str, text: str, sample_rate: int, speed: float, language: str) -> bytes:
    """PCM16 mono of ``text`` at ``sample_rate``."""
    if voice == "espeak":
        return await _espeak(text, sample_rate, speed, language)
    return synthetic(text, sample_rate, speed)


def synthetic(text: str, sample_rate: int, speed: float = 1.0) -> bytes:
    """One short tone per character, its pitch set by the character.

    Additive on purpose: the audio of a text is the audio of its pieces joined, however
    the text was split, so tests can check lengths exactly. Never silent (spaces hum).
    """
    samples = samples_per_char(sample_rate, speed)
    return b"".join(_tone(char, samples, sample_rate) for char in text)


def samples_per_char(sample_rate: int, speed: float = 1.0) -> int:
    return max(1, round(sample_rate * SYNTHETIC_MS_PER_CHAR / 1000.0 / speed))


@lru_cache(maxsize=4096)
def _tone(char: str, n_samples: int, sample_rate: int) -> bytes:
    import numpy as np

    quiet = char.isspace() or not char.isalnum()
    frequency = 140.0 + (ord(char) % 48) * 9.0
    amplitude = 0.05 if quiet else 0.3
    t = np.arange(n_samples, dtype=np.float64) / sample_rate
    wave = amplitude * np.sin(2 * math.pi * frequency * t + 0.5)
    # Never an exact zero sample: 0 means "nothing" to tests that look for gaps.
    pcm = np.rint(wave * audio.FULL_SCALE).astype(np.int16)
    pcm[pcm == 0] = 1
    return audio.int16_to_pcm(pcm)


async def _espeak(text: str, sample_rate: int, speed: float, language: str) -> bytes:
    if not text.strip():
        return b""
    voice = "en-us" if language.lower() in ("en", "en-us") else language.lower()
    wpm = str(round(ESPEAK_WORDS_PER_MINUTE * speed))
    done = await anyio.run_process(
        ["espeak-ng", "-v", voice, "-s", wpm, "--stdout"], input=text.encode(), check=False
    )
    if done.returncode != 0 or not done.stdout:
        return synthetic(text, sample_rate, speed)  # an unknown language still gets audio
    pcm, rate = audio.parse_wav(done.stdout)
    resampler = audio.Resampler(rate, sample_rate)
    return resampler.process(pcm) + resampler.flush()
