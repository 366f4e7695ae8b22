"""@tool: the parameters schema and description the model sees, built by pydantic."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field

from voiceagent.toolkit import Tool, ToolContext, tool


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(BaseModel):
    """A postal address."""

    street: str
    title: str | None = None  # a property named "title" is not pydantic's title keyword


def _keys(node: Any) -> set[str]:
    """Every dict key anywhere in a schema, except property names."""
    if isinstance(node, list):
        return set().union(*(_keys(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key in ("properties", "$defs"):
            for sub in value.values():
                found |= _keys(sub)
        else:
            found.add(key)
            found |= _keys(value)
    return found


def test_bare_decorator_returns_a_tool_that_still_calls_the_function() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Tool)
    assert add(2, 3) == 5
    assert add.name == "add"
    assert add.__name__ == "add"


async def test_async_tool_is_still_awaitable_directly() -> None:
    @tool(timeout=2)
    async def echo(text: str) -> str:
        """Echo."""
        return text

    assert echo.is_async
    assert await echo("hi") == "hi"


def test_decorator_with_options_carries_the_policy() -> None:
    @tool(timeout=2.5, filler="One moment.", filler_delay=0.5, interruptible=True, name="lookup")
    def find(q: str) -> str:
        """Find a thing."""
        return q

    assert (find.name, find.timeout, find.filler, find.filler_delay, find.interruptible) == (
        "lookup",
        2.5,
        "One moment.",
        0.5,
        True,
    )


def test_defaults_are_ten_seconds_no_filler_and_side_effecting() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    assert ping.timeout == 10.0
    assert ping.filler is None
    assert ping.filler_delay == 0.3
    assert ping.interruptible is False


def test_required_and_defaulted_parameters() -> None:
    @tool
    def book(restaurant: str, people: int, outdoor: bool = False) -> str:
        """Book a table."""
        return ""

    assert book.parameters == {
        "type": "object",
        "properties": {
            "restaurant": {"type": "string"},
            "people": {"type": "integer"},
            "outdoor": {"type": "boolean", "default": False},
        },
        "required": ["restaurant", "people"],
    }


def test_annotated_field_description() -> None:
    @tool
    def weather(city: Annotated[str, Field(description="City name")]) -> str:
        """Current weather."""
        return ""

    city = weather.parameters["properties"]["city"]
    assert city == {"type": "string", "description": "City name"}


def test_google_style_args_section_describes_parameters() -> None:
    @tool
    def book(restaurant: str, people: int) -> str:
        """Book a table.

        Args:
            restaurant: Name of the restaurant.
            people (int): How many people
                will come.
        """
        return ""

    props = book.parameters["properties"]
    assert props["restaurant"]["description"] == "Name of the restaurant."
    assert props["people"]["description"] == "How many people will come."


def test_field_description_wins_over_the_docstring() -> None:
    @tool
    def weather(city: Annotated[str, Field(description="From Field")]) -> str:
        """Weather.

        Args:
            city: From the docstring.
        """
        return ""

    assert weather.parameters["properties"]["city"]["description"] == "From Field"


def test_optional_parameter() -> None:
    @tool
    def search(query: str, limit: Optional[int] = None) -> str:  # noqa: UP045 - the spelling under test
        """Search."""
        return ""

    assert search.parameters["properties"]["limit"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "default": None,
    }
    assert search.parameters["required"] == ["query"]


def test_literal_and_enum_parameters() -> None:
    @tool
    def convert(mode: Literal["fast", "exact"], unit: Unit = Unit.CELSIUS) -> str:
        """Convert."""
        return ""

    params = convert.parameters
    assert params["properties"]["mode"] == {"enum": ["fast", "exact"], "type": "string"}
    assert params["properties"]["unit"] == {"$ref": "#/$defs/Unit", "default": "celsius"}
    assert params["$defs"]["Unit"] == {"enum": ["celsius", "fahrenheit"], "type": "string"}


def test_nested_model_is_kept_in_defs() -> None:
    @tool
    def deliver(to: Address) -> str:
        """Deliver."""
        return ""

    params = deliver.parameters
    assert params["properties"]["to"] == {"$ref": "#/$defs/Address"}
    assert params["$defs"]["Address"]["required"] == ["street"]
    assert params["$defs"]["Address"]["description"] == "A postal address."


def test_no_title_keys_anywhere_but_a_property_named_title_survives() -> None:
    @tool
    def deliver(to: Address, unit: Unit, note: str = "") -> str:
        """Deliver."""
        return ""

    assert "title" not in _keys(deliver.parameters)
    assert "title" in deliver.parameters["$defs"]["Address"]["properties"]


def test_tool_context_is_injected_not_described() -> None:
    @tool
    async def hang_up(ctx: ToolContext, reason: str) -> str:
        """End the call."""
        return ""

    assert hang_up.context_parameters == ("ctx",)
    assert list(hang_up.parameters["properties"]) == ["reason"]
    assert hang_up.parameters["required"] == ["reason"]


def test_optional_tool_context_is_injected_too() -> None:
    @tool
    def note(text: str, ctx: ToolContext | None = None) -> str:
        """Note."""
        return ""

    assert note.context_parameters == ("ctx",)
    assert list(note.parameters["properties"]) == ["text"]


def test_description_is_the_first_sentence_only() -> None:
    @tool
    def weather(city: str) -> str:
        """Current weather
        for a city. Uses the national service; results are cached.

        Args:
            city: The city.
        """
        return ""

    assert weather.description == "Current weather for a city."


def test_description_from_a_docstring_without_a_full_stop() -> None:
    @tool
    def ping() -> str:
        """Ping the server"""
        return ""

    assert ping.description == "Ping the server"


def test_no_docstring_means_an_empty_description() -> None:
    @tool
    def ping() -> str:
        return ""

    assert ping.description == ""


def test_no_parameters_is_an_empty_object() -> None:
    @tool
    def now() -> str:
        """The time."""
        return ""

    assert now.parameters == {"type": "object", "properties": {}}


def test_parameter_names_pydantic_reserves_keep_their_names() -> None:
    @tool
    def run(json: str, model_name: str = "m", schema: int = 1) -> str:
        """Run."""
        return ""

    assert list(run.parameters["properties"]) == ["json", "model_name", "schema"]
    args = run.parse_arguments('{"json": "x", "model_name": "y", "schema": 2}')
    assert args == {"json": "x", "model_name": "y", "schema": 2}


def test_types_defined_inside_a_function_resolve() -> None:
    class Point(BaseModel):
        x: int

    @tool
    def move(to: Point) -> str:
        """Move."""
        return ""

    assert move.parse_arguments('{"to": {"x": "3"}}') == {"to": Point(x=3)}


def test_definition_is_the_api_tools_entry() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return ""

    assert ping.definition() == {
        "type": "function",
        "function": {"name": "ping", "description": "Ping.", "parameters": ping.parameters},
    }
    json.dumps(ping.definition())


def test_var_args_are_rejected_at_decoration() -> None:
    with pytest.raises(TypeError, match=r"\*args"):

        @tool
        def bad(*names: str) -> str:
            """Bad."""
            return ""


def test_a_type_pydantic_cannot_describe_is_rejected_at_decoration() -> None:
    class Opaque:
        pass

    with pytest.raises(TypeError, match="cannot build a schema"):

        @tool
        def bad(thing: Opaque) -> str:
            """Bad."""
            return ""


def test_an_invalid_tool_name_is_rejected() -> None:
    def ping() -> str:
        """Ping."""
        return ""

    with pytest.raises(ValueError, match="tool name"):
        tool(name="has space")(ping)
