"""A dropped socket is re-opened with the same query and the unfinished utterance re-sent."""

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
    wait_for,
)

from voiceagent.adapters.pulse import PulseSTT
from voiceagent.ports import Transcript

pytestmark = needs_espeak


async def test_a_drop_mid_utterance_loses_no_words() -> None:
    async with table_server() as server:
        server.faults.drop_after(30)  # 600 ms in: inside the speech
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, padded(spoken(WEATHER)))
            events = await events_until(stream, is_final)
            assert stream.reconnects == 1
    assert finals(events) == [Transcript(WEATHER, is_final=True)]
    first, second = server.connections
    assert first.dropped and not second.dropped
    assert first.query == second.query


async def test_after_a_drop_a_finished_utterance_is_not_sent_again() -> None:
    async with table_server() as server:
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, padded(spoken(WEATHER)))
            events = await events_until(stream, is_final)
            assert server.drop_all() == 1
            await send_in_chunks(stream, padded(spoken(BOOKING)))
            events += await events_until(stream, is_final)
    assert [f.text for f in finals(events)] == [WEATHER, BOOKING]
    second = server.connections[1]
    assert [m["transcript"] for m in second.sent_of("transcription") if m["is_final"]] == [BOOKING]


async def test_a_finalize_unanswered_at_a_drop_is_sent_again() -> None:
    async with table_server(eou_timeout_ms=5000) as server:
        server.faults.delay_finals(60_000)  # the from_finalize final is held back...
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, padded(spoken(BOOKING), after_ms=100))
            await stream.finalize()
            await wait_for(lambda: server.connections[0].control != [])
            server.faults.clear()
            server.drop_all()  # ...and the socket drops before it is sent
            events = await events_until(stream, is_final)
    assert finals(events) == [Transcript(BOOKING, is_final=True, from_finalize=True)]
    assert server.connections[1].control == [{"type": "finalize"}]
