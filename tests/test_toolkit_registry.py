"""ToolRegistry: stable order, lookup, the API catalog, its token estimate and its limits."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from voiceagent.toolkit import Tool, ToolRegistry, tool


def _make(name: str, doc: str = "Do a thing.") -> Tool[..., Any]:
    def fn(x: int) -> int:
        return x

    fn.__doc__ = doc
    return tool(name=name)(fn)


def test_tools_keep_registration_order() -> None:
    registry = ToolRegistry([_make("zeta"), _make("alpha"), _make("mid")])
    assert registry.names == ["zeta", "alpha", "mid"]
    assert [entry["function"]["name"] for entry in registry.catalog()] == ["zeta", "alpha", "mid"]
    assert [t.name for t in registry] == ["zeta", "alpha", "mid"]


def test_lookup_by_name() -> None:
    ping = _make("ping")
    registry = ToolRegistry([ping])
    assert registry.get("ping") is ping
    assert registry["ping"] is ping
    assert "ping" in registry
    assert registry.get("nope") is None
    assert len(registry) == 1


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate tool name 'ping'"):
        ToolRegistry([_make("ping"), _make("ping")])


def test_a_plain_function_is_accepted_as_a_bare_tool() -> None:
    def ping() -> str:
        """Ping."""
        return "pong"

    registry = ToolRegistry([ping])
    assert registry["ping"].description == "Ping."


def test_catalog_is_the_api_tools_list() -> None:
    registry = ToolRegistry([_make("ping")])
    assert registry.catalog() == [
        {
            "type": "function",
            "function": {
                "name": "ping",
                "description": "Do a thing.",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}},
                    "required": ["x"],
                },
            },
        }
    ]


def test_catalog_is_identical_across_calls_even_if_a_caller_mutates_one() -> None:
    registry = ToolRegistry([_make("a"), _make("b")])
    first = registry.catalog()
    first[0]["function"]["description"] = "changed"
    first.pop()
    second = registry.catalog()
    assert json.dumps(second) == json.dumps(registry.catalog())
    assert second[0]["function"]["description"] == "Do a thing."
    assert len(second) == 2


def test_estimated_tokens_is_catalog_characters_over_four() -> None:
    registry = ToolRegistry([_make("a"), _make("b")])
    assert registry.estimated_tokens == math.ceil(len(registry.catalog_json) / 4)
    assert json.loads(registry.catalog_json) == registry.catalog()


def test_sixty_four_tools_are_accepted() -> None:
    assert len(ToolRegistry([_make(f"t{i}") for i in range(64)], token_budget=10**6)) == 64


def test_more_than_sixty_four_tools_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at most 64 tools"):
        ToolRegistry([_make(f"t{i}") for i in range(65)], token_budget=10**6)


def test_warns_when_a_description_is_longer_than_one_sentence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def ping() -> str:
        return ""

    wordy = Tool(ping, description="Ping the server. Use it often, it is cheap.")
    with caplog.at_level(logging.WARNING, logger="voiceagent.toolkit"):
        ToolRegistry([wordy])
    assert "longer than one sentence" in caplog.text
    assert "'ping'" in caplog.text


def test_no_warning_for_one_sentence_descriptions(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="voiceagent.toolkit"):
        ToolRegistry([_make("a"), _make("b", "Look it up.")])
    assert caplog.records == []


def test_warns_when_the_catalog_is_over_the_token_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tools = [_make(f"t{i}") for i in range(3)]
    size = ToolRegistry(tools).estimated_tokens
    with caplog.at_level(logging.WARNING, logger="voiceagent.toolkit"):
        ToolRegistry(tools, token_budget=size)
    assert caplog.records == []
    with caplog.at_level(logging.WARNING, logger="voiceagent.toolkit"):
        ToolRegistry(tools, token_budget=size - 1)
    assert "over the budget" in caplog.text
    assert "estimate" in caplog.text


def test_default_token_budget_is_two_thousand() -> None:
    assert ToolRegistry([]).token_budget == 2000
