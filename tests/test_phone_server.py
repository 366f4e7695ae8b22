"""The phone server's edges: /health, the X-Twilio-Signature check, malformed frames survived
and counted, DTMF as events and as text, a non-call path refused."""

from __future__ import annotations

import base64
import json

import anyio
import httpx2
import pytest
from test_phone_call import SAFETY_S, phone_rig, played
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from voiceagent.adapters.phone_server import PhoneServer, SignatureConfigError, twilio_signature
from voiceagent.agent import Agent
from voiceagent.testing.twilio import TwilioCaller

PUBLIC = "wss://bot.example.com"
TOKEN = "secret-token"
GREETER = Agent(instructions="Answer.", greeting="Hello.")


async def test_health_answers_with_the_number_of_calls() -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        url = f"http://127.0.0.1:{rig.server.port}/health"
        async with httpx2.AsyncClient() as client:
            idle = await client.get(url)
            async with TwilioCaller(rig.server.url) as caller:
                with anyio.fail_after(SAFETY_S):
                    await caller.wait_for(lambda: len(played(caller)) >= 1)
                busy = await client.get(url)
    assert idle.status_code == 200 and idle.json() == {"status": "ok", "calls": 0, "pending": 0}
    assert idle.headers["content-type"] == "application/json"
    assert busy.json() == {"status": "ok", "calls": 1, "pending": 0}


async def test_a_valid_signature_is_let_in() -> None:
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        signature = twilio_signature(TOKEN, f"{PUBLIC}/twilio")
        async with TwilioCaller(rig.server.url, headers={"X-Twilio-Signature": signature}) as c:
            with anyio.fail_after(SAFETY_S):
                await c.wait_for(lambda: len(played(c)) >= 1)
    assert c.protocol_errors == []


@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": "bm9wZQ=="}])
async def test_a_missing_or_wrong_signature_gets_403(headers: dict[str, str]) -> None:
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(rig.server.url, additional_headers=headers):
                pass
        assert rig.server.calls_served == 0
    assert refused.value.response.status_code == 403


async def test_a_signature_for_another_path_is_refused() -> None:
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        signature = twilio_signature(TOKEN, f"{PUBLIC}/elsewhere")
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                rig.server.url, additional_headers={"X-Twilio-Signature": signature}
            ):
                pass
    assert refused.value.response.status_code == 403


async def test_a_token_without_a_public_url_refuses_to_start() -> None:
    async def run_call(transport: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(SignatureConfigError, match="public-url"):
        PhoneServer(run_call, port=0, auth_token=TOKEN)


async def test_other_paths_are_not_calls() -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{rig.server.port}/nowhere"):
                pass
    assert refused.value.response.status_code == 404


def _start(stream: str = "MZ1", call: str = "CA1") -> str:
    body = {"streamSid": stream, "callSid": call, "accountSid": "AC1", "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw",
                                                    "sampleRate": 8000, "channels": 1}}  # fmt: skip
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream, "start": body})


async def test_malformed_messages_are_survived_and_counted() -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        async with connect(rig.server.url, max_size=None) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1"}))
            await ws.send(_start())
            await ws.send(b"\x00\x01binary")
            await ws.send("{not json")
            await ws.send(json.dumps({"event": "bogus", "streamSid": "MZ1"}))
            await ws.send(json.dumps({"event": "media", "media": {"payload": "!!notbase64"}}))
            await ws.send(json.dumps({"event": "media", "media": {"payload": "A" * 200_000}}))
            await ws.send(json.dumps([1, 2, 3]))
            payload = base64.b64encode(b"\xff" * 160).decode()
            await ws.send(json.dumps({"event": "media", "media": {"payload": payload}}))
            events: list[str] = []
            with anyio.fail_after(SAFETY_S):
                while "mark" not in events:  # the call goes on: the greeting plays to its mark
                    events.append(json.loads(await ws.recv())["event"])
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ1"}))
        with anyio.fail_after(SAFETY_S):
            await rig.server.idle()
    assert dict(rig.server.malformed) == {
        "binary": 1, "invalid": 3, "unknown_event": 1, "too_large": 1}  # fmt: skip
    assert rig.sessions[0].ended == "hang_up"


async def test_dtmf_reaches_the_agent_as_events_and_as_text() -> None:
    async with phone_rig(GREETER, listen=False, dtmf_text=True) as rig:
        async with TwilioCaller(rig.server.url) as caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)
                for digit in "12#":
                    await caller.send_dtmf(digit)

                def typed() -> bool:
                    users = [m for m in rig.sessions[0].history.messages() if m["role"] == "user"]
                    return bool(users)

                await caller.wait_for(typed)
    assert rig.transports[0].digits == ["1", "2", "#"]
    users = [m for m in rig.sessions[0].history.messages() if m["role"] == "user"]
    assert users[0]["content"] == "(keypad) 1 2"


async def test_beyond_max_calls_an_upgrade_gets_503_and_the_calls_up_keep_going() -> None:
    async with phone_rig(GREETER, listen=False, max_calls=2) as rig:
        health = f"http://127.0.0.1:{rig.server.port}/health"
        async with TwilioCaller(rig.server.url) as first, TwilioCaller(rig.server.url) as second:
            with anyio.fail_after(SAFETY_S):
                await first.wait_for(lambda: len(played(first)) >= 1)
                await second.wait_for(lambda: len(played(second)) >= 1)
            with pytest.raises(InvalidStatus) as refused:
                async with connect(rig.server.url):
                    pass
            async with httpx2.AsyncClient() as client:
                busy = await client.get(health)  # /health is not a call: still answered
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "1"
        assert busy.json() == {"status": "ok", "calls": 2, "pending": 0}
        assert rig.server.refused[503] == 1 and rig.server.calls_served == 2
        with anyio.fail_after(SAFETY_S):
            await rig.server.idle()  # both hung up: the next call is let in
        async with TwilioCaller(rig.server.url) as third:
            with anyio.fail_after(SAFETY_S):
                await third.wait_for(lambda: len(played(third)) >= 1)
    assert first.protocol_errors == second.protocol_errors == third.protocol_errors == []
    assert rig.server.calls_served == 3


def test_max_calls_below_one_is_refused() -> None:
    async def run_call(transport: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="max_calls"):
        PhoneServer(run_call, port=0, max_calls=0)
