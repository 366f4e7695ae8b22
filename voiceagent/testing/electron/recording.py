"""What the simulator remembers of each request, with the API key redacted."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from voiceagent.testing._http import Request

REDACTED = "Bearer ***"


@dataclass
class RecordedRequest:
    """One request as received: never holds the raw API key.

    ``key_fingerprint`` is the first 12 hex digits of the SHA-256 of the bearer key, so a
    test can tell which key was sent by comparing with ``key_fingerprint_of(key)``.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None
    request_id: str
    received_at: float  # time.monotonic()
    connection_id: int
    key_sent: bool = False
    key_fingerprint: str | None = None
    status: int | None = None
    usage: dict[str, Any] | None = None
    cut: bool = False  # the stream was dropped on purpose

    @property
    def messages(self) -> list[dict[str, Any]]:
        body = self.body if isinstance(self.body, dict) else {}
        messages = body.get("messages")
        return messages if isinstance(messages, list) else []


def key_fingerprint_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def bearer_key(request: Request) -> str | None:
    value = request.header("authorization")
    if value is None:
        return None
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def record(request: Request, request_id: str) -> RecordedRequest:
    headers: dict[str, str] = {}
    for name, value in request.headers:
        value = REDACTED if name == "authorization" else value
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    try:
        body = json.loads(request.body) if request.body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    key = bearer_key(request)
    return RecordedRequest(
        method=request.method,
        path=request.path,
        headers=headers,
        body=body,
        request_id=request_id,
        received_at=time.monotonic(),
        connection_id=request.connection_id,
        key_sent=key is not None,
        key_fingerprint=None if key is None else key_fingerprint_of(key),
    )
