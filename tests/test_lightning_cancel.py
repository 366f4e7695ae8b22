"""Barge-in: a cut segment sends LiveKit's ``cancel_request`` for its request, and none of its
late audio is heard. The socket is kept when the server names our ids in its frames (late
frames are told apart); a socket that never named them is closed, as before."""

from __future__ import annotations

import anyio

from tests.lightning_rig import expected, parts, speak, until
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer

LONG = "This answer is long enough to be interrupted well before its end. " * 3


async def _cut(tts: LightningTTS) -> None:
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        async for _ in tts.synthesize(parts(LONG)):
            scope.cancel()  # as the engine's barge-in does: cancel the consumer


async def test_a_cut_segment_is_cancelled_and_the_socket_carries_the_next_one() -> None:
    # pace=1: real-time sending, so most of the long answer is still to come at the cut.
    server = LightningServer(voice="synthetic", close_after_complete=False, pace=1.0)
    async with server, LightningTTS(server.ws_url) as tts:
        await _cut(tts)
        server.pace = 0.0
        assert await speak(tts, "Yes?") == expected("Yes?")
    cut, answer = server.requests  # none refused: the cancel freed the account's one slot
    assert cut.status == "cancelled" and cut.samples < len(expected(LONG)) // 2
    assert cut.cancel_message is not None
    assert cut.cancel_message["cancel_request"] is True
    assert cut.cancel_message["request_id"] == cut.request_id
    assert cut.cancel_message["voice_id"] == "sophia"  # the config rides along, as LiveKit's
    assert answer.status == "complete"
    assert server.connections == 1


async def test_a_cut_on_a_socket_that_never_named_our_ids_cancels_then_closes_it() -> None:
    server = LightningServer(
        voice="synthetic", close_after_complete=False, pace=1.0, response_ids="uuid-only"
    )
    async with server, LightningTTS(server.ws_url) as tts:
        await _cut(tts)
        server.pace = 0.0
        assert await speak(tts, "Yes?") == expected("Yes?")
    cut, answer = server.requests
    assert cut.status == "cancelled" and answer.status == "complete"
    assert server.connections == 2  # late frames without our ids could not be told apart


async def test_breaking_out_of_a_segment_cancels_its_request_too() -> None:
    server = LightningServer(voice="synthetic", close_after_complete=False, pace=1.0)
    async with server, LightningTTS(server.ws_url) as tts:
        with anyio.fail_after(10):
            audio = tts.synthesize(parts(LONG))
            async for _ in audio:
                break
            await audio.aclose()  # type: ignore[attr-defined]
        await until(lambda: server.requests[0].status != "active")
    assert server.requests[0].status == "cancelled"
