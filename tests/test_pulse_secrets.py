"""The API key never appears in logs (websockets' debug lines included), reprs or errors."""

from __future__ import annotations

import logging

import anyio
import pytest
from pulse_rig import table_server

from voiceagent.adapters.pulse import PulseConnectionError, PulseSTT

KEY = "sk-live-0123456789abcdef"


async def test_the_key_is_not_in_debug_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with table_server(api_key=KEY) as server:
        stt = PulseSTT(server.url, KEY, keepalive_after_s=0.01)
        async with stt.stream() as stream:
            await stream.send_audio(bytes(640))
            await anyio.sleep(0.05)
            text = repr(stt) + repr(stream)
        server.drop_all()
        with pytest.raises(PulseConnectionError) as caught:
            async with PulseSTT(server.url, KEY + "-wrong").stream():
                pass
    assert "Authorization" in caplog.text  # the upgrade was logged, but redacted
    assert KEY not in caplog.text
    assert KEY not in text and "api_key=set" in text
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert all(KEY not in str(v) for c in server.connections for v in c.headers.values())
