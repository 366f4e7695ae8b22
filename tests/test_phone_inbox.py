"""The phone call's inbox (``PhoneTransport._put``): the caller's audio a session has not taken
yet is bounded by ``INBOX_S`` (5 s); what does not fit is dropped and counted
(``inbox_dropped``, in ``dropped_ms``), never queued without end (issue 15: a session that
fell behind held hours of a flooder's audio). Real frames, parsed as the server parses them;
then over a real socket, with the server's own limits."""

from __future__ import annotations

import json

import anyio
from raw_peer import CONNECTED, RawPeer, twilio_start, until
from test_phone_call import SAFETY_S

from voiceagent.adapters import twilio
from voiceagent.adapters.inbound_pacer import BURST_S, INBOX_S
from voiceagent.adapters.phone_server import PhoneServer
from voiceagent.adapters.phone_transport import PhoneTransport
from voiceagent.testing.twilio import wire

RATE = 8000
FRAME_MS = 20
FRAME = b"\xff" * (RATE * FRAME_MS // 1000)  # 20 ms of μ-law silence, as Twilio sends it
INBOX_SAMPLES = round(INBOX_S * RATE)


def media_message(n: int, stream: str = "MZ1") -> str:
    return json.dumps(wire.media(str(n + 2), stream, n + 1, n * FRAME_MS, FRAME))


async def taken(transport: PhoneTransport) -> int:
    """Samples of the caller's audio the session gets once it reads (after the hang-up)."""
    samples = 0
    with anyio.fail_after(SAFETY_S):
        async for item in transport.incoming():
            if isinstance(item, bytes):
                samples += len(item) // 2
    return samples


async def test_audio_not_taken_is_held_to_the_inbox_bound_and_the_rest_counted() -> None:
    start = twilio.parse(twilio_start("MZ1", "CA1"))
    assert isinstance(start, twilio.Start)
    # a burst allowance far above the audio sent: the pacer lets it all through, so only
    # the inbox bounds it (the pacer has its own tests: test_phone_flood.py)
    transport = PhoneTransport(start, burst_s=60.0)
    frames = 2 * round(INBOX_S * 1000 / FRAME_MS)  # twice what the inbox holds: 10 s
    for n in range(frames):
        transport.receive(twilio.parse(media_message(n)))  # nobody reads incoming() yet
    transport.receive(twilio.parse(json.dumps(wire.stop("99", "MZ1", "AC1", "CA1"))))
    sent = frames * len(FRAME)
    kept = await taken(transport)
    assert kept == INBOX_SAMPLES  # 5 s queued, not 10
    assert transport.inbox_dropped == sent - kept  # the other 5 s dropped, counted
    assert transport.pacer.dropped == 0  # (none of it by the pacer)
    assert transport.dropped_ms == 1000.0 * (sent - kept) / RATE


async def test_over_a_socket_a_call_whose_session_does_not_read_keeps_at_most_5_s() -> None:
    """A caller within the server's pace (a burst, then real time) to a session that takes
    nothing until the call ends: 6 s sent, 5 s kept, the excess counted."""
    calls: list[PhoneTransport] = []
    release = anyio.Event()

    async def run_call(transport: PhoneTransport) -> None:
        calls.append(transport)
        await release.wait()  # a session that does not consume its input (yet)
        kept.append(await taken(transport))

    kept: list[int] = []
    burst = round(0.9 * BURST_S * 1000 / FRAME_MS)  # within the server's burst allowance
    paced = round((INBOX_S + 1 - 0.9 * BURST_S) * 1000 / FRAME_MS)  # then real time
    async with PhoneServer(run_call, port=0) as server, RawPeer(server.port) as peer:
        assert peer.status == 101
        await peer.send_text(CONNECTED)
        await peer.send_text(twilio_start("MZ1", "CA1"))
        await until(lambda: len(calls) == 1, SAFETY_S)
        for n in range(burst):
            await peer.send_text(media_message(n))
        # never ahead of real time from here (a sleep never ends early), so the pacer drops
        # nothing: the only bound met is the inbox's
        began = anyio.current_time()
        for n in range(paced):
            await anyio.sleep(max(0.0, began + n * FRAME_MS / 1000 - anyio.current_time()))
            await peer.send_text(media_message(burst + n))
        await peer.send_text(json.dumps(wire.stop("9999", "MZ1", "AC1", "CA1")))
        (transport,) = calls
        await until(lambda: transport.hung_up, SAFETY_S)
        release.set()
        await until(lambda: len(kept) == 1, SAFETY_S)
    sent = (burst + paced) * len(FRAME)
    (samples,) = kept
    assert samples <= INBOX_SAMPLES, f"{samples / RATE:.2f} s queued for a session not reading"
    assert samples >= INBOX_SAMPLES - RATE * 40 // 1000  # full, to the last 40 ms piece
    assert transport.inbox_dropped >= RATE // 2  # most of the 1 s of excess: the inbox's
    dropped = transport.inbox_dropped + transport.pacer.dropped
    assert samples + dropped == sent  # every sample taken or counted
    assert transport.dropped_ms == 1000.0 * dropped / RATE
