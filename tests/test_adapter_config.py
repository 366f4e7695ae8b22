"""Choosing the TTS by the configuration table: --tts, then --tts-url / LIGHTNING_URL, then
SMALLEST_API_KEY, then offline; what is not built yet fails or falls back, never silently."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from voiceagent import NotAvailableYet
from voiceagent.adapters import ConfigError, from_config
from voiceagent.adapters.config import (
    LIGHTNING_HTTP_URL,
    LIGHTNING_WS_URL,
    OUTPUT_RATE,
    espeak_voice,
)
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.adapters.lightning_http import LightningHTTPTTS
from voiceagent.testing.tts import TestTTS

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
NO_ENV: dict[str, str] = {}


@pytest.fixture
def without_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "espeak-ng" else real(name, *a, **k)
    )


def test_tts_test_is_the_test_tts_at_the_output_rate() -> None:
    chosen = from_config(tts="test", environ=NO_ENV)
    assert isinstance(chosen.tts, TestTTS)
    assert chosen.sample_rate == OUTPUT_RATE == 24000
    assert "--tts test" in chosen.description


@needs_espeak
def test_offline_default_is_espeak_in_american_english() -> None:
    from voiceagent.adapters.espeak import EspeakTTS

    chosen = from_config(environ=NO_ENV)
    assert isinstance(chosen.tts, EspeakTTS)
    assert chosen.tts.voice == "en-us"
    assert chosen.sample_rate == 24000
    assert chosen.description == "TTS: espeak-ng, voice en-us, 24000 Hz (offline default)"
    assert chosen.notes == ()


@needs_espeak
def test_language_and_voice_reach_espeak() -> None:
    from voiceagent.adapters.espeak import EspeakTTS

    french = from_config(tts="espeak", language="fr", environ=NO_ENV).tts
    assert isinstance(french, EspeakTTS) and french.voice == "fr"
    chosen = from_config(tts="espeak", language="en", voice="en-gb", environ=NO_ENV).tts
    assert isinstance(chosen, EspeakTTS) and chosen.voice == "en-gb"


@needs_espeak
def test_a_voice_espeak_lacks_fails_at_once() -> None:
    with pytest.raises(ConfigError, match="no voice 'zz-none'"):
        from_config(voice="zz-none", environ=NO_ENV)


def test_espeak_voice_maps_english_to_american() -> None:
    assert espeak_voice("en") == "en-us"
    assert espeak_voice("hi") == "hi"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tts": "piper"}, "--tts piper is not available yet: it arrives with the piper"),
        ({"stt": "pulse"}, "--stt pulse is not available yet: it arrives with the listening"),
        ({"stt_url": "wss://example.test/stt"}, "--stt-url is not available yet"),
    ],
)
def test_an_explicit_component_not_built_yet_fails(options: dict[str, str], message: str) -> None:
    with pytest.raises(NotAvailableYet, match=message):
        from_config(environ=NO_ENV, **options)


def test_a_url_for_a_tts_that_takes_none_is_refused() -> None:
    with pytest.raises(ConfigError, match="--tts test takes no URL"):
        from_config(tts="test", tts_url="wss://example.test/tts", environ=NO_ENV)


@pytest.mark.parametrize(
    ("options", "environ", "kind", "url"),
    [
        ({"tts": "lightning"}, {}, LightningTTS, LIGHTNING_WS_URL),
        ({"tts": "lightning-http"}, {}, LightningHTTPTTS, LIGHTNING_HTTP_URL),
        ({"tts": "lightning", "tts_url": "http://h.test/tts"}, {}, LightningHTTPTTS, None),
        ({"tts_url": "ws://h.test/live"}, {}, LightningTTS, None),
        ({"tts_url": "https://h.test/tts"}, {}, LightningHTTPTTS, None),
        ({}, {"LIGHTNING_URL": "wss://h.test/live"}, LightningTTS, None),
        ({}, {"SMALLEST_API_KEY": "sk-env-1"}, LightningTTS, LIGHTNING_WS_URL),
    ],
    ids=["name", "name-http", "name-http-url", "ws-url", "http-url", "env-url", "env-key"],
)
def test_lightning_is_chosen_by_the_table(
    options: dict[str, str], environ: dict[str, str], kind: type, url: str | None
) -> None:
    chosen = from_config(environ=environ, **options)
    assert isinstance(chosen.tts, kind)
    expected = url or options.get("tts_url") or environ.get("LIGHTNING_URL")
    assert chosen.tts.url == expected
    assert "Lightning" in chosen.description
    assert "sk-env-1" not in chosen.description + repr(chosen.tts)


def test_smallest_api_key_only_goes_to_smallest_hosts() -> None:
    env = {"SMALLEST_API_KEY": "sk-env-1"}
    ours = from_config(tts="lightning", environ=env)
    theirs = from_config(tts_url="wss://elsewhere.test/live", environ=env)
    assert ours.tts is not None and ours.tts._api_key == "sk-env-1"  # type: ignore[attr-defined]
    assert theirs.tts is not None and theirs.tts._api_key is None  # type: ignore[attr-defined]
    flagged = from_config(tts_url="wss://elsewhere.test/live", api_key="sk-flag", environ=env)
    assert flagged.tts._api_key == "sk-flag"  # type: ignore[union-attr]


def test_a_lightning_url_needs_a_known_scheme() -> None:
    with pytest.raises(ConfigError, match="ws\\(s\\)://"):
        from_config(tts_url="ftp://h.test/tts", environ=NO_ENV)


def test_an_explicit_tts_wins_over_the_environment() -> None:
    chosen = from_config(tts="test", environ={"LIGHTNING_URL": "wss://x.test"})
    assert isinstance(chosen.tts, TestTTS)
    assert chosen.notes == ()


def test_without_espeak_offline_is_text_only_and_says_so(without_espeak: None) -> None:
    chosen = from_config(environ=NO_ENV)
    assert chosen.tts is None
    assert "text only" in chosen.description
    assert any("apt-get install espeak-ng" in note for note in chosen.notes)
    assert chosen.sample_rate == 24000


def test_naming_espeak_without_it_installed_fails(without_espeak: None) -> None:
    with pytest.raises(ConfigError, match="espeak-ng program was not found"):
        from_config(tts="espeak", environ=NO_ENV)


def test_importing_the_adapters_package_stays_light() -> None:
    code = (
        "import sys, voiceagent.adapters; "
        "print(sorted(m for m in sys.modules if m.startswith('voiceagent.adapters.') "
        "or m in ('numpy', 'openai', 'pydantic')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
