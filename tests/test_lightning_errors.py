"""Errors come back as LightningError, and the API key never shows anywhere."""

from __future__ import annotations

import logging

import pytest

from tests.lightning_rig import expected, speak
from voiceagent.adapters.lightning import LightningError, LightningTTS
from voiceagent.adapters.lightning_http import LightningHTTPTTS
from voiceagent.testing.lightning import LightningServer

SECRET = "sk-lightning-secret-4242"


async def test_an_error_frame_is_raised_as_a_typed_error_with_its_code() -> None:
    async with LightningServer(voice="synthetic") as server:
        server.faults.error_next(message="Voice not found", code="invalid_voice")
        async with LightningTTS(server.ws_url) as tts:
            with pytest.raises(LightningError) as caught:
                await speak(tts, "Hello.")
            assert await speak(tts, "Again.") == expected("Again.")  # the socket still serves
    assert caught.value.code == "invalid_voice" and "Voice not found" in str(caught.value)
    assert not caught.value.concurrency


async def test_a_wrong_key_is_refused_with_status_401() -> None:
    async with LightningServer(voice="synthetic", api_key="right") as server:
        async with LightningTTS(server.ws_url, api_key="wrong") as tts:
            with pytest.raises(LightningError) as caught:
                await speak(tts, "Hello.")
    assert caught.value.status == 401


async def test_an_error_naming_no_request_does_not_fail_a_segment_mid_speech() -> None:
    text = "Still speaking, whatever the stray error says."
    async with LightningServer(voice="synthetic", close_after_complete=False) as server:
        server.faults.stray_error_after(3)
        async with LightningTTS(server.ws_url) as tts:
            assert await speak(tts, text) == expected(text)
    assert [r.status for r in server.requests] == ["complete"]


async def test_an_error_naming_no_request_then_a_close_is_a_drop_and_the_segment_goes_again() -> (
    None
):
    text = "Heard whole after the server gave up on the socket."
    async with LightningServer(voice="synthetic", close_after_complete=False) as server:
        server.faults.stray_error_after(3, close=True)
        async with LightningTTS(server.ws_url) as tts:
            assert await speak(tts, text) == expected(text)
    assert [r.status for r in server.requests] == ["closed", "complete"]
    assert server.connections == 2


async def test_an_error_naming_no_request_fails_the_only_request_when_it_has_no_audio() -> None:
    async with LightningServer(voice="synthetic") as server:
        server.faults.error_next(message="Voice not found", code="invalid_voice", named=False)
        async with LightningTTS(server.ws_url) as tts:
            with pytest.raises(LightningError) as caught:
                await speak(tts, "Hello.")
    assert caught.value.code == "invalid_voice"


def test_unsupported_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        LightningTTS(sample_rate=22050)
    with pytest.raises(ValueError, match="speed"):
        LightningTTS(speed=3.0)
    with pytest.raises(ValueError, match="complete_backoff_ms"):
        LightningTTS(complete_backoff_ms=20000)


async def test_the_key_is_in_no_log_record_repr_or_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with LightningServer(voice="synthetic", api_key=SECRET) as server:
        async with LightningTTS(server.ws_url, api_key=SECRET) as tts:
            assert await speak(tts, "Private.") == expected("Private.")
            shown = [repr(tts), repr(server.requests), repr(LightningHTTPTTS(api_key=SECRET))]
        async with LightningTTS(server.ws_url, api_key=SECRET + "x") as wrong:
            with pytest.raises(LightningError) as caught:
                await speak(wrong, "Refused.")
            shown += [str(caught.value), repr(caught.value), repr(wrong)]
    assert "Authorization" in caplog.text  # websockets did log the handshake headers...
    assert SECRET not in caplog.text  # ...masked
    assert not [text for text in shown if SECRET in text]
