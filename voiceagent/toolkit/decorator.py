"""``@tool`` and ``Tool``: a function the model may call, with its schema and its policy."""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

from pydantic import ValidationError

from .context import ToolContext
from .schema import build_parameters, first_sentence, parameter_docs, summary

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_TIMEOUT = 10.0
DEFAULT_FILLER_DELAY = 0.3
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-compatible APIs accept
_MAX_REPORTED_ERRORS = 5


class ToolArgumentsError(ValueError):
    """The model's arguments could not be used; the message is written for the model."""


class Tool(Generic[P, R]):
    """A function the model may call. Calling the Tool calls the function, unchanged."""

    __name__: str  # with __doc__ and __wrapped__, copied from the function

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        filler: str | None = None,
        filler_delay: float = DEFAULT_FILLER_DELAY,
        interruptible: bool = False,
        localns: Mapping[str, Any] | None = None,
    ) -> None:
        self.fn = fn
        self.name: str = name if name is not None else fn.__name__
        if not _NAME.match(self.name):
            raise ValueError(
                f"tool name {self.name!r}: use 1-64 letters, digits, '_' or '-' "
                "(pass @tool(name=...))"
            )
        if timeout <= 0:
            raise ValueError(f"tool {self.name}: timeout must be > 0 seconds, got {timeout}")
        if filler_delay < 0:
            raise ValueError(f"tool {self.name}: filler_delay must be >= 0, got {filler_delay}")
        doc = inspect.getdoc(fn) or ""
        self.description: str = (
            description if description is not None else first_sentence(summary(doc))
        )
        self.timeout = float(timeout)
        self.filler = filler
        self.filler_delay = float(filler_delay)
        self.interruptible = interruptible
        self.is_async = inspect.iscoroutinefunction(fn)
        self._params = build_parameters(fn, self.name, parameter_docs(doc), localns)
        functools.update_wrapper(self, fn)

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (ToolContext parameters left out)."""
        return self._params.schema

    @property
    def context_parameters(self) -> tuple[str, ...]:
        return self._params.context_names

    def definition(self) -> dict[str, Any]:
        """This tool's entry of the ``tools`` list sent to the API."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def parse_arguments(self, text: str) -> dict[str, Any]:
        """The model's arguments text, validated; raises ToolArgumentsError saying what is wrong."""
        if not text.strip():
            data: Any = {}
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ToolArgumentsError(
                    f"arguments are not valid JSON: {exc.msg} at character {exc.pos}"
                ) from None
        if not isinstance(data, dict):
            raise ToolArgumentsError(f"arguments must be a JSON object, got {type(data).__name__}")
        try:
            model = self._params.model.model_validate(data)
        except ValidationError as exc:
            raise ToolArgumentsError(_summarise(exc)) from None
        # Read the fields, not model_dump(): nested models reach the function as models.
        return {param: getattr(model, field) for field, param in self._params.field_names.items()}

    def bind(self, arguments: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """Keyword arguments for the function: the validated arguments plus the context."""
        return {**arguments, **dict.fromkeys(self._params.context_names, ctx)}

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, timeout={self.timeout:g}, interruptible={self.interruptible})"


def _summarise(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = [
        f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
        for error in errors[:_MAX_REPORTED_ERRORS]
    ]
    if len(errors) > _MAX_REPORTED_ERRORS:
        parts.append(f"and {len(errors) - _MAX_REPORTED_ERRORS} more")
    return "invalid arguments: " + "; ".join(parts)


@overload
def tool(fn: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    timeout: float = DEFAULT_TIMEOUT,
    filler: str | None = None,
    filler_delay: float = DEFAULT_FILLER_DELAY,
    interruptible: bool = False,
    name: str | None = None,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    fn: Callable[P, R] | None = None,
    /,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    filler: str | None = None,
    filler_delay: float = DEFAULT_FILLER_DELAY,
    interruptible: bool = False,
    name: str | None = None,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make a function a tool: ``@tool`` or ``@tool(timeout=…, filler=…, …)``.

    ``timeout`` (seconds) bounds a call from the moment it is ready, its wait for a free
    tools-in-flight slot included; past it the call fails and the model reads why.
    ``filler`` is spoken when the model said nothing itself and the call is still running
    ``filler_delay`` seconds after it was named. ``interruptible=False`` (the default)
    marks a side-effecting tool: on barge-in it runs to completion and its result is kept;
    ``interruptible=True`` lets a barge-in cancel it.
    """

    def decorate(function: Callable[P, R], depth: int = 1) -> Tool[P, R]:
        # The locals of the frame that applied the decorator (`depth` frames up): types
        # defined inside a function (a test, a factory) are only reachable through them
        # under `from __future__ import annotations`.
        localns = sys._getframe(depth).f_locals
        return Tool(
            function,
            name=name,
            timeout=timeout,
            filler=filler,
            filler_delay=filler_delay,
            interruptible=interruptible,
            localns=localns,
        )

    if fn is not None:
        return decorate(fn, depth=2)  # applied by the frame that called tool()
    return decorate
