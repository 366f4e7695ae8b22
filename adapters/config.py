"""Which TTS runs, by DESIGN.md's configuration table (first match wins), and the one line
that says so. The CLI calls it; the core itself never picks an adapter."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from voiceagent import NotAvailableYet
from voiceagent.ports import TTS

OUTPUT_RATE = 24000  # Hz: every component here can produce it
TTS_NAMES = ("lightning", "lightning-http", "piper", "espeak", "test")
STT_NAMES = ("pulse", "whisper", "test")

# component -> the issue that brings it
LIGHTNING_ISSUE = "the Lightning TTS issue"
PIPER_ISSUE = "the piper voice issue"
LISTENING_ISSUE = "the listening issue"
_NOT_YET = {"piper": PIPER_ISSUE}

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
    api_key: str | None = None,
    environ: Mapping[str, str] | None = None,
    sample_rate: int = OUTPUT_RATE,
) -> Components:
    """The TTS by ``--tts`` → ``--tts-url`` / LIGHTNING_URL → SMALLEST_API_KEY → offline.

    ``api_key`` (``--api-key``) is sent to the URL given; SMALLEST_API_KEY from the
    environment only ever to ``*.smallest.ai``. An explicit option naming a component this
    version lacks raises ``NotAvailableYet``; one the environment only implies falls back
    to offline and says so in ``notes``.
    """
    env = os.environ if environ is None else environ
    if stt is not None:
        raise NotAvailableYet(
            f"--stt {stt} is not available yet: it arrives with {LISTENING_ISSUE}"
        )
    if stt_url:
        raise NotAvailableYet(f"--stt-url is not available yet: it arrives with {LISTENING_ISSUE}")
    lightning = _LightningChoice(api_key, env, voice, language, sample_rate)
    if tts is not None:
        if tts in ("lightning", "lightning-http"):
            return lightning.named(tts, tts_url or env.get("LIGHTNING_URL") or None)
        return _named(tts, tts_url, voice, language, sample_rate)
    if tts_url:
        return lightning.by_url(tts_url, "--tts-url")
    if env.get("LIGHTNING_URL", "").strip():
        return lightning.by_url(env["LIGHTNING_URL"].strip(), "LIGHTNING_URL")
    if env.get("SMALLEST_API_KEY", "").strip():
        return lightning.by_url(LIGHTNING_WS_URL, "SMALLEST_API_KEY")
    return _offline(voice, language, sample_rate, [])


LIGHTNING_WS_URL = "wss://api.smallest.ai/waves/v1/tts/live"
LIGHTNING_HTTP_URL = "https://api.smallest.ai/waves/v1/tts"


@dataclass(frozen=True)
class _LightningChoice:
    """Lightning over its WebSocket (``ws(s)://``) or its HTTP API (``http(s)://``)."""

    api_key: str | None
    env: Mapping[str, str]
    voice: str | None
    language: str | None
    sample_rate: int

    def named(self, name: str, url: str | None) -> Components:
        default = LIGHTNING_HTTP_URL if name == "lightning-http" else LIGHTNING_WS_URL
        url = url or default
        if name == "lightning-http" and not url.startswith(("http://", "https://")):
            raise ConfigError(f"--tts lightning-http needs an http(s):// URL, not {url}")
        return self.by_url(url, f"--tts {name}")

    def by_url(self, url: str, why: str) -> Components:
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss", "http", "https"):
            raise ConfigError(f"{why}: a Lightning URL starts with ws(s):// or http(s)://: {url}")
        key = self.api_key or _smallest_key(url, self.env)
        language = self.language or "en"
        tts: TTS
        if scheme in ("ws", "wss"):
            from voiceagent.adapters.lightning import LightningTTS

            tts = LightningTTS(
                url, key, sample_rate=self.sample_rate, voice=self.voice, language=language
            )
            kind = "Lightning (streaming)"
        else:
            from voiceagent.adapters.lightning_http import LightningHTTPTTS

            tts = LightningHTTPTTS(
                url, key, sample_rate=self.sample_rate, voice=self.voice, language=language
            )
            kind = "Lightning (HTTP)"
        auth = "with a key" if key else "no key"
        return Components(tts, f"TTS: {kind} at {url}, {self.sample_rate} Hz, {auth} ({why})")


def _smallest_key(url: str, env: Mapping[str, str]) -> str | None:
    """SMALLEST_API_KEY, only for Smallest's own hosts over TLS."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ours = host == "smallest.ai" or host.endswith(".smallest.ai")
    if ours and parts.scheme in ("wss", "https"):
        return env.get("SMALLEST_API_KEY", "").strip() or None
    return None


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
