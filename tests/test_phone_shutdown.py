"""Shutdown of the phone server, over real sockets: peers that never answer the close are
closed concurrently and then dropped, so ``drain(timeout_s)`` and ``aclose(timeout_s)`` end
near their deadline however many peers are stuck; a peer that answers still gets 1001."""

from __future__ import annotations

import time

import anyio
from raw_peer import CONNECTED, RawPeer, twilio_start, until
from test_phone_call import SAFETY_S, phone_rig, played
from websockets.exceptions import ConnectionClosed

from voiceagent.agent import Agent
from voiceagent.testing.twilio import TwilioCaller

GREETER = Agent(instructions="Answer.", greeting="Hello.")
STUCK = 3  # each would hold a one-by-one close for websockets' 10 s close timeout
BOUND_S = 6.0  # a loose upper bound on a 1 s deadline, not a performance timing
GUARD_S = 12.0  # the test gives up here (the old one-by-one close took 30 s and more)


async def _stuck_calls(port: int, count: int) -> list[RawPeer]:
    """``count`` started calls whose peers then never read again (nor answer a close)."""
    peers = []
    for n in range(count):
        peer = await RawPeer(port).__aenter__()
        await peer.send_text(CONNECTED)
        await peer.send_text(twilio_start(f"MZ{n}", f"CA{n}"))
        peers.append(peer)
    return peers


async def test_drain_ends_near_its_deadline_with_peers_that_never_answer_the_close() -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        peers = await _stuck_calls(rig.server.port, STUCK)
        caller = TwilioCaller(rig.server.url)
        try:
            async with caller:
                await until(lambda: rig.server.calls == STUCK + 1, SAFETY_S)
                with anyio.fail_after(SAFETY_S):
                    await caller.wait_for(lambda: len(played(caller)) >= 1)
                began = time.monotonic()
                with anyio.move_on_after(GUARD_S):
                    await rig.server.drain(1.0)
                took = time.monotonic() - began
        except ConnectionClosed:
            pass
        finally:
            for peer in peers:
                await peer.aclose()
    assert took < BOUND_S, f"drain(1.0) took {took:.1f} s with {STUCK} stuck peers"
    assert rig.server.calls == 0
    assert caller.ended and caller.protocol_errors == []


async def test_aclose_is_bounded_by_its_timeout_and_drops_the_stuck_peers() -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        peers = await _stuck_calls(rig.server.port, STUCK)
        await until(lambda: rig.server.calls == STUCK, SAFETY_S)
        began = time.monotonic()
        with anyio.move_on_after(GUARD_S):
            await rig.server.aclose(timeout_s=1.0)
        took = time.monotonic() - began
        try:
            # each stuck peer's connection is gone: reading it ends (after the close frame)
            ends = [await peer.close_frame(timeout_s=SAFETY_S) for peer in peers]
        finally:
            for peer in peers:
                await peer.aclose()
    assert took < BOUND_S, f"aclose(1.0) took {took:.1f} s with {STUCK} stuck peers"
    assert all(end is None or end[0] == 1001 for end in ends)
    assert rig.server.calls == 0
