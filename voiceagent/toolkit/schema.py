"""A tool's parameters: a pydantic model and a lean JSON schema, from type hints and docstring."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from .context import ToolContext

# A sentence ends at . ! ? or the danda before a space or the end; CJK marks need no space.
_SENTENCE_END = re.compile(r"[.!?।](?=\s|$)|[。！？]")
_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns?|Raises|Yields?|Examples?|Notes?):\s*$"
)
_ARGS_HEADER = re.compile(r"^(\s*)(Args|Arguments|Parameters):\s*$")
# "name: text", "name (int): text", "*name: text"
_ARG_ENTRY = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")

# Keys whose value is a map of names to schemas: "title" there is a name, not a keyword.
_NAMED_SCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
# Keys whose value is data, never a schema.
_DATA_KEYS = frozenset({"default", "const", "enum", "examples"})


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, whitespace collapsed."""
    text = " ".join(text.split())
    match = _SENTENCE_END.search(text)
    return text if match is None else text[: match.end()]


def summary(doc: str) -> str:
    """The docstring's first paragraph (up to a blank line or a section header)."""
    lines: list[str] = []
    for line in doc.splitlines():
        if _SECTION.match(line):
            break
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line.strip())
    return " ".join(lines)


def parameter_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section."""
    docs: dict[str, str] = {}
    header_indent: int | None = None
    entry_indent: int | None = None
    current: str | None = None
    for line in doc.splitlines():
        if header_indent is None:
            header = _ARGS_HEADER.match(line)
            if header:
                header_indent = len(header.group(1))
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= header_indent:
            break  # the next section
        if entry_indent is None:
            entry_indent = indent
        entry = _ARG_ENTRY.match(line) if indent == entry_indent else None
        if entry:
            current = entry.group(1)
            docs[current] = entry.group(2)
        elif current is not None:
            docs[current] += " " + line.strip()
    return {name: " ".join(text.split()) for name, text in docs.items() if text.strip()}


def is_context(hint: Any) -> bool:
    """Whether a parameter annotated ``hint`` asks for the ToolContext."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (Union, types.UnionType):
        others = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = others[0] if len(others) == 1 else None
    return isinstance(hint, type) and issubclass(hint, ToolContext)


def lean_schema(node: Any) -> Any:
    """The schema without pydantic's ``title`` keys: they cost tokens and tell the model nothing."""
    if isinstance(node, list):
        return [lean_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    lean: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _DATA_KEYS:
            lean[key] = value
        elif key in _NAMED_SCHEMAS and isinstance(value, dict):
            lean[key] = {name: lean_schema(schema) for name, schema in value.items()}
        else:
            lean[key] = lean_schema(value)
    return lean


@dataclass(frozen=True)
class Parameters:
    """What the executor needs to validate arguments and call the function."""

    model: type[BaseModel]
    schema: dict[str, Any]
    field_names: Mapping[str, str]  # model field -> function parameter
    context_names: tuple[str, ...]


def _has_description(hint: Any, default: Any) -> bool:
    if isinstance(default, FieldInfo) and default.description:
        return True
    if typing.get_origin(hint) is Annotated:
        return any(
            isinstance(meta, FieldInfo) and meta.description for meta in typing.get_args(hint)[1:]
        )
    return False


def _safe_field_name(name: str) -> bool:
    # pydantic reserves these; such parameters get an internal name and keep theirs as alias.
    return not (name.startswith(("_", "model_")) or hasattr(BaseModel, name))


def build_parameters(
    fn: Callable[..., Any],
    tool_name: str,
    docs: Mapping[str, str],
    localns: Mapping[str, Any] | None = None,
) -> Parameters:
    """The arguments model and schema of ``fn``; ToolContext parameters are left out."""
    try:
        hints = typing.get_type_hints(fn, localns=dict(localns or {}), include_extras=True)
    except NameError as exc:
        raise TypeError(
            f"@tool {tool_name}: cannot resolve a type hint ({exc}); define the type at "
            "module level and import it outside `if TYPE_CHECKING:`"
        ) from exc
    fields: dict[str, Any] = {}
    field_names: dict[str, str] = {}
    context_names: list[str] = []
    for index, param in enumerate(inspect.signature(fn).parameters.values()):
        hint = hints.get(param.name, Any)
        if is_context(hint):
            context_names.append(param.name)
            continue
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise TypeError(
                f"@tool {tool_name}: parameter {param.name!r} must be a plain named "
                "parameter (no *args, **kwargs or positional-only)"
            )
        default = ... if param.default is param.empty else param.default
        description = docs.get(param.name)
        extra: dict[str, Any] = {}
        if description and not _has_description(hint, default):
            extra["description"] = description
        field_name = param.name
        if not _safe_field_name(param.name):
            field_name = f"arg{index}_"
            extra["alias"] = param.name
        if extra:
            hint = Annotated[hint, Field(**extra)]
        fields[field_name] = (hint, default)
        field_names[field_name] = param.name
    try:
        model = create_model(
            f"{tool_name}_arguments", __config__=ConfigDict(extra="ignore"), **fields
        )
        schema = lean_schema(model.model_json_schema())
    except Exception as exc:
        raise TypeError(
            f"@tool {tool_name}: cannot build a schema of its parameters: {exc}"
        ) from exc
    return Parameters(model, schema, field_names, tuple(context_names))
