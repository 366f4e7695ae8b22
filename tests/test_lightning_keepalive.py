"""The adapter's keepalive is pipecat's JSON form, which the server does not bill as a request."""

from __future__ import annotations

from tests.lightning_rig import expected, speak, until
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer


async def test_keepalives_are_json_messages_with_the_voice_settings_and_a_space() -> None:
    server = LightningServer(voice="synthetic", close_after_complete=False)
    async with server, LightningTTS(server.ws_url, keepalive_s=0.05) as tts:
        assert await speak(tts, "Before.") == expected("Before.")
        await until(lambda: server.keepalives >= 3)
        assert await speak(tts, "After.") == expected("After.")
    assert server.last_keepalive == {
        "text": " ",
        "voice_id": "sophia",
        "model": "lightning_v3.1",
        "language": "en",
    }
    assert [r.text for r in server.requests] == ["Before.", "After."]
    assert server.connections == 1
