"""voiceagent.tools.calculator: arithmetic through ast only, words and signs, readable refusals."""

from __future__ import annotations

import ast
import inspect
import json
import operator
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voiceagent.toolkit import ToolCall, ToolCallState, ToolExecutor, ToolRegistry
from voiceagent.tools import calculate, calculator


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2 + 2", 4),
        ("12 * (3 + 4)", 84),
        ("2 ** 10", 1024),
        ("15 % 4", 3),
        ("7 / 2", 3.5),
        ("8 / 2", 4),
        ("-3 + +5", 2),
        ("-(-3)", 3),
        ("0.1 + 0.2", 0.3),
        ("2.5 * 2", 5),
        ("10 ** -2", 0.01),
        ("sqrt(16)", 4),
        ("sqrt(2)", 1.41421356237),
        ("abs(-7.5)", 7.5),
        ("round(2.567, 2)", 2.57),
        ("round(7.6)", 8),
        ("round(1234, -2)", 1200),
        ("2 ^ 8", 256),
        ("3 x 4", 12),
        ("3x4", 12),
        ("6 × 7", 42),
        ("84 ÷ 2", 42),
        ("10 − 4", 6),
        ("5 plus 3 times 2", 11),
        ("10 divided by 4", 2.5),
        ("9 minus 10", -1),
        ("3 squared", 9),
        ("2 to the power of 5", 32),
        ("17 mod 5", 2),
        ("1,000 * 3", 3000),
        ("2 + 2 =", 4),
        ("10 ** 100", 10**100),
        ("123456789 * 987654321", 121932631112635269),
        ("(" * 149 + "1" + ")" * 149, 1),  # as deep as MAX_LENGTH allows
        ("-" * 298 + "1", 1),
    ],
)
def test_arithmetic(expression: str, result: int | float) -> None:
    answer = calculate(expression)
    assert answer["result"] == result
    assert type(answer["result"]) is type(result)


def test_the_expression_computed_is_returned_in_canonical_form() -> None:
    assert calculate("5 plus 3 times 2") == {"expression": "5 + 3 * 2", "result": 11}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "Division by zero"),
        ("5 % 0", "Division by zero"),
        ("0 ** -1", "Division by zero"),
        ("9 ** 999", "too large"),
        ("2 ** 100000", "exponent is too large"),
        ("10 ** 100 * 10", "too large"),
        ("1e400", "too large"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("sqrt(-1)", "not a real number"),
        ("__import__('os').system('true')", "I don't know the function"),
        ("open('/etc/passwd')", "I don't know the function 'open'"),
        ("pi * 2", "I don't know what 'pi' is"),
        ("True + 1", "True is not a number"),
        ("'a' * 3", "'a' is not a number"),
        ("1j", "not a number"),
        ("[1, 2]", "is not arithmetic"),
        ("1 < 2", "is not arithmetic"),
        ("7 // 2", "not one I use"),
        ("1 << 100", "not one I use"),
        ("round(2.5, 1.5)", "whole number of digits"),
        ("round(2.5, 100)", "whole number of digits"),
        ("sqrt(1, 2)", "takes one number"),
        ("abs(number=4)", "abs() takes a plain number"),
        ("2 +", "couldn't read '2 +'"),
        ("", "no expression"),
        ("1 + " * 100 + "1", "too long"),
    ],
)
def test_refusals_are_readable(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        calculate(expression)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 3) -> tuple[str, int]:
    if depth == 0 or draw(st.booleans()):
        n = draw(st.integers(min_value=-999, max_value=999))
        return (f"({n})" if n < 0 else str(n)), n
    op = draw(st.sampled_from(sorted(_BINARY)))
    left_text, left = draw(_expressions(depth - 1))
    right_text, right = draw(_expressions(depth - 1))
    return f"({left_text} {op} {right_text})", _BINARY[op](left, right)


@given(_expressions())
def test_integer_arithmetic_is_exact(case: tuple[str, int]) -> None:
    text, expected = case
    assert calculate(text)["result"] == expected


def test_the_module_never_calls_eval_exec_or_compile() -> None:
    tree = ast.parse(inspect.getsource(calculator))
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


async def test_through_the_executor() -> None:
    executor = ToolExecutor(ToolRegistry([calculate]))
    call = ToolCall("call_1", "calculate", '{"expression": "12 times 4"}')
    await executor.run(call)
    assert call.state is ToolCallState.DONE
    assert call.content is not None
    assert json.loads(call.content) == {"expression": "12 * 4", "result": 48}


async def test_a_refusal_through_the_executor_is_an_error_message() -> None:
    executor = ToolExecutor(ToolRegistry([calculate]))
    call = ToolCall("call_1", "calculate", '{"expression": "1/0"}')
    await executor.run(call)
    assert call.state is ToolCallState.FAILED
    assert call.content is not None
    assert json.loads(call.content) == {"error": "ValueError: Division by zero is not defined."}


def test_the_schema_is_one_sentence_and_one_string() -> None:
    definition = calculate.definition()["function"]
    assert definition["description"] == "Evaluate an arithmetic expression."
    assert definition["parameters"]["required"] == ["expression"]
    assert definition["parameters"]["properties"]["expression"]["type"] == "string"
