"""The carrier-neutral frame model: what any carrier's media stream tells us, decoded from its
own wire names by that carrier's serializer."""

from __future__ import annotations

from dataclasses import dataclass, field

from voiceagent import audio

SAMPLE_RATE = 8000  # Hz: the line's rate, both ways, unless a carrier's start says otherwise
MIN_RATE, MAX_RATE = 8000, 48000  # Hz: the rates carriers announce (8, 16, 24 kHz) and more
CODECS = ("PCMU", "PCMA", "L16")  # μ-law, A-law, 16-bit linear PCM (little-endian here)


class FrameError(ValueError):
    """An inbound message we cannot use (not JSON, not an object, missing fields)."""


class UnknownEvent(FrameError):
    """A well-formed message whose ``event`` we do not know (carriers add new ones)."""


class UnsupportedStart(FrameError):
    """A ``start`` announcing what we cannot serve (a sample rate no carrier uses): the call
    is refused, not run on a guess."""


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str  # the stream's id (Twilio streamSid, Telnyx stream_id, Plivo streamId…)
    call_sid: str  # the call's id (callSid, call_control_id, callId, call_sid)
    account_sid: str = ""
    tracks: tuple[str, ...] = ()
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"  # as the carrier names it
    sample_rate: int = SAMPLE_RATE
    channels: int = 1
    codec: str = "PCMU"  # one of CODECS: how inbound media is encoded


@dataclass(frozen=True, slots=True)
class Media:
    payload: bytes  # the caller's audio as sent, in ``codec``
    track: str = "inbound"
    timestamp_ms: int | None = None  # since the stream started, by the carrier's clock
    codec: str = "PCMU"
    chunk: int | None = None  # the carrier's media counter, where it sends one

    @property
    def ulaw(self) -> bytes:
        """The audio as μ-law (Twilio's only codec; the name older code reads)."""
        return self.payload if self.codec == "PCMU" else audio.ulaw_encode(self.pcm())

    def pcm(self) -> bytes:
        """The audio as PCM16 little-endian at the stream's rate."""
        return decode(self.payload, self.codec)


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    name: str  # a mark/checkpoint we sent, echoed once the audio before it has played


@dataclass(frozen=True, slots=True)
class Cleared:
    """The carrier acknowledged a clear (Plivo ``clearedAudio``, Exotel's ``clear`` echo)."""


@dataclass(frozen=True, slots=True)
class Stop:
    pass


Frame = Connected | Start | Media | Dtmf | Mark | Cleared | Stop


def decode(payload: bytes, codec: str) -> bytes:
    """PCM16 little-endian of ``payload`` in ``codec`` (L16 here is already little-endian)."""
    if codec == "PCMU":
        return audio.ulaw_decode(payload)
    if codec == "PCMA":
        return audio.alaw_decode(payload)
    if codec == "L16":
        return payload[: len(payload) - len(payload) % 2]
    raise FrameError(f"unsupported codec {codec!r}")


def encode(pcm: bytes, codec: str) -> bytes:
    """``pcm`` (PCM16 little-endian) in ``codec``."""
    if codec == "PCMU":
        return audio.ulaw_encode(pcm)
    if codec == "PCMA":
        return audio.alaw_encode(pcm)
    if codec == "L16":
        return pcm
    raise FrameError(f"unsupported codec {codec!r}")
