"""Lightning TTS over HTTP (``POST /waves/v1/tts``): whole phrases, no streaming in or out.

For where a WebSocket cannot go; the streaming adapter (``lightning``) starts speaking sooner.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from voiceagent import audio
from voiceagent.adapters.lightning_wire import (
    LightningError,
    LightningOptions,
    account_limiter,
    auth_headers,
    error_from_frame,
)

if TYPE_CHECKING:
    import httpx2

DEFAULT_HTTP_URL = "https://api.smallest.ai/waves/v1/tts"
QUEUE_TIMEOUT_S = 60.0  # how long a phrase waits out the account's concurrency limit
MAX_FAILURES = 3  # connection errors and 5xx answers before giving up


class LightningHTTPTTS:
    """``ports.TTS`` over Lightning's HTTP API: collects the phrase, POSTs it, yields PCM.

    Asks for ``output_format: wav`` with ``Accept: audio/wav`` (so the rate is checked from
    the header); a 429 waits and tries again (the account allows one request at a time).
    """

    def __init__(
        self,
        url: str = DEFAULT_HTTP_URL,
        api_key: str | None = None,
        *,
        model: str = "lightning_v3.1",
        voice: str | None = None,
        sample_rate: int = 24000,
        speed: float = 1.0,
        language: str = "en",
        chunk_ms: float = 40.0,
        timeout_s: float = 30.0,
        max_concurrent: int = 1,
    ) -> None:
        self.url = url
        self.options = LightningOptions.build(model, voice, sample_rate, speed, language)
        self.chunk_bytes = 2 * max(1, audio.ms_to_samples(chunk_ms, sample_rate))
        self.timeout_s = timeout_s
        self.max_concurrent = max_concurrent
        self._api_key = api_key
        self._client: httpx2.AsyncClient | None = None

    def __repr__(self) -> str:
        key = "***" if self._api_key else None
        return f"LightningHTTPTTS(url={self.url!r}, options={self.options!r}, api_key={key})"

    @property
    def sample_rate(self) -> int:
        return self.options.sample_rate

    async def __aenter__(self) -> LightningHTTPTTS:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def synthesize(self, fragments: AsyncIterable[str]) -> AsyncIterator[bytes]:
        text = "".join([fragment async for fragment in fragments])
        if not text.strip():
            return
        pcm = await self._request(text)
        for start in range(0, len(pcm), self.chunk_bytes):
            await anyio.lowlevel.checkpoint()  # cancellation lands between chunks
            yield pcm[start : start + self.chunk_bytes]

    async def _request(self, text: str) -> bytes:
        limiter = account_limiter(self.url, self._api_key, self.max_concurrent)
        if limiter is None:
            return await self._post_until_served(text)
        ticket = limiter.join()
        try:
            await ticket.wait()
            return await self._post_until_served(text)
        finally:
            limiter.leave(ticket)

    async def _post_until_served(self, text: str) -> bytes:
        import httpx2

        body = {**self.options.config(), "text": text, "output_format": "wav"}
        headers = {**auth_headers(self._api_key), "Accept": "audio/wav"}
        started, failures, waits = time.monotonic(), 0, 0
        while True:
            try:
                response = await self._http().post(self.url, json=body, headers=headers)
            except httpx2.HTTPError as exc:
                failures += 1
                if failures >= MAX_FAILURES:
                    raise LightningError(f"cannot reach Lightning: {type(exc).__name__}") from None
                await anyio.sleep(0.25 * 2**failures)
                continue
            if response.status_code == 200:
                return self._pcm(response.content)
            error = _error_of(response.status_code, response.content)
            if error.concurrency and time.monotonic() - started < QUEUE_TIMEOUT_S:
                waits += 1  # the account's one request is busy elsewhere: queue, don't fail
                await anyio.sleep(_retry_after(response.headers.get("retry-after"), waits))
                continue
            if response.status_code >= 500 and failures + 1 < MAX_FAILURES:
                failures += 1
                await anyio.sleep(0.25 * 2**failures)
                continue
            raise error

    def _pcm(self, content: bytes) -> bytes:
        if not content.startswith(b"RIFF"):
            return content[: len(content) - len(content) % 2]  # raw PCM despite the Accept
        try:
            pcm, rate = audio.parse_wav(content)
        except audio.WavFormatError as exc:
            raise LightningError(f"Lightning sent audio voiceagent cannot read: {exc}") from None
        if rate != self.sample_rate:
            resampler = audio.Resampler(rate, self.sample_rate)
            pcm = resampler.process(pcm) + resampler.flush()
        return pcm

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            import httpx2

            self._client = httpx2.AsyncClient(timeout=self.timeout_s)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _error_of(status: int, content: bytes) -> LightningError:
    try:
        payload = json.loads(content)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = error_from_frame(payload)
        error.status = status
        return error
    return LightningError(f"Lightning answered HTTP {status}", status=status)


def _retry_after(header: str | None, waits: int) -> float:
    backoff = min(2.0, 0.1 * 2.0 ** min(waits, 5))
    try:
        return min(float(header), backoff) if header else backoff
    except ValueError:
        return backoff
