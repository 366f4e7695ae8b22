"""Lightning's wire format as the fake reads and writes it: messages, requests, errors, WAV."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import wave
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio

from voiceagent.testing._http import Response
from voiceagent.testing.lightning.faults import InjectedError

MODELS = ("lightning_v3.1", "lightning_v3.1_pro")
SAMPLE_RATES = (8000, 16000, 24000, 44100)
OUTPUT_FORMATS = ("pcm", "wav")  # mp3, ulaw and alaw exist upstream, not in this fake
# Bounds of the numeric settings (ms): complete_backoff_ms per the SDK's request type,
# max_buffer_delay_ms per LiveKit's and pipecat's docstrings.
LIMITS_MS = {"max_buffer_flush_ms": 1000, "complete_backoff_ms": 10000, "max_buffer_delay_ms": 5000}
DEFAULT_MAX_BUFFER_DELAY_MS = 3000.0  # "the server default" (LiveKit, pipecat)
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# Where buffered text may be voiced before the flush: after a sentence end and its space.
_SENTENCE_END = re.compile(r"(?:[.!?।॥]+[\"'”’)\]]*\s+|[。！？]+)")


class _MaskBearer(logging.Filter):
    """websockets logs handshake headers at DEBUG: mask bearer keys in them."""

    _BEARER = re.compile(r"(?i)\b(bearer\s+)\S+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._BEARER.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


wire_logger = logging.getLogger("voiceagent.testing.lightning.wire")
wire_logger.addFilter(_MaskBearer())


@dataclass
class RecordedTTSRequest:
    """One request as the fake saw it; times are ``time.monotonic()`` seconds.

    ``status``: active, complete, refused (account limit or injected error frame),
    dropped (an injected drop), cancelled (``cancel_request``), failed (an injected error
    naming it after its audio began) or closed (the socket closed before ``complete``).
    ``request_id`` is the client's id (else the fake's own name for the request);
    ``server_ids`` the ids the fake put in its frames' ``request_id``: one per request, or
    one per release of a continuation context.
    """

    request_id: str
    connection: int  # 0 for HTTP
    account: str
    transport: str  # "ws" or "http"
    config: dict[str, Any]
    fragments: list[str] = field(default_factory=list)  # the non-empty texts, in order
    context_id: str | None = None  # the continuation form's context
    server_ids: list[str] = field(default_factory=list)
    cancel_message: dict[str, Any] | None = None  # the cancel_request message, if one came
    messages: list[dict[str, Any]] = field(default_factory=list)  # text/continue/flush
    pieces: list[str] = field(default_factory=list)  # the texts voiced, in order
    accept: str | None = None  # HTTP: the Accept header
    started_at: float = field(default_factory=time.monotonic)
    flushed_at: float | None = None
    first_chunk_at: float | None = None
    ended_at: float | None = None
    chunks: int = 0
    samples: int = 0
    status: str = "active"
    error: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.fragments)

    def __repr__(self) -> str:  # the account is a key: never shown
        return (
            f"RecordedTTSRequest({self.request_id!r}, connection={self.connection}, "
            f"text={self.text!r}, status={self.status!r}, samples={self.samples})"
        )


class LiveRequest:
    """A WebSocket request being served: its text buffer, flush state and settings."""

    def __init__(self, record: RecordedTTSRequest, backoff_ms: float) -> None:
        self.record = record
        self.buffer = ""
        self.flushed = False
        self.force = False  # voice the whole buffer now (max_buffer_flush_ms passed)
        self.released = False
        self.dropped = False
        self.drop_after: int | None = None
        self.stray: tuple[int, bool, InjectedError] | None = None
        self.failure: tuple[int, InjectedError] | None = None
        self.failed = False
        self.first_byte_ms = 0.0
        self.backoff_ms = backoff_ms
        self.max_buffer_flush_ms = 0.0
        self.context = record.context_id is not None
        self.max_buffer_delay_ms = DEFAULT_MAX_BUFFER_DELAY_MS
        self.buffered_at = 0.0  # when the unvoiced text in ``buffer`` began
        self.word_timestamps = bool(record.config.get("word_timestamps"))
        self.server_id = ""  # the current server request id (a UUID)
        self.sent_samples = 0  # of the current server request: its word times start at 0
        self.words = 0  # words timed so far in the current server request
        self.cancelled = False
        self.scope = anyio.CancelScope()  # the serving task's: cancel_request cancels it
        self._changed = anyio.Event()

    def add(self, message: dict[str, Any]) -> None:
        text = str(message.get("text", ""))
        flush = bool(message.get("flush")) or not message.get("continue", False)
        self.record.messages.append(
            {"text": text, "continue": message.get("continue"), "flush": message.get("flush")}
        )
        if text:
            self.record.fragments.append(text)
            if not self.buffer:
                self.buffered_at = time.monotonic()
            self.buffer += text
        if "complete_backoff_ms" in message:
            self.backoff_ms = float(message["complete_backoff_ms"])
        if "max_buffer_flush_ms" in message:
            self.max_buffer_flush_ms = float(message["max_buffer_flush_ms"])
        if "max_buffer_delay_ms" in message:
            self.max_buffer_delay_ms = float(message["max_buffer_delay_ms"])
        if flush:
            self.flushed = True
            self.record.flushed_at = time.monotonic()
        elif text:
            self.flushed = False  # more text after a flush reopens the request
        self._changed.set()
        self._changed = anyio.Event()

    async def changed(self) -> None:
        """Until the next message for this request."""
        await self._changed.wait()

    def take(self) -> str:
        """The text to voice now: all of it once flushed, else up to the last sentence end."""
        if self.flushed or self.force:
            piece, self.buffer, self.force = self.buffer, "", False
            return piece
        ends = [match.end() for match in _SENTENCE_END.finditer(self.buffer)]
        if not ends:
            return ""
        piece, self.buffer = self.buffer[: ends[-1]], self.buffer[ends[-1] :]
        return piece


def parse_message(message: str | bytes) -> tuple[dict[str, Any] | None, str]:
    """A client text frame as a dict, or None and what is wrong with it."""
    if isinstance(message, bytes):
        return None, "binary frames are not supported; send JSON text frames"
    try:
        body = json.loads(message)
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(body, dict):
        return None, "expected a JSON object"
    if not isinstance(body.get("text", ""), str):
        return None, "text must be a string"
    for name in ("continue", "flush"):
        if name in body and not isinstance(body[name], bool):
            return None, f"{name} must be true or false"
    for name in ("request_id", "context_id"):
        given = body.get(name)
        if given is not None and not (isinstance(given, str) and _REQUEST_ID.fullmatch(given)):
            return None, f"{name} must be 1-128 characters of A-Z a-z 0-9 _ . -"
    problem = _check_settings(body)
    for name, high in LIMITS_MS.items():
        if name in body and not _number_in(body[name], 0, high):
            problem = problem or f"{name} must be between 0 and {high}"
    return (None, problem) if problem else (body, "")


def is_keepalive(body: dict[str, Any]) -> bool:
    """pipecat's keepalive ``{"text":" ",voice_id,model,language}``: it names no request,
    says nothing of continuing or flushing, and has nothing to speak. Not a request."""
    named = any(key in body for key in ("request_id", "context_id", "cancel_request"))
    shaped = any(key in body for key in ("continue", "flush"))
    return not named and not shaped and not str(body.get("text", "")).strip()


def timed_words(text: str) -> list[tuple[str, float, float]]:
    """The words of ``text`` with where they start and end, as fractions of its length."""
    size = max(1, len(text))
    return [(m.group(), m.start() / size, m.end() / size) for m in re.finditer(r"\S+", text)]


def parse_http_body(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """A ``POST /waves/v1/tts`` body with its defaults filled in, or None and the problem."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(body, dict):
        return None, "expected a JSON object"
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return None, "text is required"
    problem = _check_settings(body)
    output_format = body.setdefault("output_format", "pcm")  # the documented default
    if output_format not in OUTPUT_FORMATS:
        problem = problem or f"output_format {output_format!r} is not served by this local fake"
    body.setdefault("sample_rate", 44100)
    body.setdefault("speed", 1.0)
    body.setdefault("language", "en")
    return (None, problem) if problem else (body, "")


def _check_settings(body: dict[str, Any]) -> str:
    if "model" in body and body["model"] not in MODELS:
        return f"model must be one of {', '.join(MODELS)}"
    if "sample_rate" in body and body["sample_rate"] not in SAMPLE_RATES:
        return f"sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}"
    if "speed" in body and not _number_in(body["speed"], 0.5, 2.0):
        return "speed must be between 0.5 and 2.0"
    for name in ("voice_id", "language"):
        if name in body and not isinstance(body[name], str):
            return f"{name} must be a string"
    return ""


def _number_in(value: Any, low: float, high: float) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok and low <= value <= high


def error_frame(request_id: str | None, message: str, code: str) -> dict[str, Any]:
    """An error frame in both documented shapes at once (top-level and nested message)."""
    frame: dict[str, Any] = {"status": "error", "message": message}
    if request_id is not None:
        frame["request_id"] = request_id
    frame["error"] = {"message": message, "code": code}
    return frame


def idle_timeout_frame(idle_s: float) -> dict[str, Any]:
    """What the server sends before it closes an idle socket, word for word as Smallest AI's
    SDK documents it (``waves/tts/client.py``, "Connection timeout"): a status and a message,
    no code and no request id."""
    return {
        "status": "error",
        "message": f"Connection timed out after {idle_s:g} seconds of inactivity",
    }


def http_error(status: int, message: str, code: str, *, retry_after: bool = False) -> Response:
    headers = [("retry-after", "1")] if retry_after else []
    return Response.json(status, error_frame(None, message, code), headers)


def idle_timeout_from(path: str, default: float) -> float:
    """The ``?timeout=N`` of the upgrade request (seconds), else the server's default."""
    values = parse_qs(urlsplit(path).query).get("timeout")
    try:
        return float(values[0]) if values else default
    except ValueError:
        return default


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
    return out.getvalue()
