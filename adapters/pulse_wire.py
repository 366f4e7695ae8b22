"""Pulse's wire facts: encodings and their silence, close codes, reconnect pacing, the typed
errors, query values, and keeping the key out of websockets' logs."""

from __future__ import annotations

import logging

from websockets.exceptions import InvalidStatus

DEFAULT_URL = "wss://api.smallest.ai/waves/v1/stt/live"
BYTES_PER_SAMPLE = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
# Digital silence in each encoding: 0xFF is μ-law's zero, 0xD5 A-law's (0x00 is full scale).
SILENCE_BYTE = {"linear16": 0x00, "linear32": 0x00, "mulaw": 0xFF, "alaw": 0xD5}
CONCURRENCY_CLOSE_CODE = 1008
# Closes that say the request itself is wrong: reconnecting would only repeat it.
FATAL_CLOSE_CODES = {1002, 1003, 1007, 1009}
RECONNECT_DELAYS_S = (0.0, 0.25, 0.5, 1.0, 2.0)
MAX_REPLAY_S = 60.0


class PulseError(RuntimeError):
    """A Pulse stream failed; the message says why (it never contains the API key)."""


class PulseConcurrencyError(PulseError):
    """Pulse refused the stream (close 1008 or HTTP 429): the account's concurrency limit of
    open STT streams is reached. Close another stream, or ask Smallest for a higher limit."""


class PulseServerError(PulseError):
    """Pulse sent ``{"type": "error"}`` (or refused the configuration); ``message`` is its text."""

    def __init__(self, message: str, code: object = None) -> None:
        super().__init__(f"Pulse error: {message}" + (f" (code {code})" if code else ""))
        self.message, self.code = message, code


class PulseConnectionError(PulseError):
    """Pulse could not be reached or refused the upgrade; ``status`` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def query_value(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class _RedactBearer(logging.Filter):
    """websockets logs the upgrade's headers at DEBUG level: keep the key out of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                "Bearer [redacted]" if isinstance(a, str) and a.lower().startswith("bearer ") else a
                for a in record.args
            )
        return True


wire_logger = logging.getLogger("voiceagent.adapters.pulse.wire")
wire_logger.addFilter(_RedactBearer())


def error_body(error: InvalidStatus) -> str:
    text = error.response.body.decode("utf-8", "replace").strip() if error.response.body else ""
    return text[:200] or "no details"
