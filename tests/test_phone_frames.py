"""Frames no carrier sends, over real sockets: JSON nested past the parser's depth is one more
malformed frame; a start with a sample rate no carrier uses refuses the call (1003); a second
start is ignored; a ``--public-url`` with a path prefix is served under that prefix."""

from __future__ import annotations

import json
import logging

import anyio
import httpx2
import pytest
from raw_peer import CONNECTED, RawPeer, twilio_start
from test_phone_call import SAFETY_S, phone_rig, played
from websockets.asyncio.client import connect

from voiceagent.adapters import carriers
from voiceagent.adapters.carriers.frames import UnsupportedStart
from voiceagent.adapters.phone_server import twilio_signature
from voiceagent.agent import Agent
from voiceagent.testing.carriers import CALLER_CODECS, WIRES
from voiceagent.testing.twilio import TwilioCaller

GREETER = Agent(instructions="Answer.", greeting="Hello.")
LONG_GREETER = Agent(instructions="Answer.", greeting="Hello, thank you for calling us today.")
DEEP = "[" * 30_000 + "]" * 30_000  # under the 64 KiB message cap
PUBLIC = "wss://bot.example.com/voice"
TOKEN = "secret-token"


async def _until_mark(ws: object) -> list[dict[str, object]]:
    received: list[dict[str, object]] = []
    with anyio.fail_after(SAFETY_S):
        while not received or received[-1]["event"] != "mark":
            received.append(json.loads(await ws.recv()))  # type: ignore[attr-defined]
    return received


@pytest.mark.parametrize("deep", [DEEP, json.dumps({"event": "media", "media": "@"}).replace(
    '"@"', DEEP[:29_000] + DEEP[-29_000:])], ids=["array", "in-an-object"])  # fmt: skip
async def test_json_nested_too_deep_is_a_malformed_frame_and_the_call_goes_on(deep: str) -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        async with connect(rig.server.url, max_size=None) as ws:
            await ws.send(CONNECTED)
            await ws.send(deep)  # before the start
            await ws.send(twilio_start())
            await ws.send(deep)  # during the call
            await _until_mark(ws)  # the greeting plays to its mark: the call is up
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ1"}))
        with anyio.fail_after(SAFETY_S):
            await rig.server.idle()
    assert rig.server.malformed["invalid"] == 2
    assert rig.server.calls_served == 1 and rig.sessions[0].ended == "hang_up"


async def test_json_nested_too_deep_on_slash_does_not_end_the_detection() -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        async with connect(f"ws://127.0.0.1:{rig.server.port}/", max_size=None) as ws:
            await ws.send(DEEP)
            await ws.send(twilio_start())
            await _until_mark(ws)
    assert rig.server.calls_served == 1


@pytest.mark.parametrize("rate", [-8000, 0, 10**9, "fast", 7999, 48001])
async def test_a_start_with_a_rate_no_carrier_uses_is_refused_with_1003(
    rate: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voiceagent.adapters.phone_server")
    async with phone_rig(GREETER, listen=False) as rig:
        async with RawPeer(rig.server.port) as peer:
            await peer.send_text(CONNECTED)
            await peer.send_text(twilio_start(sample_rate=rate))
            closed = await peer.close_frame(timeout_s=SAFETY_S)
    assert closed is not None
    code, reason = closed
    assert code == 1003 and "sampleRate" in reason
    assert rig.server.calls_served == 0 and rig.server.refused[415] == 1
    assert any("refused" in r.getMessage() and "sampleRate" in r.getMessage()
               for r in caplog.records)  # fmt: skip


@pytest.mark.parametrize("carrier", list(carriers.CARRIERS))
@pytest.mark.parametrize("rate", [-8000, 0, 10**9])
def test_every_serializer_refuses_a_rate_no_carrier_uses(carrier: str, rate: int) -> None:
    text = json.dumps(WIRES[carrier]("S1", "C1", "A1", {}, CALLER_CODECS[carrier]).start("1"))
    assert text.count("8000") == 1  # the rate, as a number or a string (Exotel)
    with pytest.raises(UnsupportedStart, match="ample"):
        carriers.serializer(carrier).parse(text.replace("8000", str(rate)))


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_the_rates_carriers_use_are_accepted(rate: int) -> None:
    (start,) = carriers.serializer("twilio").parse(twilio_start(sample_rate=rate))
    assert start.sample_rate == rate  # type: ignore[union-attr]


async def test_a_second_start_is_ignored_and_counted() -> None:
    async with phone_rig(LONG_GREETER, listen=False) as rig:
        async with connect(rig.server.url, max_size=None) as ws:
            await ws.send(CONNECTED)
            await ws.send(twilio_start("MZ1", "CA1"))
            first = json.loads(await ws.recv())  # the greeting has begun
            await ws.send(twilio_start("MZ2", "CA2"))
            await ws.send(twilio_start("MZ3", "CA3"))
            rest = await _until_mark(ws)
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ1"}))
        with anyio.fail_after(SAFETY_S):
            await rig.server.idle()
    assert {m["streamSid"] for m in [first, *rest]} == {"MZ1"}
    assert rig.server.malformed["second_start"] == 2
    assert rig.transports[0].start.stream_sid == "MZ1"
    assert rig.server.calls_served == 1


async def test_a_public_url_with_a_path_prefix_is_served_under_it_and_signed_in_full() -> None:
    signature = twilio_signature(TOKEN, f"{PUBLIC}/twilio")  # what Twilio signs: the full URL
    headers = {"X-Twilio-Signature": signature}
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        base = f"ws://127.0.0.1:{rig.server.port}"
        # a reverse proxy that keeps the prefix, and one that strips it
        for path in ("/voice/twilio", "/twilio"):
            async with TwilioCaller(base + path, headers=headers) as caller:
                with anyio.fail_after(SAFETY_S):
                    await caller.wait_for(lambda: len(played(caller)) >= 1)
            assert caller.protocol_errors == []
        async with httpx2.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{rig.server.port}/voice/health")
        wrong = twilio_signature(TOKEN, "wss://bot.example.com/voice/voice/twilio")
        async with RawPeer(rig.server.port, "/voice/twilio", {"X-Twilio-Signature": wrong}) as p:
            pass
    assert rig.server.calls_served == 2
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert p.status == 403
