"""Phones: μ-law at 8 kHz goes to Pulse as it is, no resampling, and is transcribed."""

from __future__ import annotations

from pulse_rig import (
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

from voiceagent import audio
from voiceagent.adapters.pulse import PulseSTT
from voiceagent.ports import SpeechStarted

pytestmark = needs_espeak


async def test_mulaw_8k_is_sent_in_160_byte_frames_and_transcribed() -> None:
    caller = audio.ulaw_encode(padded(spoken(WEATHER, rate=8000), rate=8000))
    async with table_server() as server:  # the table learned the 16 kHz recording
        stt = PulseSTT(server.url, sample_rate=8000, encoding="mulaw")
        async with stt.stream() as stream:
            await send_in_chunks(stream, caller, chunk_bytes=160)
            events = await events_until(stream, is_final)
    recorded = server.connections[0]
    assert recorded.query["encoding"] == "mulaw" and recorded.query["sample_rate"] == "8000"
    assert {len(frame) for frame in recorded.frames} == {160}
    assert b"".join(recorded.frames) == caller[: len(b"".join(recorded.frames))]  # untouched
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert finals(events)[0].text == WEATHER
