"""Fill a tool's arguments from the user's words, guided by the tool's JSON schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voiceagent.testing.electron.intents import Intent

_PLACE_NAMES = ("city", "location", "place", "town", "where", "region", "country", "timezone", "tz")
_TEXT_NAMES = ("expression", "query", "question", "text", "input", "prompt", "formula", "q")
_FIRST_NAMES = ("a", "x", "first", "left", "lhs", "num1", "number1", "operand1")
_SECOND_NAMES = ("b", "y", "second", "right", "rhs", "num2", "number2", "operand2")
_OPERATION_NAMES = ("operation", "op", "operator")


def fill_arguments(parameters: Any, intent: Intent, place: str | None) -> dict[str, Any]:
    """Arguments for one call: named matches first, then required parameters by type.

    The first required string parameter without a better match gets the main value (the
    place, or the arithmetic expression); optional parameters are set only on a clear match.
    """
    schema = parameters if isinstance(parameters, Mapping) else {}
    props = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if r in props]
    main_value = place if place is not None else _main_text(intent)
    numbers = list(intent.numbers)
    args: dict[str, Any] = {}
    main_used = False
    for name, prop in props.items():
        if not isinstance(prop, Mapping):
            continue
        value = _by_name(str(name).lower(), prop, intent, place)
        if value is not None:
            args[name] = value
            main_used |= value == main_value
    for name in required:
        if name in args or not isinstance(props[name], Mapping):
            continue
        prop = props[name]
        kind = prop.get("type")
        if prop.get("enum"):
            args[name] = _enum_choice(prop["enum"], intent.text)
        elif kind == "string":
            args[name] = main_value if not main_used and main_value is not None else ""
            main_used = True
        elif kind in ("number", "integer"):
            args[name] = _number(numbers.pop(0) if numbers else 0, kind)
        elif kind == "boolean":
            args[name] = False
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
    return args


def _main_text(intent: Intent) -> str | None:
    if intent.kind == "arithmetic":
        return intent.expression
    return intent.text or None


def _by_name(name: str, prop: Mapping[str, Any], intent: Intent, place: str | None) -> Any:
    kind = prop.get("type")
    if kind == "string" and name in _PLACE_NAMES and place is not None:
        return place
    if kind == "string" and name in _TEXT_NAMES and intent.kind == "arithmetic":
        return intent.expression
    if name in _OPERATION_NAMES and intent.operation is not None:
        enum = prop.get("enum")
        if enum:
            return _operation_from_enum(enum, intent)
        return intent.operation
    if kind in ("number", "integer") and len(intent.numbers) >= 2:
        for names, value in ((_FIRST_NAMES, intent.numbers[0]), (_SECOND_NAMES, intent.numbers[1])):
            if name in names:
                return _number(value, kind)
    if prop.get("enum") and any(str(v).lower() in intent.text.lower() for v in prop["enum"]):
        return _enum_choice(prop["enum"], intent.text)
    return None


def _operation_from_enum(enum: list[Any], intent: Intent) -> Any:
    wanted = {intent.operation, intent.operator}
    aliases = {
        "add": {"plus", "sum", "addition"},
        "subtract": {"minus", "sub", "subtraction", "difference"},
        "multiply": {"times", "mul", "product", "multiplication"},
        "divide": {"div", "quotient", "division", "over"},
    }
    wanted |= aliases.get(intent.operation or "", set())
    for value in enum:
        if str(value).lower() in wanted:
            return value
    return enum[0]


def _enum_choice(enum: list[Any], text: str) -> Any:
    lowered = text.lower()
    for value in enum:
        if str(value).lower() in lowered:
            return value
    return enum[0]


def _number(value: float, kind: str) -> int | float:
    return int(value) if kind == "integer" or float(value).is_integer() else value
