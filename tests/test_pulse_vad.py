"""vad_events from the server's real VAD reach the app as SpeechStarted/SpeechEnded, in order."""

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

from voiceagent import audio
from voiceagent.adapters.pulse import PulseSTT
from voiceagent.ports import SpeechEnded, SpeechStarted, Transcript

pytestmark = needs_espeak


async def test_speech_started_then_speech_ended_around_each_utterance() -> None:
    first, second = padded(spoken(WEATHER), before_ms=500), padded(spoken(BOOKING))
    async with table_server() as server:
        async with PulseSTT(server.url).stream() as stream:
            await send_in_chunks(stream, first)
            events = await events_until(stream, ended)
            await send_in_chunks(stream, second)
            events += await events_until(stream, ended)
    vad = [e for e in events if isinstance(e, (SpeechStarted, SpeechEnded))]
    assert [type(e) for e in vad] == [SpeechStarted, SpeechEnded] * 2
    assert [e.at_ms for e in vad] == sorted(e.at_ms for e in vad)
    first_ms = audio.pcm_duration_ms(first, 16000)
    assert 400 <= vad[0].at_ms < vad[1].at_ms <= first_ms  # within the speech, not the padding
    assert first_ms <= vad[2].at_ms  # on the stream's own clock: after all of the first
    # the endpointing final comes inside its utterance, just before speech_ended (both fire
    # on one silence window; LiveKit's plugin opens a turn on a final with words)
    kinds = [type(e) for e in events if not (isinstance(e, Transcript) and not e.is_final)]
    assert kinds == [SpeechStarted, Transcript, SpeechEnded] * 2
    assert [f.text for f in finals(events)] == [WEATHER, BOOKING]


def ended(event: object) -> bool:
    return isinstance(event, SpeechEnded)


async def test_no_speech_events_when_vad_events_is_off() -> None:
    async with table_server() as server:
        async with PulseSTT(server.url, vad_events=False).stream() as stream:
            await send_in_chunks(stream, padded(spoken(WEATHER)))
            events = await events_until(stream, is_final)
    assert not [e for e in events if isinstance(e, (SpeechStarted, SpeechEnded))]
    assert finals(events)[0].text == WEATHER
