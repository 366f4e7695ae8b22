"""History: the stable prefix, turns, trimming by whole turns, prefix checks, message rules."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voiceagent.history import History, validate_messages

INSTRUCTIONS = "You are a friendly voice assistant.\n  Keep answers short.  "


def call(
    call_id: str, name: str = "get_weather", arguments: str = '{"city": "Paris"}'
) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_round(*ids: str, content: str | None = "One moment.") -> list[dict[str, Any]]:
    """An assistant message calling tools ``ids`` and the tool messages answering them."""
    assistant = {"role": "assistant", "content": content, "tool_calls": [call(i) for i in ids]}
    answers = [{"role": "tool", "tool_call_id": i, "content": '{"ok": true}'} for i in ids]
    return [assistant, *answers]


def reply(text: str = "It is sunny.") -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# --- the list ---------------------------------------------------------------------------


def test_instructions_are_the_first_system_message_verbatim() -> None:
    history = History(INSTRUCTIONS)
    assert history.messages() == [{"role": "system", "content": INSTRUCTIONS}]


def test_context_is_a_second_system_message_before_the_turns() -> None:
    history = History(INSTRUCTIONS, context="Opening hours: 9 to 5.")
    history.add_user("Hi")
    assert history.messages() == [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "system", "content": "Opening hours: 9 to 5."},
        user("Hi"),
    ]


def test_a_turn_is_the_user_message_then_its_committed_messages() -> None:
    history = History(INSTRUCTIONS)
    history.add_user("Weather in Paris?")
    history.commit([*tool_round("c1"), reply()])
    history.add_user("Thanks")
    history.commit([reply("You're welcome.")])
    assert history.turns == [
        [user("Weather in Paris?"), *tool_round("c1"), reply()],
        [user("Thanks"), reply("You're welcome.")],
    ]
    validate_messages(history.messages())


def test_commits_of_one_turn_are_appended_in_order() -> None:
    history = History(INSTRUCTIONS)
    history.add_user("Weather?")
    history.commit(tool_round("c1"))
    history.commit([reply()])
    assert history.turns == [[user("Weather?"), *tool_round("c1"), reply()]]


def test_a_greeting_is_a_turn_without_a_user_message() -> None:
    history = History(INSTRUCTIONS)
    history.commit([reply("Hello! How can I help?")])
    history.add_user("Book a table")
    assert history.turns == [[reply("Hello! How can I help?")], [user("Book a table")]]
    assert history.messages()[1] == reply("Hello! How can I help?")
    validate_messages(history.messages())


def test_new_turn_starts_a_turn_without_a_user_message_mid_conversation() -> None:
    history = History(INSTRUCTIONS)
    history.add_user("Hi")
    history.commit([reply("Hello.")])
    history.commit([reply("Are you still there?")], new_turn=True)
    assert len(history.turns) == 2
    assert history.turns[1] == [reply("Are you still there?")]


def test_an_empty_commit_changes_nothing() -> None:
    history = History(INSTRUCTIONS)
    history.commit([], new_turn=True)
    assert history.turns == []


def test_commit_refuses_a_unit_with_an_unanswered_tool_call() -> None:
    history = History(INSTRUCTIONS)
    history.add_user("Weather?")
    with pytest.raises(ValueError, match="not answered"):
        history.commit(tool_round("c1")[:1])
    assert history.turns == [[user("Weather?")]]


def test_commit_refuses_user_and_system_messages() -> None:
    history = History(INSTRUCTIONS)
    with pytest.raises(ValueError, match="assistant and tool messages only"):
        history.commit([user("sneaky")])


def test_the_list_returned_is_a_copy() -> None:
    history = History(INSTRUCTIONS)
    history.add_user("Hi")
    unit = tool_round("c1")
    history.commit(unit)
    unit[0]["tool_calls"][0]["id"] = "changed"
    history.messages()[1]["content"] = "changed"
    history.turns[0].clear()
    assert history.messages()[1:] == [user("Hi"), *tool_round("c1")]


def test_messages_of_each_turn_are_a_prefix_of_the_next_turns() -> None:
    history = History(INSTRUCTIONS, context="Static facts.")
    previous = history.messages()
    for n in range(20):
        history.add_user(f"question {n}")
        history.commit([*tool_round(f"c{n}"), reply(f"answer {n}")])
        current = history.messages()
        assert current[: len(previous)] == previous
        previous = current


def test_estimated_tokens_are_json_characters_over_four_with_the_tools() -> None:
    history = History(INSTRUCTIONS, context="ctx")
    history.add_user("Hello there")
    history.commit([*tool_round("c1", content=None), reply("Hé, ça va?")])
    text = json.dumps(history.messages(), ensure_ascii=False)
    assert history.estimated_tokens == -(-len(text) // 4)
    tools = '[{"type": "function"}]'
    history.check_prefix(tools)
    assert history.estimated_tokens == -(-(len(text) + len(tools)) // 4)


# --- trimming ---------------------------------------------------------------------------


def test_201_messages_are_trimmed_to_200_by_whole_turns() -> None:
    history = History(INSTRUCTIONS)
    # 1 system message + 50 turns of 4 messages = 201.
    for n in range(50):
        history.add_user(f"q{n}")
        history.commit([*tool_round(f"c{n}"), reply(f"a{n}")])
    messages = history.messages()
    assert len(messages) <= 200
    assert messages[0] == {"role": "system", "content": INSTRUCTIONS}
    assert messages[1] == user("q1")  # exactly the oldest whole turn went
    validate_messages(messages)


def test_trimming_logs_what_was_dropped(caplog: pytest.LogCaptureFixture) -> None:
    history = History(INSTRUCTIONS, max_messages=4)
    history.add_user("one")
    history.commit([reply()])
    with caplog.at_level(logging.INFO, logger="voiceagent.history"):
        history.add_user("two")
        history.commit([reply()])
    records = [r for r in caplog.records if r.name == "voiceagent.history"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert "dropped the 1 oldest turn(s) (2 messages)" in records[0].getMessage()


def test_trimming_never_splits_a_tool_call_from_its_answers() -> None:
    history = History(INSTRUCTIONS, max_messages=8)
    for n in range(6):
        history.add_user(f"q{n}")
        history.commit([*tool_round(f"a{n}", f"b{n}"), reply()])
        validate_messages(history.messages())
        assert len(history.messages()) <= 8


def test_trimming_by_tokens_keeps_the_estimate_under_the_budget() -> None:
    history = History("sys", max_tokens=1000, reserve_tokens=200)
    for n in range(30):
        history.add_user("x" * 300 + str(n))
        history.commit([reply("y" * 100)])
        assert history.estimated_tokens <= 800
    assert history.turns[-1][0]["content"].endswith("29")


def test_the_tools_catalog_counts_towards_the_token_budget() -> None:
    history = History("sys", max_tokens=1000, reserve_tokens=200)
    for n in range(3):
        history.add_user("x" * 400 + str(n))
    assert len(history.turns) == 3
    history.check_prefix("t" * 2400)
    assert len(history.turns) == 1
    assert history.estimated_tokens <= 800


def test_the_current_turn_is_never_dropped(caplog: pytest.LogCaptureFixture) -> None:
    history = History("sys", max_tokens=100, reserve_tokens=10)
    history.add_user("short")
    with caplog.at_level(logging.WARNING, logger="voiceagent.history"):
        history.add_user("z" * 1000)
    assert history.turns == [[user("z" * 1000)]]
    assert "only the current turn left" in caplog.text


def test_trimming_never_drops_the_system_messages() -> None:
    history = History(INSTRUCTIONS, context="ctx", max_messages=4)
    for n in range(5):
        history.add_user(f"q{n}")
        history.commit([reply()])
    assert history.messages()[:2] == [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "system", "content": "ctx"},
    ]
    assert len(history.messages()) == 4


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="reserve_tokens"):
        History("sys", max_tokens=100, reserve_tokens=100)
    with pytest.raises(ValueError, match="max_messages"):
        History("sys", max_messages=2)


# --- the prefix check -------------------------------------------------------------------


def test_an_unchanged_prefix_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    history = History(INSTRUCTIONS, context="ctx")
    with caplog.at_level(logging.WARNING, logger="voiceagent.history"):
        assert history.check_prefix("[]") is False  # the first request has nothing to differ from
        history.add_user("Hi")
        assert history.check_prefix("[]") is False
    assert caplog.records == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("instructions", "instructions"),
        ("context", "context"),
        ("tools", "tools"),
    ],
)
def test_a_changed_prefix_is_a_warning_naming_the_part(
    change: str, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    history = History(INSTRUCTIONS, context="ctx")
    history.check_prefix('[{"name": "a"}]')
    history.add_user("Hi")
    tools = '[{"name": "a"}]'
    if change == "instructions":
        history.instructions = INSTRUCTIONS + " It is 14:05."
    elif change == "context":
        history.context = "ctx, today"
    else:
        tools = '[{"name": "b"}]'
    with caplog.at_level(logging.WARNING, logger="voiceagent.history"):
        assert history.check_prefix(tools) is True
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.WARNING
    assert f"({named})" in caplog.records[0].getMessage()
    # The change is remembered: the next request with the same prefix is quiet.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="voiceagent.history"):
        assert history.check_prefix(tools) is False
    assert caplog.records == []


# --- validate_messages ------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "sys"}


@pytest.mark.parametrize(
    "messages",
    [
        [SYSTEM, user("hi")],
        [SYSTEM, reply("Hello!"), user("hi")],
        [SYSTEM, user("hi"), *tool_round("a", "b"), reply()],
        [SYSTEM, user("hi"), *tool_round("a", content=None), *tool_round("b"), reply()],
        [SYSTEM, user("hi"), user("again")],
        [SYSTEM, user("hi"), {"role": "assistant", "content": ""}],
        [{"role": "system", "content": [{"type": "text", "text": "sys"}]}, user("hi")],
    ],
)
def test_valid_lists_pass(messages: list[dict[str, Any]]) -> None:
    validate_messages(messages)


def _answers_out_of_order() -> list[dict[str, Any]]:
    round_ = tool_round("a", "b")
    return [SYSTEM, user("hi"), round_[0], round_[2], round_[1]]


BAD: dict[str, tuple[list[Any], str]] = {
    "empty": ([], "no messages"),
    "not an object": ([SYSTEM, "hi"], "not an object"),
    "unknown role": ([SYSTEM, {"role": "robot", "content": "x"}], "role 'robot'"),
    "missing role": ([SYSTEM, {"content": "x"}], "role None"),
    "user without content": ([SYSTEM, {"role": "user"}], "content is required"),
    "user content not text": ([SYSTEM, {"role": "user", "content": 3}], "string or a list"),
    "bad text part": (
        [SYSTEM, {"role": "user", "content": [{"type": "image_url"}]}],
        "string or a list",
    ),
    "assistant null without calls": (
        [SYSTEM, user("hi"), {"role": "assistant", "content": None}],
        "null only with tool_calls",
    ),
    "empty tool_calls": (
        [SYSTEM, user("hi"), {"role": "assistant", "content": "x", "tool_calls": []}],
        "non-empty list",
    ),
    "call without id": (
        [
            SYSTEM,
            user("hi"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
        ],
        "id must be",
    ),
    "call of another type": (
        [
            SYSTEM,
            {"role": "assistant", "content": None, "tool_calls": [{**call("a"), "type": "x"}]},
        ],
        "type must be 'function'",
    ),
    "call without name": (
        [
            SYSTEM,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**call("a"), "function": {"arguments": "{}"}}],
            },
        ],
        "function.name",
    ),
    "arguments not text": (
        [SYSTEM, {"role": "assistant", "content": None, "tool_calls": [call("a", arguments={})]}],  # type: ignore[arg-type]
        "function.arguments",
    ),
    "duplicate call ids": (
        [SYSTEM, {"role": "assistant", "content": None, "tool_calls": [call("a"), call("a")]}],
        "used twice",
    ),
    "unanswered call at the end": (
        [SYSTEM, user("hi"), *tool_round("a", "b")[:2]],
        "'b' is not answered by the end",
    ),
    "unanswered call before the next user message": (
        [SYSTEM, user("hi"), tool_round("a")[0], user("hello?")],
        "'a' is not answered before messages[3] (user)",
    ),
    "unanswered call before the next assistant message": (
        [SYSTEM, user("hi"), tool_round("a")[0], reply()],
        "'a' is not answered before messages[3] (assistant)",
    ),
    "tool message without its call": (
        [SYSTEM, user("hi"), {"role": "tool", "tool_call_id": "a", "content": "x"}],
        "did not make",
    ),
    "tool message for an earlier round's call": (
        [
            SYSTEM,
            user("hi"),
            *tool_round("a"),
            reply(),
            {"role": "tool", "tool_call_id": "a", "content": "x"},
        ],
        "did not make",
    ),
    "call answered twice": (
        [
            SYSTEM,
            user("hi"),
            *tool_round("a"),
            {"role": "tool", "tool_call_id": "a", "content": "x"},
        ],
        "twice",
    ),
    "tool message without an id": (
        [SYSTEM, tool_round("a")[0], {"role": "tool", "content": "x"}],
        "tool_call_id must be",
    ),
    "tool message without content": (
        [SYSTEM, tool_round("a")[0], {"role": "tool", "tool_call_id": "a"}],
        "content is required",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_lists_raise_naming_the_fault(case: str) -> None:
    messages, expected = BAD[case]
    with pytest.raises(ValueError, match=re.escape(expected)):
        validate_messages(messages)


def test_answers_in_any_order_within_the_round_are_valid() -> None:
    validate_messages(_answers_out_of_order())


# --- property: any conversation stays valid under trimming ------------------------------

_text = st.text(alphabet="abcdefghij klmnopé", max_size=60)
_unit = st.lists(st.integers(min_value=0, max_value=3), max_size=3).flatmap(
    lambda rounds: st.tuples(st.just(rounds), st.one_of(st.none(), _text))
)
_step = st.one_of(
    st.tuples(st.just("user"), _text),
    st.tuples(st.just("commit"), _unit),
    st.tuples(st.just("greeting"), _text),
)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(_step, max_size=60),
    max_messages=st.integers(min_value=3, max_value=25),
    max_tokens=st.integers(min_value=200, max_value=3000),
    context=st.one_of(st.none(), _text),
)
def test_any_conversation_stays_valid_with_the_system_message_first(
    steps: list[tuple[str, Any]], max_messages: int, max_tokens: int, context: str | None
) -> None:
    history = History(
        INSTRUCTIONS,
        context=context,
        max_messages=max_messages,
        max_tokens=max_tokens,
        reserve_tokens=100,
    )
    ids = iter(range(10_000))
    for kind, payload in steps:
        if kind == "user":
            history.add_user(payload)
        elif kind == "greeting":
            history.commit([reply(payload or "Hello.")], new_turn=True)
        else:
            rounds, final = payload
            unit: list[dict[str, Any]] = []
            for calls in rounds:
                unit += tool_round(*(f"call_{next(ids)}" for _ in range(calls or 1)))
            if final is not None:
                unit.append(reply(final))
            history.commit(unit)
        messages = history.messages()
        validate_messages(messages)
        assert messages[0] == {"role": "system", "content": INSTRUCTIONS}
        within = len(messages) <= max_messages and history.estimated_tokens <= max_tokens - 100
        assert within or len(history.turns) == 1
        roles = [m["role"] for m in messages]
        assert "system" not in roles[2 if context else 1 :]
