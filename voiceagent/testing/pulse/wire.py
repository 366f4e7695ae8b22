"""Pulse's wire format as the fake serves it: the query configuration, audio decoding and the
JSON messages the server sends (PROTOCOLS.md, "Pulse (STT)")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from voiceagent import audio

WS_PATH = "/waves/v1/stt/live"
MODELS = ("pulse",)
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
    query: dict[str, str] = field(default_factory=dict)

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * BYTES_PER_SAMPLE[self.encoding]


def parse_query(path: str, eou_timeout_ms: int = 800) -> StreamConfig:
    """The configuration in a request path's query; ConfigError says what is wrong."""
    query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    flags = {name: _boolean(query, name) for name in BOOLEANS if name in query}
    model = query.get("model", "pulse")
    if model not in MODELS:
        raise ConfigError(f"model {model!r} is not served for streaming; use one of {MODELS}")
    encoding = query.get("encoding", "linear16")
    if encoding not in BYTES_PER_SAMPLE:
        served = ", ".join(BYTES_PER_SAMPLE)
        raise ConfigError(f"encoding {encoding!r} is not supported by this server ({served})")
    rate = _integer(query, "sample_rate", 16000)
    if not 8000 <= rate <= 48000:
        raise ConfigError(f"sample_rate must be 8000-48000 Hz, not {rate}")
    eou = _integer(query, "eou_timeout_ms", eou_timeout_ms)
    if not 100 <= eou <= 10000:
        raise ConfigError(f"eou_timeout_ms must be 100-10000, not {eou}")
    return StreamConfig(
        model=model,
        language=query.get("language", "en"),
        sample_rate=rate,
        encoding=encoding,
        vad_events=flags.get("vad_events", False),
        endpointing=flags.get("endpointing", True),
        eou_timeout_ms=eou,
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
    return {"type": "error", "message": message, **({"code": code} if code else {})}
