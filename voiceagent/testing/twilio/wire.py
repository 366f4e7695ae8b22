"""Twilio Media Streams wire shapes: the messages the caller sends, and checks of the bot's."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

SAMPLE_RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law, one byte per sample
FRAME_S = FRAME_BYTES / SAMPLE_RATE
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1}
BOT_EVENTS = ("media", "mark", "clear")

# Leading bytes of container formats: a bot that sends a file instead of raw μ-law.
FILE_HEADERS = {
    b"RIFF": "WAV (RIFF)",
    b"ID3": "MP3 (ID3)",
    b"OggS": "Ogg",
    b"fLaC": "FLAC",
    b"#!AMR": "AMR",
    b"FORM": "AIFF",
    b".snd": "AU",
    b"caff": "CAF",
}


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: two letters and 32 hex digits (``MZ…``, ``CA…``, ``AC…``)."""
    return prefix + secrets.token_hex(16)


def connected() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start(
    seq: str,
    stream_sid: str,
    account_sid: str,
    call_sid: str,
    custom_parameters: dict[str, str],
) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": seq,
        "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid,
            "accountSid": account_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": dict(custom_parameters),
            "mediaFormat": dict(MEDIA_FORMAT),
        },
    }


def media(seq: str, stream_sid: str, chunk: int, timestamp_ms: int, ulaw: bytes) -> dict[str, Any]:
    # Twilio sends chunk and timestamp as decimal strings.
    return {
        "event": "media",
        "sequenceNumber": seq,
        "streamSid": stream_sid,
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(timestamp_ms),
            "payload": base64.b64encode(ulaw).decode("ascii"),
        },
    }


def dtmf(seq: str, stream_sid: str, digit: str) -> dict[str, Any]:
    return {
        "event": "dtmf",
        "sequenceNumber": seq,
        "streamSid": stream_sid,
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def mark(seq: str, stream_sid: str, name: str) -> dict[str, Any]:
    return {"event": "mark", "sequenceNumber": seq, "streamSid": stream_sid, "mark": {"name": name}}


def stop(seq: str, stream_sid: str, account_sid: str, call_sid: str) -> dict[str, Any]:
    return {
        "event": "stop",
        "sequenceNumber": seq,
        "streamSid": stream_sid,
        "stop": {"accountSid": account_sid, "callSid": call_sid},
    }


def check_bot_message(message: Any, stream_sid: str) -> list[str]:
    """Protocol errors in one parsed JSON message from the bot (empty when it is fine)."""
    if not isinstance(message, dict):
        return [f"message is not a JSON object: {type(message).__name__}"]
    event = message.get("event")
    if event not in BOT_EVENTS:
        return [f"unknown event {event!r} (the bot may send only media, mark, clear)"]
    errors: list[str] = []
    sid = message.get("streamSid")
    if sid is None:
        errors.append(f"{event}: missing streamSid")
    elif sid != stream_sid:
        errors.append(f"{event}: wrong streamSid {sid!r} (the stream is {stream_sid!r})")
    if event == "media":
        errors += _check_media(message.get("media"))
    elif event == "mark":
        body = message.get("mark")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            errors.append("mark: missing mark.name (a string)")
    return errors


def media_payload(message: dict[str, Any]) -> bytes | None:
    """The μ-law bytes of a bot ``media`` message, or None when they are unusable."""
    body = message.get("media")
    if not isinstance(body, dict) or not isinstance(body.get("payload"), str):
        return None
    try:
        return base64.b64decode(body["payload"], validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_media(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["media: missing media object"]
    payload = body.get("payload")
    if not isinstance(payload, str):
        return ["media: missing media.payload (a base64 string)"]
    errors: list[str] = []
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return ["media: payload is not base64"]
    if not audio:
        errors.append("media: empty payload")
    for header, kind in FILE_HEADERS.items():
        if audio.startswith(header):
            errors.append(f"media: payload starts with a {kind} file header (send raw μ-law)")
    track = body.get("track")
    if track is not None and track != "outbound":
        errors.append(f"media: track {track!r} (audio to the caller is the outbound track)")
    errors += _check_format(body)
    return errors


def _check_format(body: dict[str, Any]) -> list[str]:
    # Twilio's outbound media needs only a payload; format fields, when sent, must agree.
    errors: list[str] = []
    fmt = body.get("mediaFormat")
    fields = dict(fmt) if isinstance(fmt, dict) else {}
    for key in ("encoding", "sampleRate", "channels"):
        if key in body:
            fields[key] = body[key]
    for key, want in MEDIA_FORMAT.items():
        if key in fields and fields[key] != want:
            errors.append(f"media: {key} {fields[key]!r} (the line is {want!r})")
    return errors
