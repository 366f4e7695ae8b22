"""The Twilio caller simulator: Twilio's side of a Media Stream over a real websocket."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.from_thread import start_blocking_portal
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voiceagent.audio import write_wav
from voiceagent.testing.twilio import wire
from voiceagent.testing.twilio.inbound import take_bot_frame
from voiceagent.testing.twilio.playback import PlaybackBuffer
from voiceagent.testing.twilio.record import CallRecord, MarkOutcome, Sent
from voiceagent.testing.twilio.speech import SpeechQueue, SpeechSource, load_speech

DTMF_DIGITS = frozenset("0123456789*#ABCD")
_PLAYER_TICK_S = 0.02  # caller-clock seconds between playback checks when no mark is due
_MIN_SLEEP_S = 0.002  # real seconds: keeps a fast clock from spinning the event loop


class TwilioCaller(CallRecord):
    """One simulated phone call into a bot's Twilio Media Streams websocket.

    Sends ``connected``, ``start``, then a 20 ms μ-law ``media`` frame per 20 ms of caller
    clock (the caller's speech, else silence) until ``stop()``, ``hang_up()``, the bot
    closing, or ``trailing_silence_s`` of silence after the last speech (None: the line
    stays open). ``speed`` > 1 runs the caller's clock, and the playback model, faster.
    Use ``async with`` (the call runs in the background) or ``await caller.run()``.
    """

    def __init__(
        self,
        url: str,
        *,
        audio: SpeechSource | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        speed: float = 1.0,
        headers: Mapping[str, str] | None = None,
        trailing_silence_s: float | None = None,
        record_path: str | Path | None = None,
        sample_rate: int = wire.SAMPLE_RATE,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        super().__init__()
        self.url = url
        self.custom_parameters = dict(custom_parameters or {})
        self.stream_sid = stream_sid or wire.new_sid("MZ")
        self.call_sid = call_sid or wire.new_sid("CA")
        self.account_sid = account_sid or wire.new_sid("AC")
        self.speed = speed
        self.headers = dict(headers or {})
        self.trailing_silence_s = trailing_silence_s
        self.record_path = Path(record_path) if record_path is not None else None
        self.playback = PlaybackBuffer()
        self._speech = SpeechQueue()
        if audio is not None:
            self._speech.add(load_speech(audio, sample_rate), 0.0)
        self._ws: ClientConnection | None = None
        self._t0 = 0.0
        self._seq = 0
        self._send_lock = anyio.Lock()
        self._closing = False
        self._started = False
        self._ended = anyio.Event()
        self._tg: TaskGroup | None = None
        self._outbox: list[str] = []  # mark echoes recorded, not yet sent
        self._delayed: list[str] = []  # numbered and recorded, delivered after the next one
        self._changed = anyio.Event()  # set (and replaced) whenever the record grows

    # -- what the caller heard -----------------------------------------------------------

    @property
    def heard_pcm(self) -> bytes:
        """PCM16 at 8 kHz of what the caller heard, silences included; sample 0 = t 0."""
        return bytes(self.playback.heard)

    @property
    def media_played_at(self) -> list[float | None]:
        """Per bot media message (arrival order): caller time it began playing, None if never."""
        return self.playback.media_played_at

    @property
    def pending_marks(self) -> list[str]:
        """Marks the bot sent that are neither played nor cleared yet."""
        return self.playback.pending_marks

    def now(self) -> float:
        """Seconds on the caller's clock since ``connected`` was sent (0 before)."""
        return (time.perf_counter() - self._t0) * self.speed if self._started else 0.0

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> TwilioCaller:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(self._call)
        except BaseException:
            # The call failed before it started (refused, rejected upgrade): raise that
            # error itself, not a group around it.
            tg.cancel_scope.cancel()
            with contextlib.suppress(BaseException):
                await tg.__aexit__(None, None, None)
            raise
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        if exc is None:
            await self.stop()
        else:
            tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc, tb)

    @classmethod
    @contextmanager
    def running_in_thread(cls, url: str, **kwargs: Any) -> Iterator[TwilioCaller]:
        """Place the call on an event loop in a background thread (for synchronous tests);
        ``stop`` on leaving. Read the record after the block; it is shared with that thread."""
        caller = cls(url, **kwargs)
        with start_blocking_portal() as portal, portal.wrap_async_context_manager(caller):
            yield caller

    async def run(self) -> None:
        """Place the call; return when it ended (the bot closed, or ``stop``/``hang_up``)."""
        await self._call()

    async def wait(self) -> None:
        """Until the call has ended."""
        await self._ended.wait()

    async def wait_for(self, condition: Callable[[], bool]) -> bool:
        """Until ``condition()`` holds (True) or the call has ended (its last value).

        Checked after every message either way; bound it with
        ``anyio.fail_after``.
        """
        while not condition() and not self.ended:
            changed = self._changed
            await changed.wait()
        return condition()

    # -- what the caller does ------------------------------------------------------------

    def say(self, audio: SpeechSource, *, at: float | None = None, sample_rate: int = 8000) -> None:
        """Queue more speech from caller time ``at`` (default now; after any speech queued)."""
        self._speech.add(load_speech(audio, sample_rate), self.now() if at is None else at)

    async def send_dtmf(self, digit: str) -> None:
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        await self._send(lambda seq: self._dtmf_message(seq, digit))

    async def stop(self) -> None:
        """End the stream as Twilio does: ``stop``, then a normal close."""
        if self._closing or self._ws is None:
            return
        await self._send(self._stop_message)
        self._closing = True
        await self._ws.close()

    async def hang_up(self, *, abrupt: bool = False) -> None:
        """The caller hangs up: like ``stop``; ``abrupt`` drops the TCP connection instead."""
        if not abrupt:
            await self.stop()
        elif self._ws is not None and not self._closing:
            self._closing = True
            self._ws.transport.abort()

    # -- the call ------------------------------------------------------------------------

    async def _call(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if self._started:
            raise RuntimeError("a TwilioCaller places one call; make another for the next")
        try:
            async with connect(
                self.url, additional_headers=self.headers, compression=None, max_size=None
            ) as ws:
                self._ws = ws
                self._t0 = time.perf_counter()
                self._started = True
                if (hello := self._connected_message()) is not None:
                    await self._send(lambda _: hello, numbered=False)
                await self._send(self._start_message)
                task_status.started()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._send_audio)
                    tg.start_soon(self._play)
                    await self._receive(ws)
                    tg.cancel_scope.cancel()
                self.close_code, self.close_reason = ws.close_code, ws.close_reason or ""
        finally:
            self._closing = True
            if self._started:
                self.playback.advance(self.now())
                self._finish_recording()
            self._ended.set()
            self._notify()

    def _finish_recording(self) -> None:
        if self.record_path is not None:
            write_wav(self.record_path, self.heard_pcm, wire.SAMPLE_RATE)

    async def _send(
        self, build: Callable[[str], dict[str, Any]], *, numbered: bool = True, delay: bool = False
    ) -> bool:
        """Number, log and send one message (in sequence order; ``delay``: after the next
        one, as a network reordering would); False once the line closed."""
        async with self._send_lock:
            if self._closing or self._ws is None:
                return False
            seq: str | None = None
            if numbered:
                self._seq += 1
                seq = str(self._seq)
            message = build(seq or "")
            self.sent.append(Sent(self.now(), seq, message))
            if delay:
                self._delayed.append(json.dumps(message))
                return True
            try:
                await self._ws.send(json.dumps(message))
                while self._delayed:
                    await self._ws.send(self._delayed.pop(0))
            except ConnectionClosed:
                return False
        self._notify()
        return True

    async def _send_audio(self) -> None:
        """One frame per 20 ms of caller clock, on absolute deadlines (late frames catch up)."""
        chunk = 0
        quiet_since: float | None = None  # caller time of the first frame of trailing silence
        while True:
            t = chunk * wire.FRAME_S
            await self._sleep_until(t)
            silent = self._speech.idle
            frame = self._speech.next_frame(t)
            chunk += 1
            if not await self._send_media(chunk, round(t * 1000), frame):
                return
            quiet_since = (t if quiet_since is None else quiet_since) if silent else None
            limit = self.trailing_silence_s
            if limit is not None and quiet_since is not None:
                if t + wire.FRAME_S - quiet_since >= limit - 1e-9:
                    await self.stop()
                    return

    async def _play(self) -> None:
        """Move the playback model on: echo each mark once the audio before it has played."""
        while True:
            self._echo(self.playback.advance(self.now()), "played")
            due = self.playback.next_mark_due()
            step = _PLAYER_TICK_S if due is None else min(_PLAYER_TICK_S, due - self.now())
            await anyio.sleep(max(_MIN_SLEEP_S, step / self.speed))
            await self._flush_echoes()

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                echoes = self._take(raw)
                for name, outcome in echoes:
                    self._echo([name], outcome)
                self._notify()
                await self._flush_echoes()
        except ConnectionClosed:
            pass

    def _echo(self, names: list[str], outcome: MarkOutcome) -> None:
        # Recorded now, in the order the model reached them; sent by _flush_echoes in order.
        for name in names:
            self.marks.append((name, outcome, self.now()))
            self._outbox.append(name)

    async def _flush_echoes(self) -> None:
        while self._outbox:
            name = self._outbox.pop(0)
            await self._send(partial(self._echo_message, name=name))
        self._notify()

    # -- Twilio's wire shapes (a carrier's simulator overrides these) ---------------------

    def _connected_message(self) -> dict[str, Any] | None:
        return wire.connected()

    def _start_message(self, seq: str) -> dict[str, Any]:
        return wire.start(
            seq, self.stream_sid, self.account_sid, self.call_sid, self.custom_parameters
        )

    def _dtmf_message(self, seq: str, digit: str) -> dict[str, Any]:
        return wire.dtmf(seq, self.stream_sid, digit)

    def _stop_message(self, seq: str) -> dict[str, Any]:
        return wire.stop(seq, self.stream_sid, self.account_sid, self.call_sid)

    def _echo_message(self, seq: str, name: str) -> dict[str, Any]:
        return wire.mark(seq, self.stream_sid, name)

    async def _send_media(self, chunk: int, timestamp_ms: int, ulaw: bytes) -> bool:
        return await self._send(
            lambda seq: wire.media(seq, self.stream_sid, chunk, timestamp_ms, ulaw)
        )

    def _take(self, raw: str | bytes) -> list[tuple[str, MarkOutcome]]:
        return take_bot_frame(raw, self.now(), self.stream_sid, self.playback, self)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _sleep_until(self, t: float) -> None:
        delay = self._t0 + t / self.speed - time.perf_counter()
        if delay > 0:
            await anyio.sleep(delay)
