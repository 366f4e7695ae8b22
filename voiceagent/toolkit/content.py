"""What the model reads back: a tool's result or failure as tool message text, within a size cap."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_jsonable_python

# Exception messages can carry whole HTTP bodies; the model needs the gist, not the body.
ERROR_MESSAGE_CAP = 300


def encode_result(result: Any) -> str:
    """A str as is; anything else (dict, list, pydantic model, dataclass, number) as JSON."""
    if isinstance(result, str):
        return result
    # fallback=str keeps an unexpected type readable instead of failing a call that worked.
    return json.dumps(to_jsonable_python(result, fallback=str), ensure_ascii=False)


def truncate(text: str, cap: int) -> str:
    """``text`` cut to ``cap`` characters, with a note saying so."""
    if len(text) <= cap:
        return text
    return f"{text[:cap]}… [truncated: the first {cap} of {len(text)} characters]"


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message``, short."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return truncate(text, ERROR_MESSAGE_CAP)


def format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"
