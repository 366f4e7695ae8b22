"""Intent rules of the demo brain: weather, time, arithmetic, from a user's words."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_WEATHER = re.compile(r"\b(weather|forecast|temperature|rain(ing|y)?|sunny|snow(ing)?)\b", re.I)
_TIME = re.compile(r"\b(what time|the time|time is it|current time|time now|time in)\b", re.I)
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_OPERATORS = {
    "plus": "+",
    "+": "+",
    "add": "+",
    "minus": "-",
    "-": "-",
    "times": "*",
    "multiplied by": "*",
    "x": "*",
    "*": "*",
    "divided by": "/",
    "over": "/",
    "/": "/",
}
_OPERATOR = "|".join(re.escape(op) for op in sorted(_OPERATORS, key=len, reverse=True))
_ARITHMETIC = re.compile(rf"{_NUMBER}\s*({_OPERATOR})\s*{_NUMBER}", re.I)
_OPERATION_NAMES = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
_PLACE = re.compile(r"\b(?:in|for|at)\s+([^?.!]+)", re.I)
_NOT_PLACE = re.compile(
    r"\s+\b(today|tomorrow|tonight|now|right now|please|currently|this \w+|at the moment"
    r"|in (celsius|fahrenheit|metric|imperial|degrees))\b.*$",
    re.I,
)


@dataclass(frozen=True)
class Intent:
    """What the user asked for, with the values found in their words."""

    kind: str  # "weather" | "time" | "arithmetic" | "other"
    text: str
    places: list[str] = field(default_factory=list)
    numbers: list[float] = field(default_factory=list)
    operator: str | None = None  # "+", "-", "*", "/"

    @property
    def operation(self) -> str | None:
        """The operator's name: add, subtract, multiply, divide."""
        return _OPERATION_NAMES.get(self.operator or "")

    @property
    def expression(self) -> str:
        """The arithmetic as a symbolic expression, e.g. ``"12 * 7"``."""
        if self.operator is None or len(self.numbers) < 2:
            return self.text
        return f"{_fmt(self.numbers[0])} {self.operator} {_fmt(self.numbers[1])}"

    @property
    def expression_words(self) -> str:
        """The arithmetic as it is spoken, e.g. ``"12 times 7"``."""
        if self.operator is None or len(self.numbers) < 2:
            return self.text
        return f"{_fmt(self.numbers[0])} {_WORDS[self.operator]} {_fmt(self.numbers[1])}"

    @property
    def result(self) -> float | None:
        if self.operator is None or len(self.numbers) < 2:
            return None
        a, b = self.numbers[:2]
        if self.operator == "+":
            return a + b
        if self.operator == "-":
            return a - b
        if self.operator == "*":
            return a * b
        return None if b == 0 else a / b


_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORD = re.compile(
    rf"\b(?:({'|'.join(_TENS)})(?:[\s-]+({'|'.join(_UNITS[1:10])}))?|({'|'.join(_UNITS)}))\b",
    re.I,
)


def spoken_numbers_to_digits(text: str) -> str:
    """``"twelve times seven"`` → ``"12 times 7"``: speech-to-text often writes words."""

    def digits(match: re.Match[str]) -> str:
        tens, unit, small = match.groups()
        if small is not None:
            return str(_UNITS.index(small.lower()))
        value = 20 + 10 * _TENS.index(tens.lower())
        return str(value + (_UNITS.index(unit.lower()) if unit else 0))

    return _NUMBER_WORD.sub(digits, text)


def detect_intent(text: str) -> Intent | None:
    """The first intent the words match, or None."""
    match = _ARITHMETIC.search(spoken_numbers_to_digits(text))
    if match:
        numbers = [float(match.group(1)), float(match.group(3))]
        operator = _OPERATORS[match.group(2).lower()]
        return Intent("arithmetic", text, numbers=numbers, operator=operator)
    if _WEATHER.search(text):
        return Intent("weather", text, places=find_places(text))
    if _TIME.search(text):
        return Intent("time", text, places=find_places(text))
    return None


def find_places(text: str) -> list[str]:
    """Place names after "in"/"for"/"at": ``"weather in Paris and London"`` → both."""
    match = _PLACE.search(text)
    if not match:
        return []
    phrase = _NOT_PLACE.sub("", match.group(1).strip())
    parts = re.split(r"\s*,\s*|\s+and\s+(?:in\s+|for\s+)?", phrase, flags=re.I)
    return [_title(p) for p in parts if p.strip() and p.strip().lower() not in ("the", "me")]


def _title(place: str) -> str:
    place = place.strip()
    return place if any(c.isupper() for c in place) else place.title()


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
