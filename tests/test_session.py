"""Sessions end to end: spoken questions from a WAV through VAD, whisper, the engine and TTS
into a reply WAV, with a transcript; barge-in leaves history equal to what was heard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from session_rig import RATE, conversation_wav, needs_offline

from voiceagent.adapters.wav_transport import WavTransport
from voiceagent.agent import Agent
from voiceagent.audio import read_wav
from voiceagent.history import validate_messages
from voiceagent.llm import ElectronClient
from voiceagent.session import Session
from voiceagent.session_events import BargeIn, SessionEvent, TurnEnded
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.tts import TestTTS
from voiceagent.timeline import SessionClock
from voiceagent.tools import calculate, current_time


async def run_session(
    wav: Path,
    out: Path,
    transcript: Path,
    *,
    script: list[dict[str, Any]] | None = None,
    ms_per_char: float = 10.0,
    idle_timeout_s: float = 2.0,
) -> tuple[Session, list[SessionEvent]]:
    from voiceagent.adapters.vad_webrtc import WebRTCVAD
    from voiceagent.adapters.whisper import WhisperSTT

    async with ElectronServer(script=script) as server:
        clock = SessionClock()
        agent = Agent(instructions="Answer briefly.", tools=[calculate, current_time])
        session = Session(
            agent,
            WavTransport(wav, out, output_rate=RATE, origin=clock.origin),
            stt=WhisperSTT(),
            tts=TestTTS(RATE, first_byte_ms=20, ms_per_char=ms_per_char),
            vad=WebRTCVAD(RATE, min_silence_ms=300, min_speech_ms=150),
            llm=ElectronClient(server.base_url),
            idle_timeout_s=idle_timeout_s,
            reprompt=None,
            transcript=transcript,
            clock=clock,
        )
        seen: list[SessionEvent] = []

        async def watch() -> None:
            async for event in session.events():
                seen.append(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await session.run()
    return session, seen


@needs_offline
async def test_a_spoken_conversation_produces_a_reply_wav_and_a_transcript(
    tmp_path: Path,
) -> None:
    wav = conversation_wav(
        tmp_path / "questions.wav",
        [(0.3, "what is twelve times seven"), (5.0, "what time is it")],
        total_s=8.0,
    )
    out, transcript = tmp_path / "reply.wav", tmp_path / "transcript.jsonl"
    session, events = await run_session(wav, out, transcript)
    assert session.ended == "idle"
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    users = [line["text"].lower() for line in lines if line["who"] == "user"]
    agents = [line["text"] for line in lines if line["who"] == "agent" and line["heard"]]
    assert len(users) == 2 and "times" in users[0] and "time" in users[1]
    assert len(agents) == 2 and "84" in agents[0]
    validate_messages(session.history.messages())
    turns = [e.result for e in events if isinstance(e, TurnEnded)]
    for turn in turns:
        kinds = [e.kind for e in turn.timeline.events]
        order = [kinds.index(k) for k in ("user.speech_end", "stt.final", "llm.request")]
        assert order == sorted(order)
        assert turn.timeline.metrics()["first_audio_ms"] is not None
    pcm, rate = read_wav(out)
    assert rate == RATE and np.abs(np.frombuffer(pcm, np.int16)).max() > 0


@needs_offline
async def test_speech_while_the_agent_talks_cuts_it_and_history_keeps_what_was_heard(
    tmp_path: Path,
) -> None:
    long_answer = (
        "Here is a long answer. It goes on for quite a while, with many words, so that "
        "the caller has plenty of time to interrupt it before it reaches its end."
    )
    script = [{"text": long_answer}, {"text": "Sure, go ahead."}]
    # the interruption comes 6 s in: the answer (about 10 s of speech) has begun by then even
    # when whisper is slow on a loaded machine (at 3.5 s it once had not: no barge-in at all)
    wav = conversation_wav(
        tmp_path / "barge.wav",
        [(0.3, "tell me something"), (6.0, "stop please")],
        total_s=10.5,
    )
    out, transcript = tmp_path / "reply.wav", tmp_path / "transcript.jsonl"
    session, events = await run_session(wav, out, transcript, script=script, ms_per_char=60)
    (barge,) = [e for e in events if isinstance(e, BargeIn)]
    first = next(e.result for e in events if isinstance(e, TurnEnded))
    assert first.reason == "cancelled"
    assert first.heard and long_answer.startswith(first.heard.rstrip("."))
    assert len(first.heard) < len(long_answer)
    assistant = [m for m in session.history.messages() if m["role"] == "assistant"]
    assert assistant[0]["content"] == first.heard  # history holds only what was heard
    validate_messages(session.history.messages())
    # the speaker went quiet from its next block: nothing of the cut answer after the cut
    pcm, _ = read_wav(out)
    samples = np.frombuffer(pcm, np.int16)
    cut = int((barge.at_ms + 60) * RATE / 1000)  # a block or two after the barge-in
    resume = next(
        int(e.at_ms * RATE / 1000)
        for e in events
        if type(e).__name__ == "TurnStarted" and e.at_ms > barge.at_ms  # type: ignore[union-attr]
    )
    assert not samples[cut:resume].any()
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert any(line["who"] == "agent" and not line["heard"] for line in lines)
