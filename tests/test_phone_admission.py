"""Admission on the phone server, over real sockets: ``--max-calls`` counts calls from their
``start``; sockets that have not started are bounded on their own (``max_pending``) and closed
soon (``start_timeout_s``); a start beyond the limit is closed with 1013 and counted."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from raw_peer import CONNECTED, RawPeer, twilio_start, until
from test_phone_call import SAFETY_S, phone_rig, played
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voiceagent.adapters.phone_server import PhoneServer
from voiceagent.agent import Agent
from voiceagent.cli import build_parser
from voiceagent.testing.twilio import TwilioCaller

GREETER = Agent(instructions="Answer.", greeting="Hello.")


async def test_sockets_that_never_start_do_not_spend_max_calls() -> None:
    async with phone_rig(GREETER, listen=False, max_calls=2) as rig:
        port = rig.server.port
        async with RawPeer(port) as idle_a, RawPeer(port) as idle_b:
            await idle_a.send_text(CONNECTED)
            await idle_b.send_text(CONNECTED)  # connected, then nothing: never a call
            async with TwilioCaller(rig.server.url) as caller:
                with anyio.fail_after(SAFETY_S):
                    await caller.wait_for(lambda: len(played(caller)) >= 1)
    assert (idle_a.status, idle_b.status) == (101, 101)
    assert caller.protocol_errors == []
    assert rig.server.calls_served == 1 and rig.server.refused[503] == 0


async def test_health_counts_started_calls_and_reports_pending_sockets() -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        health = f"http://127.0.0.1:{rig.server.port}/health"
        async with RawPeer(rig.server.port), httpx2.AsyncClient() as client:
            async with TwilioCaller(rig.server.url) as caller:
                with anyio.fail_after(SAFETY_S):
                    await caller.wait_for(lambda: len(played(caller)) >= 1)
                body = (await client.get(health)).json()
    assert body == {"status": "ok", "calls": 1, "pending": 1}


async def test_unstarted_sockets_beyond_max_pending_get_503() -> None:
    async with phone_rig(GREETER, listen=False, max_calls=2, max_pending=2) as rig:
        port = rig.server.port
        async with RawPeer(port) as first, RawPeer(port) as second, RawPeer(port) as third:
            pass
        # the two unstarted sockets are gone: a real call is let in again
        async with TwilioCaller(rig.server.url) as caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)
    assert (first.status, second.status, third.status) == (101, 101, 503)
    assert rig.server.refused[503] == 1 and rig.server.calls_served == 1


async def test_a_socket_that_never_starts_is_closed_with_1008_after_the_start_timeout() -> None:
    async with phone_rig(GREETER, listen=False, start_timeout_s=0.5) as rig:
        async with RawPeer(rig.server.port) as idle:
            await idle.send_text(CONNECTED)
            closed = await idle.close_frame(timeout_s=SAFETY_S)
    assert closed is not None
    code, reason = closed
    assert code == 1008 and "no start" in reason
    assert rig.server.calls_served == 0


def test_the_start_timeout_is_five_seconds_by_default() -> None:
    # Twilio (and the other carriers) send connected and start right after the upgrade
    async def run_call(transport: object) -> None:
        raise AssertionError("never called")

    assert PhoneServer(run_call, port=0).start_timeout_s == 5.0


async def test_a_start_beyond_max_calls_is_closed_with_1013_and_counted() -> None:
    async with phone_rig(GREETER, listen=False, max_calls=1) as rig:
        port = rig.server.port
        async with RawPeer(port) as first, RawPeer(port) as second:
            assert (first.status, second.status) == (101, 101)  # neither is a call yet
            await first.send_text(twilio_start("MZ1", "CA1"))
            await until(lambda: rig.server.calls == 1, SAFETY_S)
            await second.send_text(twilio_start("MZ2", "CA2"))
            closed = await second.close_frame(timeout_s=SAFETY_S)
            calls_while_up = rig.server.calls
    assert closed is not None
    code, reason = closed
    assert code == 1013 and "busy" in reason
    assert calls_while_up == 1 and rig.server.calls_served == 1
    assert rig.server.refused[503] == 1


async def test_a_burst_of_calls_is_held_to_max_calls() -> None:
    # eight dial at once: three calls run; the others are refused at the upgrade (503) or at
    # their start (1013), never run
    async with phone_rig(GREETER, listen=False, max_calls=3) as rig:
        outcomes: list[str] = []

        async def dial() -> None:
            try:
                async with connect(rig.server.url) as ws:
                    await ws.send(twilio_start())
                    with anyio.move_on_after(1.0):
                        await ws.recv()  # the greeting, or the close at a refused start
                    outcomes.append("call")
            except InvalidStatus as error:
                outcomes.append(str(error.response.status_code))
            except ConnectionClosed as error:
                outcomes.append(str(error.rcvd.code if error.rcvd else None))

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(dial)
    assert rig.server.calls_served == 3
    assert outcomes.count("call") == 3
    assert set(outcomes) - {"call"} <= {"1013", "503"}
    assert rig.server.refused[503] == 5


def test_the_command_line_takes_the_pending_bounds() -> None:
    args = build_parser().parse_args(["phone", "--max-pending", "7", "--start-timeout-s", "2.5"])
    assert (args.max_pending, args.start_timeout_s) == (7, 2.5)
    defaults = build_parser().parse_args(["phone"])
    assert (defaults.max_pending, defaults.start_timeout_s) == (None, 5.0)


@pytest.mark.parametrize("options", [{"max_pending": 0}, {"start_timeout_s": 0.0}])
def test_bounds_below_their_minimum_are_refused(options: dict[str, float]) -> None:
    async def run_call(transport: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError):
        PhoneServer(run_call, port=0, **options)  # type: ignore[arg-type]
