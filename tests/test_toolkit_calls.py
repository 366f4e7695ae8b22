"""ToolCall's state machine, and every bad input ending as a tool message the model can read."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from voiceagent.toolkit import (
    ToolCall,
    ToolCallState,
    ToolCallStateError,
    ToolExecutor,
    ToolRegistry,
    tool,
)

# --- the state machine -----------------------------------------------------------------

LEGAL = {
    ("pending", "start"),
    ("pending", "cancel"),
    ("running", "finish"),
    ("running", "fail"),
    ("running", "cancel"),
}
AFTER = {"start": "running", "finish": "done", "fail": "failed", "cancel": "cancelled"}


def _apply(call: ToolCall, action: str) -> None:
    if action == "start":
        call.start()
    elif action == "finish":
        call.finish("ok")
    elif action == "fail":
        call.fail("boom")
    else:
        call.cancel()


def test_a_new_call_is_pending_with_no_message_yet() -> None:
    call = ToolCall("call_1", "ping", '{"x": 1}', index=0, round=1)
    assert call.state is ToolCallState.PENDING
    assert (call.id, call.name, call.arguments, call.index, call.round) == (
        "call_1",
        "ping",
        '{"x": 1}',
        0,
        1,
    )
    with pytest.raises(ToolCallStateError, match="pending"):
        call.tool_message()


def test_the_happy_path_records_content_and_timestamps() -> None:
    call = ToolCall("call_1", "ping")
    call.start()
    assert call.state.value == "running"
    call.finish("pong")
    assert call.state is ToolCallState.DONE
    assert call.tool_message() == {"role": "tool", "tool_call_id": "call_1", "content": "pong"}
    assert call.started_at is not None and call.ended_at is not None
    assert call.started_at <= call.ended_at


def test_a_call_cancelled_before_it_started_has_a_cancelled_message() -> None:
    call = ToolCall("call_1", "ping")
    call.cancel()
    assert call.state is ToolCallState.CANCELLED
    assert call.started_at is None
    assert call.tool_message()["content"] == '{"error": "cancelled"}'


def test_a_failed_call_reads_as_an_error_object() -> None:
    call = ToolCall("call_1", "ping")
    call.start()
    call.fail("no such city")
    assert call.error == "no such city"
    assert json.loads(call.tool_message()["content"]) == {"error": "no such city"}


@given(st.lists(st.sampled_from(["start", "finish", "fail", "cancel"]), max_size=6))
def test_only_legal_transitions_succeed(actions: list[str]) -> None:
    call = ToolCall("c", "t")
    for action in actions:
        before = call.state.value
        if (before, action) in LEGAL:
            _apply(call, action)
            assert call.state.value == AFTER[action]
        else:
            with pytest.raises(ToolCallStateError):
                _apply(call, action)
            assert call.state.value == before  # an illegal move changes nothing
    assert (call.content is not None) == call.is_terminal


# --- bad inputs become failed calls with readable messages ------------------------------


class Receipt(BaseModel):
    total: float


@dataclasses.dataclass
class Slot:
    day: str
    hour: int


@tool(timeout=5)
def book(restaurant: str, people: int) -> str:
    """Book a table."""
    return f"booked {restaurant} for {people}"


@tool
def explode() -> str:
    """Always fails."""
    raise ValueError("the kitchen is on fire")


@tool(timeout=0.01)
async def hang() -> str:
    """Never answers."""
    await anyio.sleep_forever()
    return ""


@tool
def big() -> str:
    """A huge answer."""
    return "x" * 10_000


@tool
def as_dict() -> dict[str, Any]:
    """Structured."""
    return {"temp": 21, "sky": "clear", "city": "Pune"}


@tool
def as_list() -> list[int]:
    """A list."""
    return [1, 2, 3]


@tool
def as_model() -> Receipt:
    """A pydantic model."""
    return Receipt(total=12.5)


@tool
def as_dataclass() -> Slot:
    """A dataclass."""
    return Slot("mon", 19)


@tool
def as_number() -> int:
    """A number."""
    return 42


@tool
async def no_args() -> str:
    """Takes nothing."""
    return "fine"


REGISTRY = ToolRegistry(
    [book, explode, hang, big, as_dict, as_list, as_model, as_dataclass, as_number, no_args]
)


async def _run(name: str, arguments: str = "{}", result_cap: int = 4000) -> ToolCall:
    call = ToolCall("call_1", name, arguments)
    await ToolExecutor(REGISTRY, result_cap=result_cap).run(call)
    return call


def _error(call: ToolCall) -> str:
    assert call.state is ToolCallState.FAILED
    message = call.tool_message()
    assert message["role"] == "tool" and message["tool_call_id"] == "call_1"
    error: str = json.loads(message["content"])["error"]
    assert error == call.error
    return error


async def test_valid_arguments_run_the_tool() -> None:
    call = await _run("book", '{"restaurant": "Toit", "people": 4}')
    assert call.state is ToolCallState.DONE
    assert call.args == {"restaurant": "Toit", "people": 4}
    assert call.content == "booked Toit for 4"


async def test_invalid_json_fails_the_call() -> None:
    call = await _run("book", '{"restaurant": "Toit", "people": ')
    assert _error(call).startswith("arguments are not valid JSON")


async def test_arguments_that_are_not_an_object_fail_the_call() -> None:
    call = await _run("book", '["Toit", 4]')
    assert _error(call) == "arguments must be a JSON object, got list"


async def test_a_wrong_type_names_the_argument() -> None:
    call = await _run("book", '{"restaurant": "Toit", "people": "four"}')
    error = _error(call)
    assert error.startswith("invalid arguments: people: Input should be a valid integer")


async def test_a_missing_argument_names_it() -> None:
    call = await _run("book", '{"restaurant": "Toit"}')
    assert _error(call) == "invalid arguments: people: Field required"


async def test_an_unknown_tool_lists_the_known_ones() -> None:
    call = await _run("teleport", "{}")
    error = _error(call)
    assert error.startswith("unknown tool 'teleport'; the tools are: book, explode")


async def test_an_exception_gives_its_type_and_message() -> None:
    call = await _run("explode")
    assert _error(call) == "ValueError: the kitchen is on fire"


async def test_a_timeout_says_after_how_long() -> None:
    call = await _run("hang")
    assert _error(call) == "timed out after 0.01 s"


async def test_an_oversize_result_is_truncated_with_a_note() -> None:
    call = await _run("big", result_cap=100)
    assert call.state is ToolCallState.DONE
    assert call.content is not None
    assert call.content.startswith("x" * 100)
    assert "x" * 101 not in call.content
    assert call.content.endswith("[truncated: the first 100 of 10000 characters]")


async def test_empty_arguments_text_means_no_arguments() -> None:
    call = await _run("no_args", "")
    assert call.state is ToolCallState.DONE
    assert call.args == {}
    assert call.content == "fine"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("as_dict", {"temp": 21, "sky": "clear", "city": "Pune"}),
        ("as_list", [1, 2, 3]),
        ("as_model", {"total": 12.5}),
        ("as_dataclass", {"day": "mon", "hour": 19}),
        ("as_number", 42),
    ],
)
async def test_non_string_results_are_json(name: str, content: Any) -> None:
    call = await _run(name)
    assert call.state is ToolCallState.DONE
    assert call.content is not None
    assert json.loads(call.content) == content


async def test_an_already_ended_call_is_left_as_it_is() -> None:
    call = ToolCall("call_1", "book", '{"restaurant": "Toit", "people": 4}')
    call.cancel()
    await ToolExecutor(REGISTRY).run(call)
    assert call.state is ToolCallState.CANCELLED
