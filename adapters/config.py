"""Which TTS runs, by DESIGN.md's configuration table (first match wins), and the one line
that says so. The CLI calls it; the core itself never picks an adapter."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from voiceagent import NotAvailableYet
from voiceagent.ports import TTS

OUTPUT_RATE = 24000  # Hz: every component here can produce it
TTS_NAMES = ("lightning", "lightning-http", "piper", "espeak", "test")
STT_NAMES = ("pulse", "whisper", "test")

# component -> the issue that brings it
LIGHTNING_ISSUE = "the Lightning TTS issue"
PIPER_ISSUE = "the piper voice issue"
LISTENING_ISSUE = "the listening issue"
_NOT_YET = {"lightning": LIGHTNING_ISSUE, "lightning-http": LIGHTNING_ISSUE, "piper": PIPER_ISSUE}

ESPEAK_INSTALL = "apt-get install espeak-ng"
# language code -> espeak-ng voice, where the bare code is not the voice people expect
_ESPEAK_VOICES = {"en": "en-us"}


class ConfigError(ValueError):
    """A choice that cannot run as given; the message says what to do instead."""


@dataclass(frozen=True)
class Components:
    """What ``from_config`` chose: the TTS (None: text only) and how to say so."""

    tts: TTS | None
    description: str  # one line for the user, e.g. "TTS: espeak-ng, voice en-us, 24000 Hz (…)"
    notes: tuple[str, ...] = ()  # choices the environment implied but that cannot run yet

    @property
    def sample_rate(self) -> int:
        return self.tts.sample_rate if self.tts is not None else OUTPUT_RATE


def from_config(
    *,
    tts: str | None = None,
    tts_url: str | None = None,
    voice: str | None = None,
    language: str | None = None,
    stt: str | None = None,
    stt_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    sample_rate: int = OUTPUT_RATE,
) -> Components:
    """The TTS by ``--tts`` → ``--tts-url`` / LIGHTNING_URL → SMALLEST_API_KEY → offline.

    An explicit option naming a component this version lacks raises ``NotAvailableYet``;
    one the environment only implies falls back to offline and says so in ``notes``.
    """
    env = os.environ if environ is None else environ
    if stt is not None:
        raise NotAvailableYet(
            f"--stt {stt} is not available yet: it arrives with {LISTENING_ISSUE}"
        )
    if stt_url:
        raise NotAvailableYet(f"--stt-url is not available yet: it arrives with {LISTENING_ISSUE}")
    if tts is not None:
        return _named(tts, tts_url, voice, language, sample_rate)
    if tts_url:
        raise NotAvailableYet(
            f"--tts-url (Lightning) is not available yet: it arrives with {LIGHTNING_ISSUE}"
        )
    notes: list[str] = []
    for variable in ("LIGHTNING_URL", "SMALLEST_API_KEY"):
        if env.get(variable, "").strip():
            notes.append(
                f"{variable} is set, but Lightning TTS is not available yet (it arrives with "
                f"{LIGHTNING_ISSUE}): using the offline TTS instead"
            )
            break  # the first match decides; one note is enough
    return _offline(voice, language, sample_rate, notes)


def _named(
    name: str, tts_url: str | None, voice: str | None, language: str | None, sample_rate: int
) -> Components:
    if name in _NOT_YET:
        raise NotAvailableYet(
            f"--tts {name} is not available yet: it arrives with {_NOT_YET[name]}"
        )
    if name not in TTS_NAMES:
        raise ConfigError(f"unknown TTS {name!r}; choose one of: {', '.join(TTS_NAMES)}")
    if tts_url:
        raise ConfigError(f"--tts-url is for Lightning; --tts {name} takes no URL")
    if name == "test":
        from voiceagent.testing.tts import TestTTS

        return Components(
            TestTTS(sample_rate=sample_rate),
            f"TTS: test tones (TestTTS, not speech), {sample_rate} Hz (--tts test)",
        )
    if shutil.which("espeak-ng") is None:
        raise ConfigError(f"--tts espeak: the espeak-ng program was not found; {ESPEAK_INSTALL}")
    return _espeak(voice, language, sample_rate, "--tts espeak", ())


def _offline(
    voice: str | None, language: str | None, sample_rate: int, notes: list[str]
) -> Components:
    """piper if installed, else espeak-ng; neither: no TTS (text only), said in a note."""
    if shutil.which("piper") is not None:
        notes.append(
            f"piper is installed, but its adapter is not available yet (it arrives with "
            f"{PIPER_ISSUE}): using espeak-ng"
        )
    if shutil.which("espeak-ng") is None:
        notes.append(f"no offline TTS: espeak-ng was not found ({ESPEAK_INSTALL}); text only")
        return Components(None, "TTS: none (espeak-ng not found): text only", tuple(notes))
    why = "offline default" if not notes else "offline fallback"
    return _espeak(voice, language, sample_rate, why, tuple(notes))


def _espeak(
    voice: str | None,
    language: str | None,
    sample_rate: int,
    why: str,
    notes: tuple[str, ...],
) -> Components:
    from voiceagent.adapters.espeak import EspeakTTS

    chosen = voice or espeak_voice(language or "en")
    _check_espeak_voice(chosen, given="--voice" if voice else "--language")
    return Components(
        EspeakTTS(sample_rate=sample_rate, voice=chosen),
        f"TTS: espeak-ng, voice {chosen}, {sample_rate} Hz ({why})",
        notes,
    )


def espeak_voice(language: str) -> str:
    """The espeak-ng voice for a language code: ``en`` → ``en-us``, others as they are."""
    code = language.strip().lower()
    return _ESPEAK_VOICES.get(code, code)


def _check_espeak_voice(voice: str, *, given: str) -> None:
    """A voice espeak-ng does not have fails here, once, not on every phrase of every turn."""
    executable = shutil.which("espeak-ng") or "espeak-ng"
    try:
        done = subprocess.run(
            [executable, "-q", "-v", voice, ""], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"could not run espeak-ng: {error}") from error
    if done.returncode != 0:
        raise ConfigError(
            f"espeak-ng has no voice {voice!r} (from {given}); `espeak-ng --voices` lists them"
        )
