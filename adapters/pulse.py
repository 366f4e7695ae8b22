"""Pulse, Smallest AI's streaming STT, over its WebSocket: ``ports.STT`` with keepalive,
reconnect-with-replay and typed errors (PROTOCOLS.md, "Pulse (STT)")."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from voiceagent.ports import SpeechEnded, SpeechStarted, STTEvent, Transcript
from voiceagent.redact import redact

from .pulse_wire import (
    BYTES_PER_SAMPLE,
    CONCURRENCY_CLOSE_CODE,
    DEFAULT_URL,
    FATAL_CLOSE_CODES,
    MAX_REPLAY_S,
    PULSE_RATES,
    RECONNECT_DELAYS_S,
    SILENCE_BYTE,
    PulseConcurrencyError,
    PulseConnectionError,
    PulseError,
    PulseServerError,
    WireLog,
    error_body,
    error_text,
    query_value,
)

logger = logging.getLogger(__name__)


class PulseSTT:
    """``ports.STT`` on Pulse. ``encoding``/``sample_rate`` describe the audio you send and are
    passed through as is (the server never resamples): ``"mulaw"`` at 8000 for phones.
    ``sample_rate`` is one of ``PULSE_RATES``; resample other audio to one of them first."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        model: str = "pulse",
        language: str = "en",
        sample_rate: int = 16000,
        encoding: str = "linear16",
        vad_events: bool = True,
        extra_query: Mapping[str, str | int | float | bool] | None = None,
        keepalive_after_s: float = 10.0,
        frame_ms: int = 20,
    ) -> None:
        if encoding not in BYTES_PER_SAMPLE:
            raise ValueError(
                f"encoding must be one of {sorted(BYTES_PER_SAMPLE)}, not {encoding!r}"
            )
        if sample_rate not in PULSE_RATES:
            listed = ", ".join(map(str, PULSE_RATES))
            raise ValueError(
                f"Pulse takes sample rates {listed} Hz, not {sample_rate}: resample the audio "
                "to one of them (voiceagent.audio.Resampler)"
            )
        if not 20 <= frame_ms <= 100:
            raise ValueError(f"Pulse takes frames of 20-100 ms, not {frame_ms}")
        self.url = url
        self._api_key = api_key
        self.model, self.language, self.vad_events = model, language, vad_events
        self._sample_rate, self._encoding = sample_rate, encoding
        self.extra_query = dict(extra_query or {})
        self.keepalive_after_s = keepalive_after_s
        self.frame_ms = frame_ms

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def encoding(self) -> str:
        return self._encoding

    @property
    def query(self) -> dict[str, str]:
        """The stream's settings as sent in the query string (booleans as "true"/"false")."""
        settings: dict[str, object] = {
            "model": self.model,
            "language": self.language,
            "sample_rate": self._sample_rate,
            "encoding": self._encoding,
            "vad_events": self.vad_events,
            **self.extra_query,
        }
        return {k: query_value(v) for k, v in settings.items()}

    @property
    def stream_url(self) -> str:
        return f"{self.url}{'&' if '?' in self.url else '?'}{urlencode(self.query)}"

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"PulseSTT(url={self.url!r}, model={self.model!r}, language={self.language!r}, "
            f"sample_rate={self._sample_rate}, encoding={self._encoding!r}, api_key={key})"
        )

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[PulseStream]:
        """One recognition stream (one socket, re-opened on a drop) for one conversation."""
        stream = PulseStream(self, self._api_key)
        await stream._open()
        try:
            yield stream
        finally:
            await stream._shutdown()
        if not stream._error_seen:
            stream._check()  # an error nobody has seen yet is not swallowed


class PulseStream:
    """``ports.STTStream`` on one Pulse socket. Audio is re-chunked into ``frame_ms`` frames.

    Every frame sent since the last final is kept: after a drop a new socket (same query)
    gets that audio again, then any ``finalize``/``close_stream`` not yet answered, so no
    speech is lost. Timestamps are mapped back onto this stream's own audio clock.
    """

    def __init__(self, stt: PulseSTT, api_key: str | None) -> None:
        self._stt = stt
        self._api_key = api_key  # only to mask it in what a server sends back
        self._wire_log = WireLog(api_key)
        self._tasks: list[asyncio.Task[None]] = []
        self._headers = {"X-Source": "voiceagent"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        width = BYTES_PER_SAMPLE[stt.encoding]
        self._width = width
        self._frame_bytes = stt.sample_rate * stt.frame_ms // 1000 * width
        self._silence = bytes([SILENCE_BYTE[stt.encoding]]) * self._frame_bytes
        self._pending = bytearray()  # audio not yet a whole frame
        self._sent_samples = 0  # this stream's audio clock
        self._replay: deque[tuple[int, bytes]] = deque()  # (start sample, frame)
        self._finalize_marks: deque[int] = deque()  # sample clock at each unanswered finalize
        self._socket_base = 0  # stream sample of the current socket's first sample
        self._speech_end: int | None = None  # stream sample of this utterance's speech_ended
        self._in_speech = False  # between speech_started and speech_ended
        self._prune_at_speech_end = False  # a final came before its utterance's speech_ended
        self._closing = False
        self._last_audio = anyio.current_time()
        # fast_acquire: a free lock is taken without a trip through the event loop (an
        # anyio Lock yields on every acquire otherwise; ten frames a second a call)
        self._lock = anyio.Lock(fast_acquire=True)
        self._ws: ClientConnection | None = None
        self._error: PulseError | None = None
        self._error_seen = False
        self._send_events, self._events = anyio.create_memory_object_stream[STTEvent | None](
            math.inf
        )
        self.reconnects = 0

    @property
    def frame_bytes(self) -> int:
        """Audio leaves in frames of this many bytes; the rest is held until more comes (or a
        finalize/close pads it): a feeder need not hand over less (``TurnTaker`` does not)."""
        return self._frame_bytes

    # -- the STTStream protocol ------------------------------------------------------------

    async def send_audio(self, audio: bytes) -> None:
        self._check()
        self._pending += audio
        if len(self._pending) < self._frame_bytes:
            return  # not a whole frame yet (most calls on a phone line): no lock to take
        async with self._lock:
            while len(self._pending) >= self._frame_bytes:
                frame = bytes(self._pending[: self._frame_bytes])
                del self._pending[: self._frame_bytes]
                await self._send_frame(frame)

    async def finalize(self) -> None:
        """Flush held audio (padded with silence to a whole frame), then ``finalize``."""
        await self._control("finalize")

    async def close(self) -> None:
        """Flush held audio, then ``close_stream``; events end after the ``is_last`` final."""
        await self._control("close_stream")

    async def events(self) -> AsyncIterator[STTEvent]:
        async for event in self._events:
            if event is None:
                break
            yield event
        self._check()

    # -- sending ---------------------------------------------------------------------------

    def _check(self) -> None:
        if self._error is not None:
            self._error_seen = True
            raise self._error

    async def _control(self, kind: str) -> None:
        self._check()
        async with self._lock:
            if self._pending:
                frame = bytes(self._pending) + self._silence[len(self._pending) :]
                self._pending.clear()
                await self._send_frame(frame)
            if kind == "finalize":
                self._finalize_marks.append(self._sent_samples)
            self._closing = self._closing or kind == "close_stream"
            await self._send(json.dumps({"type": kind}))

    async def _send_frame(self, frame: bytes) -> None:
        """Keep the frame for replay first: if the socket is dropping, the reader re-sends it."""
        self._replay.append((self._sent_samples, frame))
        self._sent_samples += len(frame) // self._width
        self._last_audio = anyio.current_time()
        # bounded: an utterance longer than this without a final loses its start on a drop
        self._drop_replay_before(self._sent_samples - int(MAX_REPLAY_S * self._stt.sample_rate))
        await self._send(frame)

    async def _send(self, data: str | bytes) -> None:
        try:
            if self._ws is not None:
                await self._ws.send(data)
        except ConnectionClosed:
            pass  # the reader sees the drop too; it reconnects and re-sends what is kept

    async def _keepalive(self) -> None:
        """Silence after ``keepalive_after_s`` without audio, so Pulse keeps the socket open."""
        while not self._closing:
            due = self._last_audio + self._stt.keepalive_after_s
            if anyio.current_time() < due:
                await anyio.sleep(due - anyio.current_time())
                continue
            async with self._lock:
                if anyio.current_time() >= self._last_audio + self._stt.keepalive_after_s:
                    logger.debug("Pulse keepalive: %d ms of silence", self._stt.frame_ms)
                    await self._send_frame(self._silence)

    def _drop_replay_before(self, sample: int) -> None:
        while (
            self._replay and self._replay[0][0] + len(self._replay[0][1]) // self._width <= sample
        ):
            self._replay.popleft()

    # -- receiving -------------------------------------------------------------------------

    async def _open(self) -> None:
        self._ws = await self._connect()
        # Plain asyncio tasks owned by this stream (websockets is asyncio-only): a task group
        # around the caller's block would wrap the caller's own exceptions in a group.
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._keepalive())]

    async def _connect(self) -> ClientConnection:
        try:
            return await connect(
                self._stt.stream_url,
                additional_headers=self._headers,
                compression=None,
                open_timeout=10,
                logger=self._wire_log,
            )
        except InvalidStatus as error:
            status, body = error.response.status_code, error_body(error, self._api_key)
            if status == 429:
                message = f"Pulse refused the stream: HTTP 429 ({body})"
                raise PulseConcurrencyError(message) from None
            raise PulseConnectionError(
                f"Pulse refused the WebSocket upgrade: HTTP {status} ({body})", status
            ) from None
        except (OSError, WebSocketException, TimeoutError) as error:
            why = redact(f"{self._stt.url}: {type(error).__name__}: {error}", (self._api_key,))
            raise PulseConnectionError(f"cannot reach Pulse at {why}") from None

    async def _read(self) -> None:
        try:
            while True:
                assert self._ws is not None
                try:
                    async for message in self._ws:
                        if isinstance(message, str) and self._on_message(json.loads(message)):
                            return
                    code = self._ws.close_code
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                    if code == CONCURRENCY_CLOSE_CODE:
                        raise PulseConcurrencyError(
                            "Pulse closed the stream with 1008: concurrency limit reached"
                        ) from None
                    if code in FATAL_CLOSE_CODES:
                        reason = redact(closed.rcvd.reason if closed.rcvd else "", (self._api_key,))
                        raise PulseServerError(f"closed with {code}: {reason}") from None
                if self._closing and code == 1000:
                    return  # closed after close_stream: the end
                await self._reconnect(code)
        except PulseError as error:
            self._error = error
        except (ValueError, TypeError) as error:  # not JSON, or not the shape Pulse sends
            why = redact(str(error), (self._api_key,))
            self._error = PulseServerError(f"unreadable message from Pulse: {why}")
        finally:
            self._send_events.send_nowait(None)
            self._send_events.close()

    def _on_message(self, message: Any) -> bool:
        """Surface one server message; True when it was the last."""
        kind = message.get("type") if isinstance(message, dict) else None
        rate = self._stt.sample_rate
        if kind == "transcription":
            final, last = bool(message.get("is_final")), bool(message.get("is_last"))
            from_finalize = bool(message.get("from_finalize"))
            if final:
                self._on_final(from_finalize, last)
            text = str(message.get("transcript") or "")
            self._send_events.send_nowait(Transcript(text, final, from_finalize, last))
            return last
        if kind in ("speech_started", "speech_ended"):
            stream_ms = (self._socket_base * 1000 / rate) + float(message.get("timestamp", 0)) * 1e3
            if kind == "speech_started":
                self._speech_end, self._in_speech = None, True
                self._send_events.send_nowait(SpeechStarted(stream_ms))
            else:
                self._speech_end, self._in_speech = round(stream_ms * rate / 1000), False
                if self._prune_at_speech_end:
                    self._prune_at_speech_end = False
                    self._drop_replay_before(self._speech_end)
                self._send_events.send_nowait(SpeechEnded(stream_ms))
        elif isinstance(message, dict) and (error := error_text(message)) is not None:
            raise PulseServerError(redact(error, (self._api_key,)), message.get("code"))
        return False

    def _on_final(self, from_finalize: bool, last: bool) -> None:
        """Audio a final covers is never needed again: drop it from the replay buffer."""
        if last:
            self._replay.clear()
            self._finalize_marks.clear()
        elif from_finalize and self._finalize_marks:
            self._drop_replay_before(self._finalize_marks.popleft())
        elif self._speech_end is not None:
            self._drop_replay_before(self._speech_end)
        elif self._in_speech:
            # The endpointing final comes before its speech_ended (the same silence window
            # fires both): the utterance's end is known at the speech_ended that follows.
            self._prune_at_speech_end = True
        else:
            # No vad_events: nothing says where the utterance ended, so all audio sent so far
            # is taken as covered (speech begun within a round trip of a drop may be lost).
            self._drop_replay_before(self._sent_samples)

    async def _reconnect(self, code: int | None) -> None:
        async with self._lock:
            for attempt, delay in enumerate(RECONNECT_DELAYS_S, 1):
                logger.warning("Pulse stream dropped (close %s); reconnect %d", code, attempt)
                await anyio.sleep(delay)
                try:
                    self._ws = await self._connect()
                except PulseConnectionError as error:
                    if error.status in (400, 401, 403, 404):
                        raise
                    continue
                self.reconnects += 1
                await self._replay_to_new_socket()
                return
            raise PulseConnectionError(f"Pulse dropped the stream and {attempt} reconnects failed")

    async def _replay_to_new_socket(self) -> None:
        self._socket_base = self._replay[0][0] if self._replay else self._sent_samples
        self._speech_end, self._in_speech, self._prune_at_speech_end = None, False, False
        marks = deque(self._finalize_marks)
        for start, frame in list(self._replay):
            while marks and marks[0] <= start:
                marks.popleft()
                await self._send(json.dumps({"type": "finalize"}))
            await self._send(frame)
        for _ in marks:
            await self._send(json.dumps({"type": "finalize"}))
        if self._closing:
            await self._send(json.dumps({"type": "close_stream"}))

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._ws is not None:
                await self._ws.close()


__all__ = [
    "BYTES_PER_SAMPLE",
    "CONCURRENCY_CLOSE_CODE",
    "DEFAULT_URL",
    "PULSE_RATES",
    "SILENCE_BYTE",
    "PulseConcurrencyError",
    "PulseConnectionError",
    "PulseError",
    "PulseSTT",
    "PulseServerError",
    "PulseStream",
]
