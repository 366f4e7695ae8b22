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
from voiceagent.ports import Transcript


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


async def test_a_bare_error_frame_is_a_server_error_with_its_message() -> None:
    # LiveKit stt.py:30 "Errors arrive as {"error": "..."}" and 602-606 (a server reached
    # directly); PROTOCOLS.md: "an error may also arrive as a bare {"error":"…"}"
    async with table_server() as server:
        server.faults.error_after(3, "decoder crashed", bare=True)
        async with PulseSTT(server.url).stream() as stream:
            for _ in range(5):
                await stream.send_audio(bytes(640))
            with pytest.raises(PulseServerError, match="decoder crashed") as caught:
                with anyio.fail_after(10):
                    async for _ in stream.events():
                        pass
    assert caught.value.message == "decoder crashed"
    assert server.connections[0].sent == [{"error": "decoder crashed"}]
    assert len(server.connections) == 1  # an error is not a drop: no reconnect


async def test_an_unknown_model_is_a_400_connection_error_with_the_servers_reason() -> None:
    async with table_server() as server:
        with pytest.raises(PulseConnectionError, match="model") as caught:
            async with PulseSTT(server.url, model="pulse-pro").stream():
                pass
    assert caught.value.status == 400
    assert server.connections == []  # refused before the upgrade, and not retried


async def test_pulse_2_streams_through_the_adapter() -> None:
    async with table_server() as server:
        async with PulseSTT(server.url, model="pulse-2").stream() as stream:
            await stream.send_audio(bytes(640))
            await stream.close()
            with anyio.fail_after(10):
                events = [event async for event in stream.events()]
    assert events[-1] == Transcript("", is_final=True, is_last=True)
    assert server.connections[0].query["model"] == "pulse-2"
