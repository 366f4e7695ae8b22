"""Electron's request rules and error envelope: what gets a 400, and how errors look."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voiceagent.testing._http import Response

MAX_MESSAGES = 200
MAX_TOOLS = 64
MAX_STOP = 4
CONTEXT_TOKENS = 32768
_ROLES = {"system", "developer", "user", "assistant", "tool"}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "overloaded_error",
}
DEFAULT_MESSAGES = {
    400: "Invalid request",
    401: "Invalid API key",
    403: "You do not have access to this model",
    404: "Not found",
    429: "Concurrency limit reached",
    500: "Internal server error",
    502: "Bad gateway: the upstream model did not answer",
    503: "The service is overloaded; try again shortly",
}


@dataclass
class RequestError(Exception):
    """A request Electron would refuse, with the field at fault."""

    status: int
    message: str
    code: str = "invalid_request"
    path: str = ""


def error_response(
    status: int,
    message: str | None,
    request_id: str,
    *,
    code: str | None = None,
    path: str = "",
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """An error in Electron's envelope, carrying the request id in body and header."""
    text = message or DEFAULT_MESSAGES.get(status, "Error")
    error_type = ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    envelope = {
        "error": {
            "message": text,
            "type": error_type,
            "details": [{"code": code or error_type, "message": text, "path": path}],
            "request_id": request_id,
        }
    }
    return Response.json(status, envelope, [("x-request-id", request_id), *(headers or [])])


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a chat-completions request, or a 400."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"Request body is not valid JSON: {exc}", "invalid_json") from exc
    if not isinstance(body, dict):
        raise RequestError(400, "Request body must be a JSON object", "invalid_type")
    return body


def validate_chat(body: Mapping[str, Any]) -> None:
    """Raise ``RequestError`` for anything Electron refuses."""
    messages = body.get("messages")
    if messages is None:
        raise RequestError(400, "'messages' is required", "missing_field", "messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list", "invalid_type", "messages")
    if len(messages) > MAX_MESSAGES:
        raise RequestError(
            400, f"At most {MAX_MESSAGES} messages are allowed", "too_many_messages", "messages"
        )
    for i, message in enumerate(messages):
        _validate_message(i, message)
    n = body.get("n")
    if n is not None and n != 1:
        raise RequestError(400, "Only n=1 is supported", "unsupported_value", "n")
    tools = body.get("tools")
    if tools is not None:
        _validate_tools(tools)
    _validate_tool_choice(body.get("tool_choice"), tools)
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise RequestError(
                400, "'stop' must be a string or a list of strings", "invalid_type", "stop"
            )
        if len(stops) > MAX_STOP:
            raise RequestError(
                400, f"At most {MAX_STOP} stop strings are allowed", "too_many_stop", "stop"
            )
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise RequestError(
            400, "'max_tokens' must be a positive integer", "invalid_value", "max_tokens"
        )
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(400, "'model' must be a string", "invalid_type", "model")


def _validate_message(i: int, message: Any) -> None:
    where = f"messages.{i}"
    if not isinstance(message, Mapping):
        raise RequestError(400, f"{where} must be an object", "invalid_type", where)
    role = message.get("role")
    if role not in _ROLES:
        raise RequestError(
            400, f"{where}.role must be one of {sorted(_ROLES)}", "invalid_value", f"{where}.role"
        )
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise RequestError(
            400,
            f"{where}.tool_call_id is required for tool messages",
            "missing_field",
            f"{where}.tool_call_id",
        )
    content = message.get("content")
    if content is None and role != "assistant":
        raise RequestError(400, f"{where}.content is required", "missing_field", f"{where}.content")
    if content is not None and not isinstance(content, (str, list)):
        raise RequestError(
            400, f"{where}.content must be a string or a list", "invalid_type", f"{where}.content"
        )


def _validate_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise RequestError(400, "'tools' must be a list", "invalid_type", "tools")
    if not tools:
        raise RequestError(
            400, "'tools' must not be empty: omit the field instead", "empty_array", "tools"
        )
    if len(tools) > MAX_TOOLS:
        raise RequestError(400, f"At most {MAX_TOOLS} tools are allowed", "too_many_tools", "tools")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type") != "function"
            or not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
        ):
            raise RequestError(
                400,
                f"tools.{i} must be {{'type': 'function', 'function': {{'name': ...}}}}",
                "invalid_type",
                f"tools.{i}",
            )


def _validate_tool_choice(choice: Any, tools: Any) -> None:
    if choice is None or choice in ("none", "auto"):
        return
    names = {t["function"]["name"] for t in tools or []}
    if choice == "required":
        if not names:
            raise RequestError(
                400, "tool_choice 'required' needs 'tools'", "invalid_value", "tool_choice"
            )
        return
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if name in names:
            return
        raise RequestError(
            400,
            f"tool_choice names a tool that was not offered: {name!r}",
            "invalid_value",
            "tool_choice",
        )
    raise RequestError(
        400,
        "tool_choice must be none, auto, required or a function",
        "invalid_value",
        "tool_choice",
    )
