"""Typed errors of the Electron client: the facts a person needs, and never a key."""

from __future__ import annotations

from typing import ClassVar


class ElectronError(Exception):
    """An Electron request failed; `hint` says what to do about it."""

    default_hint: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.hint = hint if hint is not None else self.default_hint
        self.attempts = attempts

    def __str__(self) -> str:
        facts = []
        if self.status is not None:
            facts.append(f"HTTP {self.status}")
        if self.error_type:
            facts.append(self.error_type)
        if self.request_id:
            facts.append(f"request_id {self.request_id}")
        facts.append(f"{self.attempts} attempt" + ("" if self.attempts == 1 else "s"))
        text = f"{self.message} ({', '.join(facts)})"
        if self.hint:
            text += f". {self.hint}"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error_type={self.error_type!r}, "
            f"message={self.message!r}, request_id={self.request_id!r}, "
            f"attempts={self.attempts!r})"
        )


class BadRequestError(ElectronError):
    default_hint = (
        "Check the request: at most 200 messages, 64 tools and 4 stop sequences, "
        "and 32,768 tokens of input plus output"
    )


class AuthenticationError(ElectronError):
    default_hint = "Check SMALLEST_API_KEY (or --api-key): the key is missing, wrong or revoked"


class PermissionDeniedError(ElectronError):
    default_hint = "This key has no access to that model or endpoint; check your Smallest plan"


class RateLimitError(ElectronError):
    default_hint = "Send fewer requests per minute, or move to a plan with higher limits"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        error_type: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            message,
            status=status,
            error_type=error_type,
            request_id=request_id,
            hint=hint,
            attempts=attempts,
        )
        self.retry_after = retry_after


class ConcurrencyLimitError(RateLimitError):
    default_hint = (
        "Too many requests in flight for this key's plan (standard 3, enterprise 20); "
        "set the client's plan to match, or upgrade"
    )


class ServerError(ElectronError):
    default_hint = "The server failed; try again shortly"


class ElectronConnectionError(ElectronError):
    default_hint = "Check the LLM URL and the network"


class ElectronTimeoutError(ElectronError):
    default_hint = (
        "The server did not answer in time; try again, or raise first_token_timeout "
        "(and first_byte_timeout)"
    )


class StreamInterruptedError(ElectronError):
    """The stream broke after part of it was used, so it was not retried."""

    default_hint = "Part of the reply was already used, so it was not retried; ask again"

    def __init__(
        self,
        message: str,
        *,
        chunks: int,
        content_chars: int,
        tool_call_fragments: int,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
        attempts: int = 1,
    ) -> None:
        received = (
            f"{message}; received {chunks} chunks, {content_chars} content characters "
            f"and {tool_call_fragments} tool-call fragments before the break"
        )
        super().__init__(
            received,
            status=status,
            error_type=error_type,
            request_id=request_id,
            hint=hint,
            attempts=attempts,
        )
        self.chunks = chunks
        self.content_chars = content_chars
        self.tool_call_fragments = tool_call_fragments
