"""Offline TTS through the espeak-ng program: light, robotic, identical output every run.

espeak-ng is GPL-3, so it runs as a subprocess and is never imported or linked.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterable, AsyncIterator

import anyio
import anyio.lowlevel

from voiceagent import audio

INSTALL_HINT = "install it with: apt-get install espeak-ng (Debian/Ubuntu package espeak-ng)"


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed; the message says what to do."""


class EspeakTTS:
    """``ports.TTS`` over ``espeak-ng --stdout``, one process per phrase.

    espeak-ng does not stream text in, so a phrase is synthesised once all its fragments
    have arrived; its 22,050 Hz output is resampled to ``sample_rate`` and yielded in
    ``chunk_ms`` chunks. Cancelling the consumer kills the process.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        voice: str = "en-us",
        words_per_minute: int = 175,
        chunk_ms: float = 20.0,
    ) -> None:
        executable = shutil.which("espeak-ng")
        if executable is None:
            raise EspeakError(f"the espeak-ng program was not found on PATH; {INSTALL_HINT}")
        self.executable = executable
        self._sample_rate = sample_rate
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.chunk_samples = max(1, audio.ms_to_samples(chunk_ms, sample_rate))

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        text = "".join([fragment async for fragment in fragments])
        if not text.strip():
            return
        pcm = await self._run(text)
        for start in range(0, len(pcm), 2 * self.chunk_samples):
            await anyio.lowlevel.checkpoint()  # cancellation lands between chunks
            yield pcm[start : start + 2 * self.chunk_samples]

    async def _run(self, text: str) -> bytes:
        """The phrase's audio at ``sample_rate``; a cancelled run kills espeak-ng."""
        command = [self.executable, "-v", self.voice, "-s", str(self.words_per_minute)]
        try:
            # run_process kills the process when the awaiting task is cancelled.
            done = await anyio.run_process(
                [*command, "--stdout"], input=text.encode("utf-8"), check=False
            )
        except FileNotFoundError as error:
            raise EspeakError(f"could not run {self.executable}; {INSTALL_HINT}") from error
        if done.returncode != 0 or not done.stdout:
            detail = done.stderr.decode("utf-8", "replace").strip() or "no output"
            raise EspeakError(f"espeak-ng failed (exit {done.returncode}): {detail}")
        try:
            pcm, rate = audio.parse_wav(done.stdout)
        except audio.WavFormatError as error:
            raise EspeakError(f"espeak-ng wrote audio voiceagent cannot read: {error}") from error
        resampler = audio.Resampler(rate, self._sample_rate)
        return resampler.process(pcm) + resampler.flush()

    async def aclose(self) -> None:
        """Nothing to release: each phrase's process ends with its phrase."""
