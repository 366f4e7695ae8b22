"""Pulse's refusals and error frames reach the app as typed errors."""

from __future__ import annotations

import anyio
import pytest
from pulse_rig import table_server

from voiceagent.adapters.pulse import (
    PulseConcurrencyError,
    PulseConnectionError,
    PulseError,
    PulseServerError,
    PulseSTT,
)


async def test_close_1008_over_the_concurrency_limit_is_a_concurrency_error() -> None:
    async with table_server(concurrency=1) as server:
        stt = PulseSTT(server.url)
        async with stt.stream():
            with pytest.raises(PulseConcurrencyError, match="concurrency limit"):
                async with stt.stream() as second:
                    with anyio.fail_after(10):
                        async for _ in second.events():
                            pass
    assert server.connections[1].close_code == 1008


async def test_the_concurrency_error_also_stops_sending() -> None:
    async with table_server() as server:
        server.faults.refuse_next()
        with pytest.raises(PulseConcurrencyError):
            async with PulseSTT(server.url).stream() as stream:
                with anyio.fail_after(10):
                    while True:  # audio keeps going until the refusal is seen
                        await stream.send_audio(bytes(640))
                        await anyio.sleep(0.005)
    assert len(server.connections) == 1  # a refusal is not retried


async def test_an_error_frame_is_a_server_error_with_its_message() -> None:
    async with table_server() as server:
        server.faults.error_after(3, "model overloaded")
        async with PulseSTT(server.url).stream() as stream:
            for _ in range(5):
                await stream.send_audio(bytes(640))
            with pytest.raises(PulseServerError, match="model overloaded") as caught:
                with anyio.fail_after(10):
                    async for _ in stream.events():
                        pass
    assert caught.value.message == "model overloaded"
    assert len(server.connections) == 1


async def test_a_configuration_the_server_refuses_is_a_server_error() -> None:
    async with table_server() as server:
        stt = PulseSTT(server.url, extra_query={"eou_timeout_ms": 5})
        with pytest.raises(PulseServerError, match="eou_timeout_ms"):
            async with stt.stream() as stream:
                with anyio.fail_after(10):
                    async for _ in stream.events():
                        pass


async def test_a_refused_upgrade_is_a_connection_error_with_its_status() -> None:
    async with table_server(api_key="sk-right") as server:
        with pytest.raises(PulseConnectionError) as caught:
            async with PulseSTT(server.url, "sk-wrong").stream():
                pass
    assert caught.value.status == 401
    assert isinstance(caught.value, PulseError)


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="20-100 ms"):
        PulseSTT(frame_ms=10)
    with pytest.raises(ValueError, match="encoding"):
        PulseSTT(encoding="mp3")
