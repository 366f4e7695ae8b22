"""Frames are routed to their segment by ``external_request_id``, then ``request_id``, then
the one live request on the socket: the documented server names its own UUID in
``request_id`` and closes after ``complete``, and that close is no drop."""

from __future__ import annotations

import anyio

from tests.lightning_rig import expected, parts
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer

TEXTS = ("One.", "Two.", "Three.")


async def _speak(tts: LightningTTS, text: str) -> bytes:
    with anyio.fail_after(5):  # a segment that cannot be routed waits for ever
        return b"".join([pcm async for pcm in tts.synthesize(parts(text))])


async def test_a_documented_server_that_closes_after_complete_is_heard_once_per_segment() -> None:
    async with LightningServer(voice="synthetic") as server, LightningTTS(server.ws_url) as tts:
        heard = [await _speak(tts, text) for text in TEXTS]
    assert heard == [expected(text) for text in TEXTS]
    # each close after complete reopened a socket for the next segment; none was re-sent
    assert [r.text for r in server.requests] == list(TEXTS)
    assert [r.status for r in server.requests] == ["complete"] * 3
    assert server.connections == 3


async def test_a_documented_server_that_keeps_the_socket_open_carries_every_segment() -> None:
    server = LightningServer(voice="synthetic", close_after_complete=False)
    async with server, LightningTTS(server.ws_url) as tts:
        heard = [await _speak(tts, text) for text in TEXTS]
    assert heard == [expected(text) for text in TEXTS]
    assert server.connections == 1 and len(server.requests) == 3


async def test_frames_naming_none_of_our_ids_go_to_the_one_live_request() -> None:
    async with LightningServer(voice="synthetic", response_ids="uuid-only") as server:
        async with LightningTTS(server.ws_url) as tts:
            heard = [await _speak(tts, text) for text in TEXTS]
    assert heard == [expected(text) for text in TEXTS]
    assert [r.status for r in server.requests] == ["complete"] * 3


async def test_the_older_echoing_server_is_still_understood() -> None:
    async with LightningServer(voice="synthetic", response_ids="echo") as server:
        async with LightningTTS(server.ws_url) as tts:
            assert await _speak(tts, "Echo.") == expected("Echo.")
    assert [r.status for r in server.requests] == ["complete"]
