"""Shutdown of the phone server, over real sockets: peers that never answer the close are
closed concurrently and then dropped, so ``drain(timeout_s)`` and ``aclose(timeout_s)`` end
near their deadline however many peers are stuck; a peer that answers still gets 1001; and
``voiceagent phone --drain-s N`` as a process exits on SIGTERM within about N seconds."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import anyio
import anyio.abc
from raw_peer import CONNECTED, RawPeer, twilio_start, until
from test_phone_call import SAFETY_S, phone_rig, played
from websockets.exceptions import ConnectionClosed

from voiceagent.agent import Agent
from voiceagent.testing.pulse import PulseServer
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


# --- the command: SIGTERM to ``voiceagent phone --drain-s`` -------------------------------

VOICEAGENT = str(Path(sys.executable).with_name("voiceagent"))
DRAIN_S = 2.0
# The one test where a time bound is the point: issue 15 saw ``--drain-s 5`` take 42 s with
# three stuck peers (one close after another, each waiting websockets' 10 s close timeout).
# The bound is the drain plus 3 s of slack for the interpreter's exit and a loaded CI
# machine; the old one-by-one close needs 30 s and more, far outside it.
CLI_BOUND_S = DRAIN_S + 3.0
CLI_GUARD_S = 20.0  # the test stops waiting (and kills the process) here


def _phone_env() -> dict[str, str]:
    """No cloud choice nor auth from the environment; info logs, to see the calls start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMALLEST", "TWILIO"))}
    for name in ("ELECTRON_BASE_URL", "LIGHTNING_URL", "PULSE_URL"):
        env.pop(name, None)
    return env | {"VOICEAGENT_LOG": "info"}


async def _read_into(stream: anyio.abc.ByteReceiveStream, into: bytearray) -> None:
    async for chunk in stream:
        into.extend(chunk)


async def test_sigterm_exits_within_drain_s_with_peers_that_never_answer_the_close() -> None:
    out, err = bytearray(), bytearray()
    peers: list[RawPeer] = []
    async with PulseServer(transcribe="table") as pulse:
        command = [VOICEAGENT, "phone", "--port", "0", "--tts", "test", "--stt", "pulse",
                   "--stt-url", pulse.url, "--drain-s", str(DRAIN_S)]  # fmt: skip
        process = await anyio.open_process(command, env=_phone_env())
        assert process.stdout is not None and process.stderr is not None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_read_into, process.stdout, out)
                tg.start_soon(_read_into, process.stderr, err)
                await until(lambda: b"\n" in out, SAFETY_S)  # the URL: listening
                port = int(out.decode().split(":")[2].split("/")[0])
                peers = await _stuck_calls(port, STUCK)
                await until(lambda: err.count(b" started (stream ") == STUCK, SAFETY_S)
                process.send_signal(signal.SIGTERM)
                began = time.monotonic()
                with anyio.move_on_after(CLI_GUARD_S):
                    await process.wait()
                took = time.monotonic() - began
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        finally:
            for peer in peers:
                await peer.aclose()
            await process.aclose()
    stderr = err.decode(errors="replace")
    assert took < CLI_BOUND_S, (
        f"--drain-s {DRAIN_S:g} took {took:.1f} s to exit with {STUCK} stuck peers\n{stderr}"
    )
    assert process.returncode == 0, stderr
    assert f"SIGTERM: draining {STUCK} call(s)" in stderr
    assert "Traceback" not in stderr
