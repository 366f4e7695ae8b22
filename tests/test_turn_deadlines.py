"""A turn never goes quiet for good: a model that stops answering is retried while nothing
of its reply was used, and once some was spoken the turn speaks its apology instead."""

from __future__ import annotations

from turn_rig import Rig, turn_rig

from voiceagent.history import validate_messages
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.turn import APOLOGY

REPLY = "Here is the news. It is sunny all week."


def with_deadlines(rig: Rig, **deadlines: float) -> None:
    rig.engine.llm = ElectronClient(
        rig.server.base_url, retry=RetryPolicy(max_attempts=3, scale=0.001), **deadlines
    )


async def test_a_model_silent_after_accepting_is_asked_again_and_answers() -> None:
    async with turn_rig([{"text": REPLY}]) as rig:
        with_deadlines(rig, first_token_timeout=0.5)
        rig.server.faults.pause_after(chunks=1, seconds=30)  # accepts, then says nothing
        result = await rig.engine.run("News?")
    assert result.reason == "completed" and result.heard == REPLY
    assert len(rig.server.requests) == 2
    assert APOLOGY not in result.said


async def test_a_model_that_never_answers_ends_in_the_apology() -> None:
    async with turn_rig([{"text": REPLY}]) as rig:
        with_deadlines(rig, first_token_timeout=0.2)
        rig.server.faults.pause_after(chunks=1, seconds=30, times=3)
        result = await rig.engine.run("News?")
    assert result.reason == "error" and result.heard == APOLOGY
    assert len(rig.server.requests) == 3
    validate_messages(rig.history.messages())


async def test_a_model_that_stalls_mid_reply_is_not_retried_and_the_turn_apologises() -> None:
    async with turn_rig([{"text": REPLY}]) as rig:
        with_deadlines(rig, stall_timeout=0.2)
        rig.server.faults.pause_after(chunks=5, seconds=30)  # role, "Here is the news."
        result = await rig.engine.run("News?")
    assert result.reason == "error"
    assert result.said == f"Here is the news. {APOLOGY}"
    assert result.heard.endswith(APOLOGY) and len(rig.server.requests) == 1
    validate_messages(rig.history.messages())


async def test_a_trickle_of_tokens_slower_than_the_stall_timeout_ends_in_the_apology() -> None:
    async with turn_rig([{"text": REPLY}], token_ms=1000) as rig:
        with_deadlines(rig, stall_timeout=0.2)
        result = await rig.engine.run("News?")
    assert result.reason == "error" and result.heard.endswith(APOLOGY)
    assert len(rig.server.requests) == 1
