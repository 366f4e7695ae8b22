"""Which TTS and STT run, by DESIGN.md's configuration table (first match wins), and the
lines that say so. The CLI calls it; the core itself never picks an adapter."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from voiceagent import NotAvailableYet
from voiceagent.adapters.pulse_wire import PULSE_RATES
from voiceagent.ports import STT, TTS

OUTPUT_RATE = 24000  # Hz: every component here can produce it
TTS_NAMES = ("lightning", "lightning-http", "piper", "espeak", "test")
STT_NAMES = ("pulse", "whisper", "test")

# component -> the issue that brings it
SESSIONS_ISSUE = "the sessions issue"
_STT_NOT_YET = {"test": SESSIONS_ISSUE}

ESPEAK_INSTALL = "apt-get install espeak-ng"
OFFLINE_INSTALL = "pip install 'voiceagent[offline]'"
PULSE_WS_URL = "wss://api.smallest.ai/waves/v1/stt/live"
STT_RATE = 16000  # Hz: whisper's, and Pulse's when the input's own rate is not one it lists
# language code -> espeak-ng voice, where the bare code is not the voice people expect
_ESPEAK_VOICES = {"en": "en-us"}


class ConfigError(ValueError):
    """A choice that cannot run as given; the message says what to do instead."""


@dataclass(frozen=True)
class Components:
    """What ``from_config`` chose: the TTS (None: text only), the STT (None: not asked for)
    and how to say so (never with a key in it)."""

    tts: TTS | None
    description: str  # one line for the user, e.g. "TTS: espeak-ng, voice en-us, 24000 Hz (…)"
    notes: tuple[str, ...] = ()  # choices the environment implied but that cannot run yet
    stt: STT | None = None
    stt_description: str | None = None  # e.g. "STT: Pulse at wss://…, 16000 Hz, no key (…)"

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
    need_stt: bool = False,
    input_rate: int | None = None,
) -> Components:
    """The TTS by ``--tts`` → ``--tts-url`` / LIGHTNING_URL → SMALLEST_API_KEY → offline, and
    with ``need_stt`` the STT by ``--stt`` → ``--stt-url`` / PULSE_URL → SMALLEST_API_KEY →
    offline whisper.

    ``api_key`` (``--api-key``) is sent to the URL given; SMALLEST_API_KEY from the
    environment only ever to ``*.smallest.ai``. An explicit option naming a component this
    version lacks raises ``NotAvailableYet``. Without ``need_stt`` the STT options are only
    checked, nothing is built (whisper loads a model). ``input_rate`` is the rate of the
    audio to be heard: Pulse takes it as is when it can, so nothing is resampled.
    """
    env = os.environ if environ is None else environ
    _check_stt_options(stt, stt_url)
    chosen = _tts(tts, tts_url, voice, language, api_key, env, sample_rate)
    if not need_stt:
        if stt is None and not stt_url:
            return chosen
        note = "--stt and --stt-url choose the STT of --in (speech input); typed turns skip it"
        return dataclasses.replace(chosen, notes=(*chosen.notes, note))
    # Pulse hears a listed rate as is; other input is resampled to STT_RATE (turn_taking's
    # _Converter resamples to the STT's rate), never refused
    rate = input_rate if input_rate in PULSE_RATES else None
    stt_choice, stt_line = _stt(stt, stt_url, language, api_key, env, rate or STT_RATE)
    return dataclasses.replace(chosen, stt=stt_choice, stt_description=stt_line)


def _tts(
    tts: str | None,
    tts_url: str | None,
    voice: str | None,
    language: str | None,
    api_key: str | None,
    env: Mapping[str, str],
    sample_rate: int,
) -> Components:
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
    return _offline(voice, language, sample_rate)


LIGHTNING_WS_URL = "wss://api.smallest.ai/waves/v1/tts/live"
LIGHTNING_HTTP_URL = "https://api.smallest.ai/waves/v1/tts"


LIGHTNING_MAX_CONCURRENT_ENV = "LIGHTNING_MAX_CONCURRENT"


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
        slots = _max_concurrent(self.env)
        tts: TTS
        if scheme in ("ws", "wss"):
            from voiceagent.adapters.lightning import LightningTTS

            tts = LightningTTS(url, key, sample_rate=self.sample_rate, voice=self.voice,
                               language=language, max_concurrent=slots)  # fmt: skip
            kind = "Lightning (streaming)"
        else:
            from voiceagent.adapters.lightning_http import LightningHTTPTTS

            tts = LightningHTTPTTS(url, key, sample_rate=self.sample_rate, voice=self.voice,
                                   language=language, max_concurrent=slots)  # fmt: skip
            kind = "Lightning (HTTP)"
        auth = "with a key" if key else "no key"
        limit = f"{slots} at a time" if slots > 0 else "no concurrency limit"
        return Components(
            tts, f"TTS: {kind} at {url}, {self.sample_rate} Hz, {auth}, {limit} ({why})"
        )


def _max_concurrent(env: Mapping[str, str]) -> int:
    """LIGHTNING_MAX_CONCURRENT: the account's concurrent TTS requests, shared by every session
    of the process (default 1, the entry plan; 0 = no limit). A phone server holding N calls
    on a plan of 1 speaks one reply at a time: bench/phone_load.py's calls queued ~0.8 s each
    behind one another until they timed out, so it runs the bot with 0 (its fake has no limit).
    """
    text = env.get(LIGHTNING_MAX_CONCURRENT_ENV, "").strip()
    if not text:
        return 1
    try:
        slots = int(text)
    except ValueError:
        slots = -1
    if slots < 0:
        raise ConfigError(f"{LIGHTNING_MAX_CONCURRENT_ENV}={text!r}: a count (0 = no limit)")
    return slots


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
    if name == "piper":
        try:
            return _piper(voice, sample_rate, "--tts piper")
        except ImportError as error:  # PiperNotInstalled names the extra
            raise ConfigError(f"--tts piper: {error}") from error
    if shutil.which("espeak-ng") is None:
        raise ConfigError(f"--tts espeak: the espeak-ng program was not found; {ESPEAK_INSTALL}")
    return _espeak(voice, language, sample_rate, "--tts espeak", ())


def _offline(voice: str | None, language: str | None, sample_rate: int) -> Components:
    """piper (the ``offline`` extra) for English with its own voice, else espeak-ng; neither:
    no TTS (text only), said in a note."""
    notes: list[str] = []
    english = (language or "en").lower().split("-")[0] == "en"
    if voice is None and english:
        try:
            return _piper(None, sample_rate, "offline default")
        except ImportError as error:  # the extra is missing: the light fallback
            notes.append(f"piper is not installed ({error}): using espeak-ng")
    if shutil.which("espeak-ng") is None:
        notes.append(f"no offline TTS: espeak-ng was not found ({ESPEAK_INSTALL}); text only")
        return Components(None, "TTS: none (espeak-ng not found): text only", tuple(notes))
    if notes:
        why = "offline fallback"
    else:  # espeak-ng by choice: the piper voice shipped is English and has no --voice names
        why = "offline, --voice" if voice is not None else "offline; the piper voice is English"
    return _espeak(voice, language, sample_rate, why, tuple(notes))


def _piper(model: str | None, sample_rate: int, why: str) -> Components:
    """piper with ``model`` (an .onnx voice; default the bundled joe voice); ImportError when
    the ``offline`` extra is missing. The process starts with the first phrase, not here."""
    from voiceagent.adapters.piper import PiperTTS

    try:
        piper = PiperTTS(sample_rate=sample_rate, model=model)
    except FileNotFoundError as error:
        raise ConfigError(f"--voice for piper is an .onnx voice file: {error}") from error
    voice = piper.model.name.removesuffix(".onnx")
    return Components(piper, f"TTS: piper, voice {voice}, {sample_rate} Hz ({why})")


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


# --- STT ------------------------------------------------------------------------------------


def _check_stt_options(stt: str | None, stt_url: str | None) -> None:
    """What is wrong with the STT options whether or not an STT is built."""
    if stt in _STT_NOT_YET:
        raise NotAvailableYet(
            f"--stt {stt} is not available yet: it arrives with {_STT_NOT_YET[stt]}"
        )
    if stt is not None and stt not in STT_NAMES:
        raise ConfigError(f"unknown STT {stt!r}; choose one of: {', '.join(STT_NAMES)}")
    if stt == "whisper" and stt_url:
        raise ConfigError("--stt-url is for Pulse; --stt whisper takes no URL")


def _stt(
    name: str | None,
    stt_url: str | None,
    language: str | None,
    api_key: str | None,
    env: Mapping[str, str],
    pulse_rate: int,
) -> tuple[STT, str]:
    """The STT and its line, by ``--stt`` → ``--stt-url`` / PULSE_URL → SMALLEST_API_KEY →
    offline whisper."""
    env_url = env.get("PULSE_URL", "").strip()
    if name == "pulse":
        url = stt_url or env_url or PULSE_WS_URL
        return _pulse(url, "--stt pulse", language, api_key, env, pulse_rate)
    if name == "whisper":
        return _whisper(language, "--stt whisper")
    if stt_url:
        return _pulse(stt_url, "--stt-url", language, api_key, env, pulse_rate)
    if env_url:
        return _pulse(env_url, "PULSE_URL", language, api_key, env, pulse_rate)
    if env.get("SMALLEST_API_KEY", "").strip():
        return _pulse(PULSE_WS_URL, "SMALLEST_API_KEY", language, api_key, env, pulse_rate)
    return _whisper(language, "offline default")


def _pulse(
    url: str,
    why: str,
    language: str | None,
    api_key: str | None,
    env: Mapping[str, str],
    sample_rate: int,
) -> tuple[STT, str]:
    from voiceagent.adapters.pulse import PulseSTT

    if urlsplit(url).scheme not in ("ws", "wss"):
        raise ConfigError(f"{why}: a Pulse URL starts with ws:// or wss://: {url}")
    key = api_key or _smallest_key(url, env)
    stt = PulseSTT(url, key, language=language or "en", sample_rate=sample_rate)
    auth = "with a key" if key else "no key"
    return stt, f"STT: Pulse at {url}, {sample_rate} Hz linear16, {auth} ({why})"


def _whisper(language: str | None, why: str) -> tuple[STT, str]:
    from voiceagent.adapters.whisper import WhisperSTT

    try:
        stt = WhisperSTT(sample_rate=STT_RATE, language=language or "en")
    except (ImportError, FileNotFoundError) as error:  # both messages name the extra
        raise ConfigError(f"offline speech input (whisper): {error}") from error
    return stt, f"STT: Whisper tiny.en (English, faster-whisper, offline), {STT_RATE} Hz ({why})"
