"""Turns what openai raised into a `Failure`, and a final `Failure` into a typed error."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping

import openai

from voiceagent.redact import redact

from .errors import (
    AuthenticationError,
    BadRequestError,
    ConcurrencyLimitError,
    ElectronConnectionError,
    ElectronError,
    ElectronTimeoutError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from .retry import Failure, FailureKind

CONCURRENCY_TEXT = "concurrency limit reached"

_STATUS_KINDS: Mapping[int, FailureKind] = {
    400: "bad_request",
    401: "authentication",
    403: "permission",
    502: "unavailable",
    503: "unavailable",
}

_ENVELOPE_TYPES: Mapping[str, FailureKind] = {
    "invalid_request_error": "bad_request",
    "authentication_error": "authentication",
    "permission_error": "permission",
    "rate_limit_error": "rate_limit",
}


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _status_kind(status: int, text: str) -> FailureKind:
    if status == 429:
        return "concurrency_limit" if CONCURRENCY_TEXT in text.lower() else "rate_limit"
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    return "server_error" if status >= 500 else "client_error"


def _envelope(body: object) -> Mapping[str, object]:
    """The `error` object of an envelope (openai already unwraps it, a stream event may not)."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        return inner if isinstance(inner, Mapping) else body
    return {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def failure_from_exception(
    exc: openai.OpenAIError, redact_text: Callable[[str], str] = redact
) -> Failure:
    """Classify an exception raised by openai while sending or streaming a request."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", "the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return Failure("connection", redact_text(f"connection failed{detail}"))
    if not isinstance(exc, openai.APIError):
        return Failure("client_error", redact_text(str(exc)))
    error = _envelope(exc.body)
    message = _text(error.get("message")) or (exc.body if isinstance(exc.body, str) else None)
    error_type = _text(error.get("type"))
    envelope_id = _text(error.get("request_id"))
    if isinstance(exc, openai.APIStatusError):
        try:
            raw_text = json.dumps(exc.body) if exc.body is not None else ""
        except (TypeError, ValueError):
            raw_text = str(exc.body)
        return Failure(
            kind=_status_kind(exc.status_code, f"{message or ''} {raw_text}"),
            message=redact_text(message or exc.message),
            status=exc.status_code,
            error_type=error_type,
            request_id=exc.request_id or envelope_id,
            retry_after=parse_retry_after(exc.response.headers),
        )
    # An error event inside a 200 stream.
    text = f"{message or ''} {error_type or ''}"
    kind: FailureKind = _ENVELOPE_TYPES.get(error_type or "", "stream_error")
    if CONCURRENCY_TEXT in text.lower():
        kind = "concurrency_limit"
    return Failure(
        kind=kind,
        message=redact_text(message or exc.message),
        error_type=error_type,
        request_id=envelope_id,
    )


_ERROR_TYPES: Mapping[FailureKind, type[ElectronError]] = {
    "bad_request": BadRequestError,
    "authentication": AuthenticationError,
    "permission": PermissionDeniedError,
    "client_error": ElectronError,
    "unavailable": ServerError,
    "server_error": ServerError,
    "stream_error": ServerError,
    "connection": ElectronConnectionError,
    "timeout": ElectronTimeoutError,
}


def error_from_failure(
    failure: Failure, *, attempts: int, reason: str = "", hint: str | None = None
) -> ElectronError:
    """The typed error for the failure that ended a request."""
    message = failure.message if not reason else f"{failure.message}; {reason}"
    if failure.kind in ("rate_limit", "concurrency_limit"):
        cls = ConcurrencyLimitError if failure.kind == "concurrency_limit" else RateLimitError
        if failure.retry_after is not None and "retry after" not in message:
            message += f"; retry after {failure.retry_after:g} s"
        return cls(
            message,
            retry_after=failure.retry_after,
            status=failure.status,
            error_type=failure.error_type,
            request_id=failure.request_id,
            hint=hint,
            attempts=attempts,
        )
    return _ERROR_TYPES[failure.kind](
        message,
        status=failure.status,
        error_type=failure.error_type,
        request_id=failure.request_id,
        hint=hint,
        attempts=attempts,
    )
