"""The small protocols adapters plug into: text-to-speech, and the audio a speaker pulls.

Ground floor: adapters implement these; the core never imports an adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, runtime_checkable


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
    """What a speaker plays: PCM16 mono pulled block by block, like a sound card callback."""

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
