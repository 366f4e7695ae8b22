"""Whatever chunk sizes it is given, the adapter sends binary frames of 20-100 ms."""

from __future__ import annotations

import pytest
from pulse_rig import WEATHER, needs_espeak, send_in_chunks, spoken, table_server

from voiceagent.adapters.pulse import PulseSTT


@needs_espeak
@pytest.mark.parametrize("frame_ms", [20, 100])
async def test_uneven_chunks_become_frames_of_20_to_100_ms(frame_ms: int) -> None:
    pcm = spoken(WEATHER)[:33334]  # not whole frames: the tail is padded on finalize
    async with table_server() as server:
        async with PulseSTT(server.url, frame_ms=frame_ms).stream() as stream:
            await send_in_chunks(stream, pcm, chunk_bytes=222)  # ~7 ms chunks
            await send_in_chunks(stream, pcm, chunk_bytes=10_662)  # ~333 ms chunks
            await stream.finalize()
            await stream.close()
            async for _ in stream.events():
                pass
    recorded = server.connections[0]
    assert recorded.frame_ms and set(recorded.frame_ms) == {float(frame_ms)}
    assert b"".join(recorded.frames).startswith(pcm + pcm)
    assert [m["type"] for m in recorded.control] == ["finalize", "close_stream"]


@needs_espeak
async def test_a_server_that_keeps_no_audio_still_transcribes_it() -> None:
    # record_audio=False (the CLI's: a process runs for hours and nobody reads its records)
    pcm = spoken(WEATHER)
    async with table_server(record_audio=False) as server:
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, pcm)
            await stream.finalize()
            await stream.close()
            texts = [e.text for e in [e async for e in stream.events()] if hasattr(e, "text")]
    recorded = server.connections[0]
    assert recorded.frames == [] and recorded.frame_ms == []
    assert WEATHER in " ".join(texts)
    assert [m["type"] for m in recorded.control] == ["finalize", "close_stream"]
