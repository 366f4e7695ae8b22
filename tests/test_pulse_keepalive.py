"""After a while without audio the adapter keeps the socket alive with silent frames."""

from __future__ import annotations

import pytest
from pulse_rig import table_server, wait_for

from voiceagent.adapters.pulse import PulseSTT


@pytest.mark.parametrize(
    ("encoding", "rate", "silent"), [("linear16", 16000, 0), ("mulaw", 8000, 0xFF)]
)
async def test_silence_in_the_streams_encoding_is_sent_after_inactivity(
    encoding: str, rate: int, silent: int
) -> None:
    async with table_server() as server:
        stt = PulseSTT(server.url, sample_rate=rate, encoding=encoding, keepalive_after_s=0.05)
        async with stt.stream():
            await wait_for(lambda: sum(len(c.frames) for c in server.connections) >= 3)
    recorded = server.connections[0]
    assert all(frame == bytes([silent]) * len(frame) for frame in recorded.frames)
    assert set(recorded.frame_ms) == {20.0}


async def test_no_keepalive_while_audio_flows() -> None:
    async with table_server() as server:
        stt = PulseSTT(server.url, keepalive_after_s=3600)
        async with stt.stream() as stream:
            await stream.send_audio(bytes([1, 0]) * 1600)
            await wait_for(lambda: sum(len(c.frames) for c in server.connections) >= 5)
    assert all(frame != bytes(len(frame)) for frame in server.connections[0].frames)
