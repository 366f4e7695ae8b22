"""One socket per session, reopened transparently whenever the server closes it."""

from __future__ import annotations

import pytest
from websockets.protocol import State

from tests.lightning_rig import expected, speak, until
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer


async def test_a_close_after_complete_is_normal_and_the_next_segment_reconnects() -> None:
    async with LightningServer(voice="synthetic", close_after_complete=True) as server:
        async with LightningTTS(server.ws_url) as tts:
            heard = [await speak(tts, text) for text in ("One.", "Two.", "Three.")]
    assert heard == [expected("One."), expected("Two."), expected("Three.")]
    assert server.connections == 3
    assert [r.status for r in server.requests] == ["complete"] * 3


async def test_a_server_that_keeps_the_socket_open_carries_every_segment_on_one() -> None:
    async with LightningServer(voice="synthetic", close_after_complete=False) as server:
        async with LightningTTS(server.ws_url) as tts:
            for text in ("One.", "Two.", "Three."):
                assert await speak(tts, text) == expected(text)
    assert server.connections == 1
    assert len({r.request_id for r in server.requests}) == 3


async def test_an_idle_timeout_close_is_followed_by_a_transparent_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = LightningServer(voice="synthetic", close_after_complete=False, idle_timeout_s=0.3)
    async with server, LightningTTS(server.ws_url, keepalive_s=3600) as tts:
        assert await speak(tts, "Before.") == expected("Before.")
        await until(lambda: server.idle_closes > 0)
        assert await speak(tts, "After.") == expected("After.")
    assert (server.idle_closes, server.connections) == (1, 2)
    # The SDK's idle frame (a status and a message, nothing else) was read, logged, and
    # failed nothing: no request was live on the socket.
    assert "Connection timed out after 0.3 seconds of inactivity" in caplog.text


async def test_keepalives_hold_an_idle_socket_open_past_the_idle_timeout() -> None:
    server = LightningServer(voice="synthetic", close_after_complete=False, idle_timeout_s=1.0)
    async with server, LightningTTS(server.ws_url, keepalive_s=0.1) as tts:
        await speak(tts, "Before.")
        # At least 2.5 s idle, over twice the timeout.
        await until(lambda: server.keepalives >= 25, timeout_s=20)
        assert await speak(tts, "After.") == expected("After.")
    assert (server.idle_closes, server.connections) == (0, 1)


async def test_aclose_closes_a_socket_the_server_kept_open() -> None:
    # A phone call's TTS: left open, each call kept a connection and its keepalive task.
    async with LightningServer(voice="synthetic", close_after_complete=False) as server:
        tts = LightningTTS(server.ws_url)
        await speak(tts, "One.")
        ws = tts._ws
        assert ws is not None
        await tts.aclose()
        assert ws.state is State.CLOSED
