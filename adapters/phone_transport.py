"""One phone call as a ``ports.Transport``: the caller's μ-law decoded, DTMF, and the agent's
voice paced down the line with a mark after each segment, heard as Twilio's marks say."""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import anyio

from voiceagent import audio, ports
from voiceagent.adapters import twilio
from voiceagent.adapters.carriers import Serializer, TwilioSerializer
from voiceagent.adapters.carriers.frames import decode
from voiceagent.adapters.inbound_pacer import (
    BURST_S,
    FLOOD_CLOSE_CODE,
    FLOOD_CLOSE_S,
    FLOOD_REASON,
    INBOX_S,
    NOT_READING_REASON,
    OUTBOX_S,
    InboundPacer,
)
from voiceagent.adapters.line_clock import PacedSpeaker, SpokenSegment
from voiceagent.adapters.mailbox import Mailbox
from voiceagent.sparse_log import SparseLog
from voiceagent.wire_text import printable

logger = logging.getLogger(__name__)

FRAME_MS = 40  # outbound: a media message per 40 ms (the caller's come in 20 ms frames)
DTMF_KEYS = frozenset("0123456789*#ABCD")  # a keypad's; anything else from the wire is dropped
DIGITS_KEPT = 256  # ``PhoneTransport.digits``: a call's newest keys (the older ones counted)
KEYPAD_LINE_MAX = 64  # keys in one line of keypad text (``dtmf_text``); more are dropped
DROP_LOG_EVERY_S = 10.0  # after the first, a call's drop warnings at most this often
# While nothing plays, a line sends nothing (not a silent frame every 40 ms): measured in
# bench/phone_load.py --silent. VOICEAGENT_PHONE_IDLE_SILENCE=1 brings the silent frames back
# (the A/B of that bench).
IDLE_SILENCE_ENV = "VOICEAGENT_PHONE_IDLE_SILENCE"


_Sent = tuple[SpokenSegment | None, int]  # samples of one segment (None: silence) on the line


class PhoneSpeaker(PacedSpeaker):
    """``ports.AudioSink`` for one Twilio stream; ``send`` queues a text frame for the socket.

    Frame k (``frame_ms`` of output from sample ``k·frame_samples``) is sent ``lead_ms``
    (up to one line-clock tick more) before it is due on the session clock (``origin`` = the
    ``start`` message), silence included, so Twilio always holds a little audio against
    network jitter and its marks come back when a segment really ends. ``interrupt()``
    (barge-in) sends ``clear`` and corrects each segment's ``played``. Frames of 40 ms, not
    20: half the messages, socket writes and wake-ups per call (bench/phone_load.py), 10 ms
    more to the first audio on average; carriers take any whole number of samples.

    Idle, the line sends nothing (unless ``idle_silence``): the carrier's buffer runs dry and
    its player waits. When audio comes again, the time the buffer stood empty goes on the
    line's record as silence that was never sent, and a pad of silence is sent first so that
    the audio still plays at its time on the session clock (the lead kept): the marks and
    what was heard stay as if every silent frame had been sent.
    """

    def __init__(
        self,
        stream_sid: str,
        send: Callable[[str], None],
        *,
        origin: float,
        lead_ms: float = 60.0,
        frame_ms: int = FRAME_MS,
        serializer: Serializer | None = None,
        idle_silence: bool | None = None,
    ) -> None:
        self.stream_sid = stream_sid
        if idle_silence is None:
            idle_silence = os.environ.get(IDLE_SILENCE_ENV, "") == "1"
        self.idle_silence = idle_silence
        self._skipped = True  # frames left unsent since the last one sent (none sent yet)
        # What the carrier's messages look like (Twilio's unless told); it carries the ids.
        self.serializer = serializer if serializer is not None else TwilioSerializer()
        self.serializer.stream_id = self.serializer.stream_id or stream_sid
        self._send = send
        self._pace_with(twilio.SAMPLE_RATE, origin, lead_ms, frame_ms)
        self.marks_sent: list[str] = []
        self.confirmed: list[str] = []  # echoed while playing: heard to the end
        self.cleared: list[str] = []  # echoed because of a clear: not heard
        self.frames_sent = 0
        # The line since the last confirmed mark (or clear): audio and the marks between.
        self._line: deque[_Sent | str] = deque()
        self._anchor = origin  # when Twilio started playing the head of ``_line``
        self._clearing: set[str] = set()  # marks a clear will echo

    @property
    def sample_rate(self) -> int:
        return twilio.SAMPLE_RATE

    @property
    def outstanding(self) -> list[str]:
        """Marks sent and not yet echoed."""
        return [item for item in self._line if isinstance(item, str)]

    async def play(self, source: ports.AudioSource) -> None:
        """Sends ``source`` down the line in real time until cancelled."""
        if source.sample_rate != twilio.SAMPLE_RATE:
            raise ValueError(f"a phone line plays 8000 Hz, not {source.sample_rate}")
        self._anchor = time.monotonic()
        await self._pace(source)

    def _frame(self, source: ports.AudioSource, position: int) -> None:
        """One frame: the audio read, a mark where each segment ended, silence after."""
        pcm = source.read(self.frame_samples, position)
        got = audio.pcm_samples(pcm)
        ends, self._ends = self._ends, []
        if not (got or ends or self.idle_silence):
            self._skipped = True  # idle: nothing goes down the line
            return
        if self._skipped:
            self._resume(position)
        offset = 0
        for segment, end in ends:
            cut = min(max(end - position, offset), got)
            self._media(pcm[2 * offset : 2 * cut], segment)
            self._mark(str(segment.id))
            offset = cut
        playing = self._source.playing if self._source is not None else None
        self._media(pcm[2 * offset :], playing, pad=self.frame_samples - got)

    def _quiet_frame(self) -> bool:
        if self.idle_silence:
            return False  # a silent frame is sent: read as any other
        self._skipped = True  # idle: nothing goes down the line
        return True

    def _resume(self, position: int) -> None:
        """Audio after frames left unsent: the carrier plays what it holds, then waits; the
        wait goes on the record as silence, and a silent pad makes sample ``position`` play
        at its time on the session clock."""
        self._skipped = False
        rate = twilio.SAMPLE_RATE
        now = time.monotonic()
        held = sum(item[1] for item in self._line if not isinstance(item, str))
        buffer_end = self._anchor + held / rate  # when the carrier runs out of what it holds
        if now > buffer_end:  # it stood empty since: silence heard, never sent
            self._on_line(None, round((now - buffer_end) * rate))
            buffer_end = now
        pad = round((self.origin + position / rate - buffer_end) * rate)
        if pad > 0:
            self._media(bytes(2 * pad), None)

    def _media(self, pcm: bytes, segment: SpokenSegment | None, *, pad: int = 0) -> None:
        samples = audio.pcm_samples(pcm)
        if samples + pad == 0:
            return
        if samples:
            self._on_line(segment, samples)
        if pad:
            self._on_line(None, pad)
        if samples:
            messages = self.serializer.media(pcm + bytes(2 * pad) if pad else pcm)
        else:  # silence: the same message every time
            messages = self.serializer.silence(pad)
        for message in messages:
            self._send(message)
        self.frames_sent += 1

    def _on_line(self, segment: SpokenSegment | None, samples: int) -> None:
        """Samples of ``segment`` (None: silence) sent after what is on the line; a run of the
        same one is one entry, so a long silence (no mark to pop it) takes no more memory."""
        if self._line:
            last = self._line[-1]
            if not isinstance(last, str) and last[0] is segment:
                self._line[-1] = (segment, last[1] + samples)
                return
        self._line.append((segment, samples))

    def _mark(self, name: str) -> None:
        held, pad = self.serializer.flush()  # audio the carrier's chunking held back goes first
        for message in held:
            self._send(message)
        if pad:  # the carrier plays this much silence more: keep it, and the pace, in step
            self._on_line(None, pad)
            self.origin += pad / twilio.SAMPLE_RATE
        self._line.append(name)
        self.marks_sent.append(name)
        self._mark_sent()
        for message in self.serializer.mark(name):
            self._send(message)

    def confirm(self, name: str) -> None:
        """Twilio echoed the mark ``name``: everything before it has played (or was cleared)."""
        if name in self._clearing:
            self._clearing.discard(name)
            self.cleared.append(name)
            return
        if name not in self._line:
            self._unknown_mark(name)
            return
        while self._line.popleft() != name:
            pass
        self._anchor = time.monotonic()
        self.confirmed.append(name)
        self._check_played()

    def interrupt(self) -> None:
        """Barge-in: ``clear`` Twilio's buffer; what the caller heard is corrected now.

        Segments whose marks came back are heard in full; of the one playing, the part the
        audio sent after the last confirmed mark covers in the time elapsed since (DESIGN.md,
        "What was heard"); anything later was not heard. The marks the ``clear`` echoes
        confirm the unheard ones.
        """
        heard = max(0, round((time.monotonic() - self._anchor) * twilio.SAMPLE_RATE))
        estimate: Counter[int] = Counter()
        segments: dict[int, SpokenSegment] = {}
        for item in self._line:
            if isinstance(item, str):
                continue
            segment, samples = item
            part = min(samples, heard)
            heard -= part
            if segment is not None:
                segments.setdefault(segment.id, segment)
                estimate[segment.id] += part
        interrupted = next(iter(segments), None)
        for sid, segment in segments.items():
            segment.correct_played(estimate[sid] if sid == interrupted else 0)
        self._clearing.update(self.outstanding)
        self._line.clear()
        for message in self.serializer.clear():
            self._send(message)
        self._anchor = time.monotonic()
        # Twilio's buffer is empty now: refill the lead with silence so jitter cannot starve it.
        self._media(b"", None, pad=self.lead_frames * self.frame_samples)
        self._check_played()


class PhoneTransport:
    """``ports.Transport`` for one Twilio call, fed by the server with each parsed frame.

    ``incoming()`` yields the caller's audio as PCM16 at 8 kHz in pieces of ``input_ms`` (40:
    two of the carrier's 20 ms frames, half the wake-ups of the listening side per call) and,
    with ``dtmf_text``, the keys pressed as a line of text (after ``#`` or ``dtmf_pause_s``
    without a key); it ends when the caller hangs up (``stop`` or the socket closing).
    ``on_dtmf`` hears every key at once. ``outgoing()`` is what the server writes to the
    socket; it ends at ``aclose()``, which first waits (up to ``goodbye_timeout_s``) until
    Twilio has played every mark.

    No caller may starve the others (``inbound_pacer``): its audio is held to real time
    plus ``burst_s`` (the excess dropped before decoding, counted in ``dropped_ms``); a
    call that keeps flooding is hung up with ``refusal`` set (the server closes it with that
    code); the audio not yet taken is bounded by ``inbox_s``; and once more than
    ``outbox_s`` of the agent's audio waits for a socket the caller does not read, the call
    is hung up and ``on_not_reading`` called (the server drops the connection). Nor can its
    keys grow the call: ``digits`` keeps the newest ``DIGITS_KEPT`` (``digits_dropped``
    counts the rest), a line of keypad text holds ``KEYPAD_LINE_MAX`` keys
    (``keypad_dropped`` counts the excess), and keys no keypad has are logged sparingly.
    """

    def __init__(
        self,
        start: twilio.Start,
        *,
        serializer: Serializer | None = None,
        origin: float | None = None,
        dtmf_text: bool = False,
        dtmf_pause_s: float = 2.0,
        on_dtmf: Callable[[str], None] | None = None,
        lead_ms: float = 60.0,
        frame_ms: int = FRAME_MS,
        input_ms: int = 40,
        goodbye_timeout_s: float = 10.0,
        burst_s: float = BURST_S,
        flood_close_s: float = FLOOD_CLOSE_S,
        inbox_s: float = INBOX_S,
        outbox_s: float = OUTBOX_S,
    ) -> None:
        self.start = start
        # The caller's audio short of a piece, as the carrier sent it: decoded a piece at a
        # time (one codec call per 40 ms, not per 20 ms message).
        self._piece_samples = start.sample_rate * input_ms // 1000
        self._heard: list[bytes] = []
        self._heard_samples = 0
        self._heard_codec = "PCMU"
        self._outbox = Mailbox[str]()
        self._inbox = Mailbox[bytes | str]()
        origin = time.monotonic() if origin is None else origin
        self.speaker = PhoneSpeaker(start.stream_sid, self._send, origin=origin, lead_ms=lead_ms,
                                    frame_ms=frame_ms, serializer=serializer)  # fmt: skip
        self.pacer = InboundPacer(start.sample_rate, origin=origin, burst_s=burst_s,
                                  flood_close_s=flood_close_s)  # fmt: skip
        self._inbox_max = round(inbox_s * twilio.SAMPLE_RATE)  # samples of the line's rate
        self._inbox_samples = 0
        self.inbox_dropped = 0  # samples dropped from a full inbox
        self._drop_logged_at: float | None = None
        self.outbox_s = outbox_s
        # the speaker sends about a message per frame (a mark or a clear now and then)
        self._outbox_max = max(1, math.ceil(outbox_s / self.speaker.frame_s))
        self.outbox_peak_s = 0.0  # the most audio the outbox ever held (about)
        self.refusal: tuple[int, str] | None = None  # (close code, reason) if we ended it
        self.on_not_reading: Callable[[], None] | None = None
        # The caller's audio arrives at the start's rate; the session hears the line's.
        self._resampler = (
            audio.Resampler(start.sample_rate, twilio.SAMPLE_RATE)
            if start.sample_rate != twilio.SAMPLE_RATE
            else None
        )
        self.dtmf_text = dtmf_text
        self.dtmf_pause_s = dtmf_pause_s
        self.on_dtmf = on_dtmf
        self.goodbye_timeout_s = goodbye_timeout_s
        self.keys = 0  # keys pressed in the call (a keypad's)
        self._digits: deque[str] = deque(maxlen=DIGITS_KEPT)
        # DTMF "keys" no keypad has: the first logged, then now and then a count
        self._bad_keys = SparseLog(_log_bad_key, _log_bad_keys)
        self._keyed: list[str] = []  # keys not yet sent on as text (KEYPAD_LINE_MAX at most)
        self.keypad_dropped = 0  # keys beyond KEYPAD_LINE_MAX in a line of keypad text
        self._keyed_at = 0.0
        self.hung_up = False
        self._metadata: dict[str, Any] = {
            "carrier": self.speaker.serializer.name,
            "call_sid": start.call_sid,
            "stream_sid": start.stream_sid,
            "account_sid": start.account_sid,
            "custom_parameters": dict(start.custom_parameters),
        }

    @property
    def input_rate(self) -> int:
        return twilio.SAMPLE_RATE

    @property
    def output(self) -> PhoneSpeaker:
        return self.speaker

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    @property
    def call_id(self) -> str:
        """The carrier's id of the call (its stream's when it gave none), as it came from the
        wire: ``wire_text.printable`` it before it reaches a log line or the terminal."""
        return self.start.call_sid or self.start.stream_sid

    def receive(self, frame: twilio.Frame) -> None:
        """One frame from the caller's side (never blocks)."""
        if self.hung_up:
            return
        if isinstance(frame, twilio.Media):
            if frame.track in ("inbound", "inbound_track") and frame.payload:
                width = 2 if frame.codec == "L16" else 1
                if not self.pacer.admit(len(frame.payload) // width, time.monotonic()):
                    self._over_pace()
                    return
                if frame.codec != self._heard_codec:
                    self._flush_audio()
                    self._heard_codec = frame.codec
                payload = frame.payload
                if frame.codec == "L16":  # two bytes a sample; a stray odd byte is dropped
                    payload = payload[: len(payload) - len(payload) % 2]
                    self._heard_samples += len(payload) // 2
                else:
                    self._heard_samples += len(payload)
                self._heard.append(payload)
                if self._heard_samples >= self._piece_samples:
                    self._flush_audio()
        elif isinstance(frame, twilio.Mark):
            self.speaker.confirm(frame.name)
        elif isinstance(frame, twilio.Dtmf):
            self._key(frame.digit)
        elif isinstance(frame, twilio.Stop):
            self.hang_up()

    @property
    def dropped_ms(self) -> float:
        """The caller's audio dropped: sent faster than real time, or into a full inbox."""
        return self.pacer.dropped_ms + 1000.0 * self.inbox_dropped / twilio.SAMPLE_RATE

    def _over_pace(self) -> None:
        """A frame beyond real time plus the burst was dropped: say so (once, then now and
        then), and end a call that keeps flooding."""
        if self.pacer.flooding:
            logger.warning(
                "call %s closed (%d): %s; %.1f s of its audio dropped, %.1f s taken",
                printable(self.call_id), FLOOD_CLOSE_CODE, FLOOD_REASON,
                self.pacer.dropped_ms / 1000, self.pacer.accepted_ms / 1000,
            )  # fmt: skip
            self.refusal = (FLOOD_CLOSE_CODE, FLOOD_REASON)
            self.hang_up()
            return
        now = time.monotonic()
        if self._drop_logged_at is None or now - self._drop_logged_at >= DROP_LOG_EVERY_S:
            self._drop_logged_at = now
            logger.warning(
                "call %s sends audio faster than real time: the excess is dropped "
                "(%.1f s so far)", printable(self.call_id), self.dropped_ms / 1000,
            )  # fmt: skip

    @property
    def digits(self) -> list[str]:
        """The keys pressed in the call, the newest ``DIGITS_KEPT`` of them (a caller sending
        keys without end keeps no more): ``digits_dropped`` older ones are forgotten."""
        return list(self._digits)

    @property
    def digits_dropped(self) -> int:
        return self.keys - len(self._digits)

    @property
    def bad_keys(self) -> int:
        return self._bad_keys.total

    def _key(self, digit: str) -> None:
        if digit not in DTMF_KEYS:  # it would reach the model as the caller's words
            self._bad_keys(printable(digit))
            return
        self.keys += 1
        self._digits.append(digit)
        if self.on_dtmf is not None:
            self.on_dtmf(digit)
        if not self.dtmf_text:
            return
        if digit == "#":
            self._flush_keys()
            return
        if len(self._keyed) < KEYPAD_LINE_MAX:
            self._keyed.append(digit)
        else:  # no one types that much: the line stays bounded
            self.keypad_dropped += 1
        self._keyed_at = time.monotonic()  # a key all the same: the line waits for the pause

    def _flush_audio(self) -> None:
        if self._heard:
            pcm = decode(b"".join(self._heard), self._heard_codec)
            self._heard.clear()
            self._heard_samples = 0
            if self._resampler is not None:
                pcm = self._resampler.process(pcm)
            if pcm:
                self._put(pcm)

    def _flush_keys(self) -> None:
        self._flush_audio()  # what was said before the keys comes first
        if self._keyed:
            self._put(f"(keypad) {' '.join(self._keyed)}")
            self._keyed = []

    def _put(self, item: bytes | str) -> None:
        if isinstance(item, bytes):
            samples = len(item) // 2
            if self._inbox_samples + samples > self._inbox_max:
                self.inbox_dropped += samples  # the session is not taking it: keep it bounded
                return
            self._inbox_samples += samples
        # False once the session stopped listening (it is ending): the words go nowhere
        self._inbox.put(item)

    def hang_up(self) -> None:
        """The caller is gone: ``incoming()`` ends, and nothing more is sent."""
        self._report_counted()
        self._flush_audio()
        self.hung_up = True
        self._inbox.close()
        self._outbox.close()

    async def incoming(self) -> AsyncGenerator[bytes | str, None]:
        try:
            while True:
                wait = math.inf
                if self._keyed:
                    wait = self._keyed_at + self.dtmf_pause_s - time.monotonic()
                item: bytes | str | None = None
                if wait == math.inf:  # no keys pending: no timeout scope per 20 ms frame
                    try:  # (a cancel scope per frame was a top item in bench/phone_load.py)
                        item = await self._inbox.get()
                    except anyio.EndOfStream:
                        return
                    if isinstance(item, bytes):
                        self._inbox_samples -= len(item) // 2
                    yield item
                    continue
                # never yield inside a cancel scope: the consumer's code would run in it
                with anyio.move_on_after(max(0.0, wait)):
                    try:
                        item = await self._inbox.get()
                    except anyio.EndOfStream:
                        return
                if item is None:
                    self._flush_keys()  # the caller paused after pressing keys
                else:
                    if isinstance(item, bytes):
                        self._inbox_samples -= len(item) // 2
                    yield item
        finally:
            self._inbox.close()  # nobody listens any more: keep nothing

    def outgoing(self) -> Mailbox[str]:
        """Text frames for the socket, in order (``async for``); ends when the call is over."""
        return self._outbox

    def _send(self, message: str) -> None:
        if self.hung_up:
            return  # the line is gone: what the agent still says goes nowhere
        queued = len(self._outbox)
        if queued >= self._outbox_max:
            self._not_reading()
            return
        if not self._outbox.put(message):
            self.hung_up = True
        self.outbox_peak_s = max(self.outbox_peak_s, (queued + 1) * self.speaker.frame_s)

    def _not_reading(self) -> None:
        """The socket has taken nothing for ``outbox_s``: the caller stopped reading."""
        logger.warning(
            "call %s closed: %s (%.1f s of audio waiting to be sent)",
            printable(self.call_id), NOT_READING_REASON, self.outbox_s,
        )  # fmt: skip
        self.refusal = (FLOOD_CLOSE_CODE, NOT_READING_REASON)
        self.hang_up()
        if self.on_not_reading is not None:
            self.on_not_reading()

    def _report_counted(self) -> None:
        """The call is ending: log what was counted and not told yet (unknown marks, keys no
        keypad has)."""
        self.speaker.report_unknown_marks()
        self._bad_keys.flush()

    async def aclose(self) -> None:
        """End the call from our side once Twilio has played what was sent (the goodbye)."""
        self._report_counted()
        if not self.hung_up:
            with anyio.move_on_after(self.goodbye_timeout_s):
                await self.speaker.wait_played()
        self.hung_up = True
        self._inbox.close()
        self._outbox.close()


def _log_bad_key(digit: str) -> None:
    logger.warning("a DTMF key no keypad has: %s: ignored", digit)


def _log_bad_keys(untold: int, total: int) -> None:
    logger.warning("%d more DTMF keys no keypad has, %d in the call: ignored", untold, total)
