"""The ``calculate`` tool: arithmetic parsed with ``ast`` and evaluated node by node, never eval."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from voiceagent.toolkit import tool

Number = int | float

MAX_LENGTH = 300  # characters; also keeps ast.parse far from its nesting limits
MAX_MAGNITUDE = 10**100  # larger results are refused: nobody wants to hear them
MAX_EXPONENT = 1000
MAX_ROUND_DIGITS = 12
_SIGNIFICANT_DIGITS = 12  # hides float noise: 0.1 + 0.2 reads 0.3

# Words and signs people (and models echoing them) use, rewritten to Python operators.
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bdivided\s+by\b", "/"),
        (r"\bmultiplied\s+by\b", "*"),
        (r"\bto\s+the\s+power\s+of\b", "**"),
        (r"\bsquared\b", "**2"),
        (r"\bcubed\b", "**3"),
        (r"\btimes\b", "*"),
        (r"\bover\b", "/"),
        (r"\bplus\b", "+"),
        (r"\bminus\b", "-"),
        (r"\bmod(?:ulo)?\b", "%"),
        (r"(?<![A-Za-z_])[xX](?![A-Za-z_])", "*"),  # no variables exist, so x is "times"
        (r"(?<=\d),(?=\d{3}(?!\d))", ""),  # 1,000 -> 1000
        (r"[=?\s]+$", ""),  # "2 + 2 =" or "2 + 2?"
    )
)
_SIGNS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "^": "**"})

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Mod: operator.mod,
}
_WHAT_I_DO = (
    "I can only do arithmetic: numbers, + - × ÷, powers, %, parentheses, sqrt, abs and round."
)


@tool
def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression.

    Args:
        expression: e.g. "12 * (3 + 4)", "2 ** 10", "sqrt(2)", "15 % 4".
    """
    tree = parse(expression)
    return {"expression": ast.unparse(tree), "result": evaluate(tree)}


def parse(expression: str) -> ast.Expression:
    """The expression, words and signs rewritten, as an ``ast`` tree; ValueError if it isn't one."""
    text = expression.translate(_SIGNS)
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    text = text.strip()
    if not text:
        raise ValueError("There is no expression to calculate.")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"That expression is too long: keep it under {MAX_LENGTH} characters.")
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        given = " ".join(expression.split())
        shown = given if len(given) <= 60 else given[:57] + "..."
        raise ValueError(f"I couldn't read {shown!r} as arithmetic.") from None


def evaluate(tree: ast.Expression) -> Number:
    """The value of a parsed expression: an int when it is exact."""
    try:
        value = _value(tree.body)
    except ZeroDivisionError:
        raise ValueError("Division by zero is not defined.") from None
    except OverflowError:
        raise ValueError("The result is too large.") from None
    except RecursionError:
        raise ValueError("That expression is nested too deeply.") from None
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:  # exactly representable: say it as an int
            return int(value)
        return float(f"{value:.{_SIGNIFICANT_DIGITS}g}")
    return value


def _value(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"{node.value!r} is not a number. {_WHAT_I_DO}")
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _value(node.operand)
        return operand if isinstance(node.op, ast.UAdd) else -operand
    if isinstance(node, ast.BinOp):
        return _binary(node)
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Name):
        raise ValueError(f"I don't know what {node.id!r} is. {_WHAT_I_DO}")
    raise ValueError(f"{ast.unparse(node)!r} is not arithmetic I can do. {_WHAT_I_DO}")


def _binary(node: ast.BinOp) -> Number:
    left, right = _value(node.left), _value(node.right)
    if isinstance(node.op, ast.Div):
        if isinstance(left, int) and isinstance(right, int) and right and left % right == 0:
            return left // right  # exact: keep it an int, however large
        return _checked(left / right)
    if isinstance(node.op, ast.Pow):
        return _power(left, right)
    function = _BINARY.get(type(node.op))
    if function is None:
        raise ValueError(f"The operator in {ast.unparse(node)!r} is not one I use. {_WHAT_I_DO}")
    result: Number = function(left, right)
    return _checked(result)


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT and abs(base) not in (0, 1):
        raise ValueError(f"That exponent is too large: keep it within ±{MAX_EXPONENT}.")
    if base < 0 and not float(exponent).is_integer():
        raise ValueError("A negative number to a fractional power is not a real number.")
    # Refuse before computing: 9 ** 999 would be a 953-digit number.
    if abs(base) > 1 and exponent > 0 and math.log10(abs(base)) * exponent > 100:
        raise ValueError("The result is too large.")
    result: Number = base**exponent
    return _checked(result)


def _call(node: ast.Call) -> Number:
    name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    if name not in ("sqrt", "abs", "round"):
        raise ValueError(f"I don't know the function {name!r}. {_WHAT_I_DO}")
    if node.keywords:
        raise ValueError(f"{name}() takes a plain number, without a name.")
    args = [_value(arg) for arg in node.args]
    if name == "round" and len(args) == 2:
        digits = args[1]
        if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
            raise ValueError(f"round() takes a whole number of digits up to {MAX_ROUND_DIGITS}.")
        return round(args[0], digits)
    if len(args) != 1:
        raise ValueError(f"{name}() takes one number.")
    (x,) = args
    if name == "abs":
        return abs(x)
    if name == "round":
        return round(x)
    if x < 0:
        raise ValueError("The square root of a negative number is not a real number.")
    if isinstance(x, int) and math.isqrt(x) ** 2 == x:
        return math.isqrt(x)
    return math.sqrt(x)


def _checked(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("The result is too large.")
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError("The result is too large.")
    return value
