"""The account's one-request limit queues segments instead of failing them."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from tests.lightning_rig import expected, parts, speak
from voiceagent.adapters.lightning import LightningTTS
from voiceagent.testing.lightning import LightningServer


async def _both(tts: LightningTTS, first: str, second: str) -> dict[str, bytes]:
    heard: dict[str, bytes] = {}

    async def one(text: str) -> None:
        heard[text] = await speak(tts, text)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, first)
        await anyio.lowlevel.checkpoint()
        tg.start_soon(one, second)
    return heard


async def test_overlapping_segments_queue_behind_the_one_request_limit() -> None:
    async with LightningServer(voice="synthetic", account_limit=1) as server:
        async with LightningTTS(server.ws_url) as tts:
            heard = await _both(tts, "Let me check.", "It is sunny.")
    assert heard == {
        "Let me check.": expected("Let me check."),
        "It is sunny.": expected("It is sunny."),
    }
    assert server.max_active == 1
    assert [r.status for r in server.requests] == ["complete", "complete"]
    assert [r.text for r in server.requests] == ["Let me check.", "It is sunny."]


async def test_an_injected_concurrency_error_frame_is_retried_under_a_new_id() -> None:
    async with LightningServer(voice="synthetic") as server:
        server.faults.error_next(1)
        async with LightningTTS(server.ws_url) as tts:
            assert await speak(tts, "Queued, ", "not failed.") == expected("Queued, not failed.")
    refused, served = server.requests
    assert (refused.status, refused.error) == ("refused", "concurrency_limit")
    assert served.status == "complete" and served.text == "Queued, not failed."
    assert refused.request_id != served.request_id


async def test_a_limit_error_is_retried_when_our_active_request_ends() -> None:
    # Two slots on our side, one on the account: the second segment meets the limit's error
    # frame, waits for the first to end, and then goes through.
    async with LightningServer(voice="synthetic", account_limit=1) as server:
        async with LightningTTS(server.ws_url, max_concurrent=2) as tts:
            heard = await _both(tts, "First segment here.", "Second.")
    assert heard["Second."] == expected("Second.")
    assert heard["First segment here."] == expected("First segment here.")
    assert server.max_active == 1
    statuses = [r.status for r in server.requests]
    assert "refused" in statuses  # the limit's error frame was met, and retried
    assert statuses.count("complete") == 2


async def test_a_later_segments_first_chunk_ends_the_one_before() -> None:
    # Without a limit and with a long complete_backoff_ms, only the next segment's first
    # chunk can tell that the first is done.
    server = LightningServer(voice="synthetic", account_limit=0, close_after_complete=False)
    second_started = False

    async def second(tts: LightningTTS) -> None:
        async for _ in tts.synthesize(parts("Second.")):
            pass

    async with server, anyio.create_task_group() as tg:
        tts = LightningTTS(server.ws_url, max_concurrent=0, complete_backoff_ms=10000)
        heard = b""
        with anyio.fail_after(10):
            async for pcm in tts.synthesize(parts("First.")):
                heard += pcm
                if not second_started:
                    second_started = True
                    tg.start_soon(second, tts)
        tg.cancel_scope.cancel()  # the second would wait 10 s for its complete
        await tts.aclose()
    assert heard == expected("First.")
    assert [r.text for r in server.requests] == ["First.", "Second."]
