"""A test's own STT stream seen through ``ports.STT``, and a ``TurnTaker`` that feeds it with
the real WebRTC VAD deciding the turns: the rig of the turn-taking tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from session_rig import RATE

from voiceagent.ports import STTEvent
from voiceagent.timeline import SessionClock
from voiceagent.turn_taking import TurnTaker


class QuietStream:
    """The part of an STT stream a test does not watch: no events; they end at ``close``."""

    def __init__(self) -> None:
        self._ended = anyio.Event()

    async def close(self) -> None:
        self._ended.set()

    async def events(self) -> AsyncIterator[STTEvent]:
        await self._ended.wait()
        return
        yield  # an async generator with no events


class OneStream:
    """An STT (PCM16 at ``RATE``) whose one stream is ``stream``."""

    sample_rate, encoding = RATE, "linear16"

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[Any]:
        yield self._stream


def turn_taker(
    stream: Any, on_speech: Callable[[float], None] = lambda at: None, **options: Any
) -> TurnTaker:
    """A ``TurnTaker`` on ``stream`` with WebRTC's VAD (300 ms of silence ends a turn)."""
    from voiceagent.adapters.vad_webrtc import WebRTCVAD

    return TurnTaker(
        SessionClock(),
        RATE,
        stt=OneStream(stream),
        vad=WebRTCVAD(RATE, min_silence_ms=300, min_speech_ms=150),
        end_of_turn_ms=0.0,
        publish=lambda event: None,
        on_speech=on_speech,
        **options,
    )
