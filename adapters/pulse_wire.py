"""Pulse's wire facts: encodings and their silence, sample rates, close codes, reconnect
pacing, the typed errors, error frames, query values, and keeping the key out of errors and
of websockets' logs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voiceagent.redact import redact

if TYPE_CHECKING:
    from websockets.exceptions import InvalidStatus

DEFAULT_URL = "wss://api.smallest.ai/waves/v1/stt/live"
# The rates Smallest lists (LiveKit's plugin, stt.py:176-177); the server never resamples, so
# audio at another rate is resampled to one of these before it is sent (adapters/config.py).
PULSE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
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
    """Pulse sent an error frame, ``{"type": "error", "message": …}`` or a bare ``{"error": …}``
    (or refused the configuration); ``message`` is its text, the key masked."""

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


def error_text(message: Mapping[str, Any]) -> str | None:
    """The text of an error frame, or None when ``message`` is not one: the public API sends
    ``{"type": "error", "status", "message"}`` (SDK types/transcription_error_event.py:12-14),
    a server reached directly a bare ``{"error": "…"}`` (LiveKit stt.py:30, 602-606)."""
    bare = "error" in message and "transcript" not in message and "transcription" not in message
    if message.get("type") != "error" and not bare:
        return None
    return str(message.get("message") or message.get("error") or "unknown error")


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


class WireLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' log of one stream's socket, every line with the stream's key masked (its
    frames are logged too, and a server's error frame may echo the key)."""

    def __init__(self, api_key: str | None) -> None:
        super().__init__(wire_logger)
        self._api_key = api_key

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.setdefault("stacklevel", 2)
            self.logger.log(level, "%s", redact(text, (self._api_key,)), **kwargs)


def error_body(error: InvalidStatus, api_key: str | None) -> str:
    """A refused upgrade's body, short and with the key masked."""
    text = error.response.body.decode("utf-8", "replace").strip() if error.response.body else ""
    return redact(text, (api_key,))[:300] or "no details"
