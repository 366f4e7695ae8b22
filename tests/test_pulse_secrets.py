"""The API key never appears in logs (websockets' debug lines included), reprs or errors."""

from __future__ import annotations

import logging

import anyio
import pytest
from pulse_rig import table_server

from voiceagent.adapters.pulse import PulseConnectionError, PulseServerError, PulseSTT

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


OTHER_KEY = "pk0123456789abcdef"  # not shaped like a key: only knowing it can mask it


@pytest.mark.parametrize("key", [KEY, OTHER_KEY])
async def test_a_refusal_that_echoes_the_request_headers_does_not_leak_the_key(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with table_server() as server:
        server.faults.refuse_upgrade(400, echo_headers=True)
        with pytest.raises(PulseConnectionError) as caught:
            async with PulseSTT(server.url, key).stream():
                pass
    assert caught.value.status == 400
    assert "Authorization" in str(caught.value)  # the server's body is kept, masked
    assert key not in str(caught.value) and key not in repr(caught.value)
    assert key not in caplog.text


@pytest.mark.parametrize("key", [KEY, OTHER_KEY])
async def test_an_error_frame_that_echoes_the_key_does_not_leak_it(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with table_server() as server:
        server.faults.error_after(1, f"bad key {key} (Authorization: Bearer {key})")
        async with PulseSTT(server.url, key).stream() as stream:
            await stream.send_audio(bytes(640) * 2)
            with pytest.raises(PulseServerError, match="bad key") as caught:
                with anyio.fail_after(10):
                    async for _ in stream.events():
                        pass
    assert key not in str(caught.value) and key not in caught.value.message
    assert key not in caplog.text
