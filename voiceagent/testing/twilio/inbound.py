"""What the caller does with each frame from the bot: record it, check it, and feed the
playback buffer; returns the mark echoes it makes due."""

from __future__ import annotations

import json
import logging

from voiceagent.testing.twilio import wire
from voiceagent.testing.twilio.playback import PlaybackBuffer
from voiceagent.testing.twilio.record import CallRecord, MarkOutcome, Received

logger = logging.getLogger(__name__)


def take_bot_frame(
    raw: str | bytes, t: float, stream_sid: str, playback: PlaybackBuffer, record: CallRecord
) -> list[tuple[str, MarkOutcome]]:
    """Handle one frame arriving at caller time ``t``; never raises on a bad frame."""
    if isinstance(raw, bytes):
        record.received.append(Received(t, raw, None))
        _error(record, "binary frame from the bot (Twilio takes JSON text frames only)")
        return []
    try:
        message = json.loads(raw)
    except ValueError:
        record.received.append(Received(t, raw, None))
        _error(record, f"not JSON: {raw[:80]!r}")
        return []
    record.received.append(Received(t, raw, message if isinstance(message, dict) else None))
    for error in wire.check_bot_message(message, stream_sid):
        _error(record, error)
    if not isinstance(message, dict):
        return []
    # A flagged message still plays as Twilio would play it (a file header is a click).
    event = message.get("event")
    if event == "media":
        ulaw = wire.media_payload(message) or b""
        return [(name, "played") for name in playback.add_media(t, ulaw)]
    if event == "mark":
        body = message.get("mark")
        name = body.get("name") if isinstance(body, dict) else None
        if isinstance(name, str):
            return [(reached, "played") for reached in playback.add_mark(t, name)]
    if event == "clear":
        record.clears.append(t)
        played, cleared = playback.clear(t)
        return [(name, "played") for name in played] + [(name, "cleared") for name in cleared]
    return []


def _error(record: CallRecord, error: str) -> None:
    logger.warning("twilio caller: protocol error: %s", error)
    record.protocol_errors.append(error)
