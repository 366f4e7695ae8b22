"""Choosing the TTS by the configuration table: --tts, then --tts-url / LIGHTNING_URL, then
SMALLEST_API_KEY, then offline; what is not built yet fails or falls back, never silently."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from voiceagent import NotAvailableYet
from voiceagent.adapters import ConfigError, from_config
from voiceagent.adapters.config import OUTPUT_RATE, espeak_voice
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
        ({"tts": "lightning"}, "--tts lightning is not available yet: it arrives with the Light"),
        ({"tts": "lightning-http"}, "--tts lightning-http is not available yet"),
        ({"tts": "piper"}, "--tts piper is not available yet: it arrives with the piper"),
        ({"tts_url": "wss://example.test/tts"}, "--tts-url .* not available yet"),
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


@pytest.mark.parametrize("variable", ["LIGHTNING_URL", "SMALLEST_API_KEY"])
def test_an_environment_choice_not_built_yet_falls_back_and_says_so(
    variable: str, without_espeak: None
) -> None:
    secret = "sk-secret-value-123"
    chosen = from_config(environ={variable: secret})
    assert chosen.tts is None
    assert any(variable in note and "not available yet" in note for note in chosen.notes)
    assert secret not in chosen.description + " ".join(chosen.notes)


def test_lightning_url_wins_over_the_api_key_in_the_note(without_espeak: None) -> None:
    chosen = from_config(environ={"LIGHTNING_URL": "wss://x.test", "SMALLEST_API_KEY": "sk-1"})
    assert "LIGHTNING_URL" in chosen.notes[0]


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
