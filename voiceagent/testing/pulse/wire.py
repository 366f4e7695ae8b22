"""Pulse's wire format as the fake serves it: the query configuration, audio decoding and the
JSON messages the server sends (PROTOCOLS.md, "Pulse (STT)")."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from voiceagent import audio

WS_PATH = "/waves/v1/stt/live"
# pulse-2 beside pulse (pipecat services/smallest/stt.py:92-96); pulse-2 is English-only and
# the server closes on another language (ibid. 99-112)
MODELS = ("pulse", "pulse-2")
ENGLISH_ONLY = ("pulse-2",)
# The rates Smallest lists (LiveKit plugin stt.py:176-177); the server never resamples
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
BYTES_PER_SAMPLE = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
BOOLEANS = ("vad_events", "endpointing", "word_timestamps", "full_transcript", "punctuate")
CONCURRENCY_CLOSE = (1008, "concurrency limit reached")
BAD_CONFIG_CLOSE = 1003  # "unsupported data": the query asks for something not served


class ConfigError(ValueError):
    """The query string asks for a configuration Pulse does not serve."""


@dataclass(frozen=True)
class StreamConfig:
    """One stream's settings, parsed and validated from its query string."""

    model: str = "pulse"
    language: str = "en"
    sample_rate: int = 16000
    encoding: str = "linear16"
    vad_events: bool = False
    endpointing: bool = True
    eou_timeout_ms: int = 800
    # the server VAD's silence window (LiveKit sends endpointing_timeout=300, stt.py:684-685);
    # None: the blank-token endpoint's eou_timeout_ms decides
    endpointing_timeout_ms: int | None = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * BYTES_PER_SAMPLE[self.encoding]


def model_refusal(path: str) -> str | None:
    """Why the upgrade is refused (HTTP 400) for its ``model``, or None: the SDK says "`model`
    is required. Missing or invalid values return 400 before the WebSocket upgrades" (smallestai
    waves/speech_to_text/client.py:340; 261 for pulse-pro)."""
    model = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True)).get("model")
    if not model:
        return f"model is required; use one of {', '.join(MODELS)}"
    if model not in MODELS:
        return f"model {model!r} is not served for streaming; use one of {', '.join(MODELS)}"
    return None


def refusal_body(message: str) -> dict[str, Any]:
    """An HTTP refusal's JSON body, the SDK's SttErrorResponse (types/stt_error_response.py)."""
    return {"error": message, "request_id": secrets.token_hex(8)}


def parse_query(path: str, eou_timeout_ms: int = 800) -> StreamConfig:
    """The configuration in a request path's query; ConfigError says what is wrong."""
    query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    flags = {name: _boolean(query, name) for name in BOOLEANS if name in query}
    model = query.get("model", "pulse")
    if model not in MODELS:
        raise ConfigError(f"model {model!r} is not served for streaming; use one of {MODELS}")
    language = query.get("language", "en")
    if model in ENGLISH_ONLY and language.split("-")[0].lower() != "en":
        raise ConfigError(f"model {model!r} is English-only, not language {language!r}")
    encoding = query.get("encoding", "linear16")
    if encoding not in BYTES_PER_SAMPLE:
        served = ", ".join(BYTES_PER_SAMPLE)
        raise ConfigError(f"encoding {encoding!r} is not supported by this server ({served})")
    rate = _integer(query, "sample_rate", 16000)
    if rate not in SAMPLE_RATES:
        listed = ", ".join(map(str, SAMPLE_RATES))
        raise ConfigError(f"sample_rate must be one of {listed} Hz, not {rate}")
    eou = _integer(query, "eou_timeout_ms", eou_timeout_ms)
    if not 100 <= eou <= 10000:
        raise ConfigError(f"eou_timeout_ms must be 100-10000, not {eou}")
    window = _integer(query, "endpointing_timeout", 0) if "endpointing_timeout" in query else None
    if window is not None and not 100 <= window <= 10000:
        raise ConfigError(f"endpointing_timeout must be 100-10000, not {window}")
    return StreamConfig(
        model=model,
        language=language,
        sample_rate=rate,
        encoding=encoding,
        vad_events=flags.get("vad_events", False),
        endpointing=flags.get("endpointing", True),
        eou_timeout_ms=eou,
        endpointing_timeout_ms=window,
        query=query,
    )


def _boolean(query: dict[str, str], name: str) -> bool:
    value = query[name]
    if value not in ("true", "false"):
        raise ConfigError(f'{name} must be "true" or "false", not {value!r}')
    return value == "true"


def _integer(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {query[name]!r}") from None


def decode(frame: bytes, encoding: str) -> bytes:
    """A frame of audio in ``encoding`` as PCM16."""
    if encoding == "mulaw":
        return audio.ulaw_decode(frame)
    if encoding == "alaw":
        return audio.alaw_decode(frame)
    if encoding == "linear32":
        import numpy as np

        wide = np.frombuffer(frame[: len(frame) - len(frame) % 4], dtype="<i4")
        return (wide >> 16).astype("<i2").tobytes()
    return frame[: len(frame) - len(frame) % 2]


def transcription(
    session_id: str,
    text: str,
    *,
    is_final: bool,
    is_last: bool = False,
    from_finalize: bool = False,
    language: str = "en",
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "transcription",
        "status": "success",
        "session_id": session_id,
        "transcript": text,
        # the DTO emits both (SDK types/transcription_event.py:16-20; LiveKit stt.py:768-769)
        "transcription": text,
        "is_final": is_final,
        "is_last": is_last,
    }
    if is_final:
        message["from_finalize"] = from_finalize
        message["language"] = language
    return message


def vad_event(kind: str, at_ms: float) -> dict[str, Any]:
    return {"type": kind, "timestamp": round(at_ms / 1000.0, 3)}


def error(message: str, code: str | None = None) -> dict[str, Any]:
    """The public API's error frame: type, status, message (SDK
    types/transcription_error_event.py:12-14; LiveKit stt.py:602-612 reads ``status``)."""
    frame = {"type": "error", "status": "error", "message": message}
    return {**frame, **({"code": code} if code else {})}


def bare_error(message: str) -> dict[str, Any]:
    """An error as a server reached directly sends it (LiveKit stt.py:30, 602-606)."""
    return {"error": message}


# the answer to {"type":"keepalive"} (LiveKit stt.py:224-226, 617)
PONG: dict[str, Any] = {"type": "pong"}
