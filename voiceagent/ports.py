"""The small protocols adapters plug into: text-to-speech, the audio a speaker pulls,
speech-to-text, voice activity detection, and the transports a session runs over.

Ground floor: adapters implement these; the core never imports an adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TTS(Protocol):
    """Streaming text-to-speech: one call = one phrase = one TTS request = one segment.

    ``synthesize`` reads the phrase's text fragments as they arrive (the iterable ends when
    the phrase is complete, which is the flush) and yields 16-bit signed little-endian mono
    PCM at ``sample_rate`` as soon as it is synthesised. Cancelling the consumer cancels the
    request; audio of a cancelled request is never yielded afterwards.
    """

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    """What a speaker plays: PCM16 mono pulled block by block, like a sound card callback.

    A source may also offer ``async def wait_for_audio() -> bool``: it returns once a read
    would give audio (or move the source on), True when it had to wait. A speaker whose read
    gave nothing may then sleep in it instead of reading a silent block every block, and on
    waking reads at the position due by then (an output that stands for a listener writes
    the silence it slept through first, not the silent block it read before the sleep). The
    session's speech queue offers it; speakers check with ``getattr``.
    """

    @property
    def sample_rate(self) -> int: ...

    def read(self, n_samples: int, position: int) -> bytes:
        """Up to ``n_samples`` samples to play from output sample ``position`` on.

        ``position`` counts samples since the output started (sample 0 = the session's
        t=0), so a source can time-stamp exactly when its audio is heard. Returns fewer
        samples (or b"") when nothing more is queued: the speaker fills with silence.
        """
        ...


@runtime_checkable
class AudioSink(Protocol):
    """A speaker: plays a source in real time until cancelled (silence when it is empty)."""

    @property
    def sample_rate(self) -> int: ...

    async def play(self, source: AudioSource) -> None: ...


# --- listening: speech-to-text and voice activity detection ---------------------------


@dataclass(frozen=True, slots=True)
class Transcript:
    """Text heard so far. Partials (``is_final=False``) revise the current segment; finals
    are never revised. ``from_finalize`` marks the final that answers ``finalize()``;
    ``is_last`` the final that answers ``close()``."""

    text: str
    is_final: bool
    from_finalize: bool = False
    is_last: bool = False


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The speaker started talking, ``at_ms`` into the audio sent (or into the stream)."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The speaker stopped talking (after the detector's hangover), ``at_ms`` into the audio."""

    at_ms: float


STTEvent = Transcript | SpeechStarted | SpeechEnded
VADEvent = SpeechStarted | SpeechEnded


@runtime_checkable
class STTStream(Protocol):
    """One open recognition stream: audio in, events out."""

    async def send_audio(self, audio: bytes) -> None:
        """Audio in the STT's ``encoding`` at its ``sample_rate``, mono, any length."""
        ...

    async def finalize(self) -> None:
        """End of the user's turn: a final transcript (``from_finalize``) follows."""
        ...

    async def close(self) -> None:
        """Hang-up: a last final (``is_last``) follows, then the events end."""
        ...

    def events(self) -> AsyncIterator[STTEvent]: ...


@runtime_checkable
class STT(Protocol):
    """Streaming speech-to-text; ``encoding`` is ``"linear16"`` (PCM16) or ``"mulaw"``."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def encoding(self) -> str: ...

    def stream(self) -> AbstractAsyncContextManager[STTStream]: ...


@runtime_checkable
class VAD(Protocol):
    """Voice activity detection over PCM16 mono: feed any amount, get start/end events.

    Implementations have a threshold and a hangover (silence needed before the end)."""

    @property
    def sample_rate(self) -> int: ...

    def process(self, pcm: bytes) -> list[VADEvent]: ...

    def reset(self) -> None: ...


# --- transports: where a session's audio and text come from and go to ------------------


@runtime_checkable
class Transport(Protocol):
    """A conversation's two ends: what the user sends, and the speaker the agent talks into.

    ``incoming()`` yields the user's input as it arrives — ``bytes`` of PCM16 mono audio at
    ``input_rate`` (any length), or ``str`` for a line of typed text — and ends at
    hang-up. ``output`` plays the agent (a WAV file, a sound card, a phone line).
    ``metadata`` is the call's data for tools (e.g. Twilio ``customParameters``).
    """

    @property
    def input_rate(self) -> int: ...

    @property
    def output(self) -> AudioSink: ...

    @property
    def metadata(self) -> Mapping[str, Any]: ...

    def incoming(self) -> AsyncIterator[bytes | str]: ...

    async def aclose(self) -> None: ...
