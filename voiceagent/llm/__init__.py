"""The Electron client: streamed chat completions with retries, plan limits and usage."""

from __future__ import annotations

from .client import ElectronClient
from .endpoint import SMALLEST_BASE_URL, LLMEndpoint, resolve_llm_endpoint
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
    StreamInterruptedError,
)
from .request_id import RequestIdFilter, current_request_id
from .retry import RetryPolicy
from .streaming import ElectronStream
from .usage import Usage, UsageTotals

__all__ = [
    "SMALLEST_BASE_URL",
    "AuthenticationError",
    "BadRequestError",
    "ConcurrencyLimitError",
    "ElectronClient",
    "ElectronConnectionError",
    "ElectronError",
    "ElectronStream",
    "ElectronTimeoutError",
    "LLMEndpoint",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestIdFilter",
    "RetryPolicy",
    "ServerError",
    "StreamInterruptedError",
    "Usage",
    "UsageTotals",
    "current_request_id",
    "resolve_llm_endpoint",
]
