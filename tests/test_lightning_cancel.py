"""Barge-in: a cancelled segment closes the socket and none of its late audio is heard."""

from __future__ import annotations

import anyio

from tests.lightning_rig import expected, parts, speak, until
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer

LONG = "This answer is long enough to be interrupted well before its end. " * 3


async def test_a_cancelled_segment_leaves_no_audio_for_the_next_one() -> None:
    # pace=1: real-time sending, so most of the long answer is still to come at the cancel.
    server = LightningServer(voice="synthetic", close_after_complete=False, pace=1.0)
    async with server, LightningTTS(server.ws_url) as tts:
        with anyio.fail_after(10), anyio.CancelScope() as scope:
            async for _ in tts.synthesize(parts(LONG)):
                scope.cancel()  # as the engine's barge-in does: cancel the consumer
        server.pace = 0.0
        assert await speak(tts, "Yes?") == expected("Yes?")
    cut, *refused, answer = server.requests  # refused: the server had not seen the close yet
    assert cut.status == "closed" and cut.samples < len(expected(LONG)) // 2
    assert answer.status == "complete" and {r.status for r in refused} <= {"refused"}
    assert server.connections == 2  # the cancel closed the socket; reopened lazily


async def test_breaking_out_of_a_segment_stops_its_request_too() -> None:
    server = LightningServer(voice="synthetic", close_after_complete=False, pace=1.0)
    async with server, LightningTTS(server.ws_url) as tts:
        with anyio.fail_after(10):
            audio = tts.synthesize(parts(LONG))
            async for _ in audio:
                break
            await audio.aclose()  # type: ignore[attr-defined]
        await until(lambda: server.requests[0].status != "active")
    assert server.requests[0].status == "closed"
