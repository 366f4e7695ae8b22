"""Partials, endpointed finals, finalize and close_stream through the adapter."""

from __future__ import annotations

from pulse_rig import (
    BOOKING,
    WEATHER,
    events_until,
    finals,
    is_final,
    needs_espeak,
    padded,
    send_in_chunks,
    spoken,
    table_server,
)

from voiceagent.adapters.pulse import PulseSTT
from voiceagent.ports import Transcript

pytestmark = needs_espeak


async def test_partials_grow_then_one_final_ends_the_utterance() -> None:
    async with table_server() as server:
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, padded(spoken(WEATHER)))
            events = await events_until(stream, is_final)
    texts = [e for e in events if isinstance(e, Transcript)]
    partials, final = texts[:-1], texts[-1]
    assert len(partials) >= 2 and all(not p.is_final for p in partials)
    assert all(WEATHER.startswith(p.text) for p in partials)
    assert [len(p.text) for p in partials] == sorted(len(p.text) for p in partials)
    assert final == Transcript(WEATHER, is_final=True)


async def test_finalize_answers_with_a_from_finalize_final_and_the_socket_stays_open() -> None:
    async with table_server(eou_timeout_ms=2000) as server:
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, padded(spoken(WEATHER), after_ms=100))
            await stream.finalize()
            first = finals(await events_until(stream, is_final))
            await send_in_chunks(stream, padded(spoken(BOOKING), after_ms=100))
            await stream.finalize()
            second = finals(await events_until(stream, is_final))
    assert first == [Transcript(WEATHER, is_final=True, from_finalize=True)]
    assert second == [Transcript(BOOKING, is_final=True, from_finalize=True)]
    assert len(server.connections) == 1


async def test_close_stream_answers_is_last_then_the_events_end() -> None:
    async with table_server(eou_timeout_ms=2000) as server:
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, padded(spoken(BOOKING), after_ms=100))
            await stream.close()
            events = await events_until(stream, lambda _: False)  # runs to the end
    last = [e for e in events if isinstance(e, Transcript)][-1]
    assert last == Transcript(BOOKING, is_final=True, is_last=True)
    assert server.connections[0].control[-1] == {"type": "close_stream"}
    assert server.connections[0].close_code == 1000
