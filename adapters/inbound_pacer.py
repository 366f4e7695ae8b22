"""A call's limits against one caller starving the others: the caller's audio held to real
time (the excess dropped and counted, a call that keeps flooding closed), and the socket's
send buffers kept small so a caller that stops reading is noticed within seconds."""

from __future__ import annotations

import socket
from typing import Any

# The caller may run this far ahead of the call's clock. Carriers send 20 ms frames with
# network jitter (tens to hundreds of ms), and a carrier catching up after a stall sends
# its held frames at once: 2 s keeps any such burst whole. Audio later than that is stale
# for a conversation anyway (and the STT backlog holds 5 s, voiceagent/turn_taking.py).
BURST_S = 2.0
# A call is closed (1008) once this much dropped audio is outstanding; dropped audio is
# forgiven at FORGIVE_PER_S seconds a second. A flood at 400× real time is closed within
# its first 12 s of audio (milliseconds); one at 2× after ~20 s; a carrier's catch-up after
# a stall (a few seconds dropped, once) never comes close.
FLOOD_CLOSE_S = 10.0
FORGIVE_PER_S = 0.5
FLOOD_CLOSE_CODE = 1008  # policy violation
FLOOD_REASON = "inbound audio faster than real time"

# The caller's decoded audio the session has not taken yet. It takes each piece as it
# comes; only a stalled event loop lets this grow. Above the burst, so a burst fits whole.
INBOX_S = 5.0
# The agent's audio queued for a socket the caller does not read, beyond the socket's own
# buffers (below): past this the caller is taken to have stopped reading and the
# connection is dropped (a close frame could never reach it).
OUTBOX_S = 2.0
NOT_READING_REASON = "the caller is not reading"
# The kernel's send buffer and the websocket's write buffer of a call's socket (~1.4 s each
# of Twilio's JSON audio, 11 kB/s). Outbound audio is paced at real time, so this is ample
# (16 kB per round trip); left to itself Linux grows the kernel's to megabytes (minutes of
# audio) before a send ever waits.
SEND_BUFFER_BYTES = 16 * 1024


class InboundPacer:
    """A token bucket of the caller's audio in samples: it fills at ``sample_rate`` on the
    call's clock (from ``origin``, full), holds at most ``burst_s`` of audio; a frame it
    cannot cover is dropped whole and counted. ``flooding`` turns True once the dropped
    audio outstanding (forgiven at ``forgive_per_s``) reaches ``flood_close_s``."""

    def __init__(
        self,
        sample_rate: int,
        *,
        origin: float,
        burst_s: float = BURST_S,
        flood_close_s: float = FLOOD_CLOSE_S,
        forgive_per_s: float = FORGIVE_PER_S,
    ) -> None:
        self.sample_rate = sample_rate
        self.capacity = burst_s * sample_rate
        self.flood_close_s = flood_close_s
        self.forgive_per_s = forgive_per_s
        self.accepted = 0  # samples let through
        self.dropped = 0  # samples dropped
        self.flooding = False
        self._tokens = self.capacity
        self._debt_s = 0.0  # dropped audio not yet forgiven
        self._at = origin

    @property
    def dropped_ms(self) -> float:
        return 1000.0 * self.dropped / self.sample_rate

    @property
    def accepted_ms(self) -> float:
        return 1000.0 * self.accepted / self.sample_rate

    def admit(self, samples: int, now: float) -> bool:
        """True if a frame of ``samples`` may go on (taken from the bucket); else dropped."""
        elapsed = now - self._at
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.sample_rate)
            self._debt_s = max(0.0, self._debt_s - elapsed * self.forgive_per_s)
            self._at = now
        if samples <= self._tokens:
            self._tokens -= samples
            self.accepted += samples
            return True
        self.dropped += samples
        self._debt_s += samples / self.sample_rate
        if self._debt_s >= self.flood_close_s:
            self.flooding = True
        return False


def bound_send_buffers(transport: Any, limit: int = SEND_BUFFER_BYTES) -> None:
    """Keep a call socket's kernel send buffer and its asyncio write buffer to ``limit``
    bytes (``transport``: the connection's asyncio transport), so that a caller that stops
    reading makes the server's sends wait within seconds."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limit)
        except OSError:
            pass  # not a TCP socket (a test's pipe): the outbox bound still holds
    transport.set_write_buffer_limits(high=limit)
