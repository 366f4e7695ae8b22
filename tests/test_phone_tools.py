"""The phone tools: end_call says goodbye, waits for its mark and closes the socket;
transfer_call and place_call speak Twilio's REST API (a local server here, never the internet)."""

from __future__ import annotations

from urllib.parse import parse_qs

import anyio
import pytest
from test_phone_call import SAFETY_S, WEATHER, needs_espeak, phone_rig, played, spoken

from voiceagent import audio
from voiceagent.agent import Agent
from voiceagent.phone_outbound import TwilioAPIError, place_call
from voiceagent.testing._http import HTTPServer, Request, Response
from voiceagent.testing.twilio import TwilioCaller
from voiceagent.toolkit import ToolContext
from voiceagent.tools import end_call, transfer_call

RATE = 8000
BYE = {"text": "", "tool_calls": [{"name": "end_call", "arguments": {"goodbye": "Bye now."}}]}


@needs_espeak
async def test_end_call_says_goodbye_waits_for_its_mark_and_closes_the_socket() -> None:
    agent = Agent(instructions="Answer.", tools=[end_call])
    async with phone_rig(agent, script=[BYE, {"text": "Done."}]) as rig:
        caller = TwilioCaller(rig.server.url)
        async with caller:
            caller.say(audio.silence(RATE // 5) + spoken(WEATHER) + audio.silence(RATE))
            with anyio.fail_after(SAFETY_S):
                await caller.wait()  # the bot hangs up
    sent = caller.received_events("mark")
    assert sent and played(caller) == [m["mark"]["name"] for m in sent]  # goodbye heard
    assert caller.clears == [] and caller.protocol_errors == []
    assert caller.close_code == 1000
    assert rig.sessions[0].ended == "hang_up"


class FakeTwilio:
    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.requests: list[Request] = []

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        return Response.json(self.status, {"sid": "CA" + "9" * 32, "message": "nope"})


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")


async def test_transfer_call_redirects_the_live_call(
    twilio_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTwilio()
    async with HTTPServer(fake.handle) as server:
        monkeypatch.setenv("TWILIO_API_BASE", f"http://{server.host}:{server.port}")
        ctx = ToolContext("c1", metadata={"call_sid": "CA42"})
        result = await transfer_call(ctx, number="+1 (415) 555-0100")
    assert result == {"transferred_to": "+14155550100"}
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.path == "/2010-04-01/Accounts/AC123/Calls/CA42.json"
    form = parse_qs(request.body.decode())
    assert form["Twiml"] == ["<Response><Dial>+14155550100</Dial></Response>"]
    assert request.header("authorization") is not None


async def test_a_forged_call_id_never_names_the_rest_request_s_path(
    twilio_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTwilio()
    async with HTTPServer(fake.handle) as server:
        monkeypatch.setenv("TWILIO_API_BASE", f"http://{server.host}:{server.port}")
        for forged in ("../../Accounts/AC999/Calls/CA1", "CA1/../CA2", "CA1?x=1", "CA1\n"):
            ctx = ToolContext("c1", metadata={"call_sid": forged})
            result = await transfer_call(ctx, number="+14155550100")
            assert "not one Twilio issues" in result["error"]
    assert fake.requests == []


async def test_transfer_call_without_credentials_gives_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    result = await transfer_call(ToolContext("c1", metadata={"call_sid": "CA1"}), number="+1415")
    assert "not set up" in result["error"]


async def test_transfer_call_refuses_what_is_not_a_number(twilio_env: None) -> None:
    result = await transfer_call(ToolContext("c1", metadata={"call_sid": "CA1"}), number="<x>")
    assert "not a phone number" in result["error"]


async def test_place_call_streams_the_new_call_to_the_server(twilio_env: None) -> None:
    fake = FakeTwilio()
    async with HTTPServer(fake.handle) as server:
        base = f"http://{server.host}:{server.port}"
        sid = await place_call("+15550001", "+15550002", "wss://bot.example.com",
                               parameters={"customer": "42"}, api_base=base)  # fmt: skip
    assert sid == "CA" + "9" * 32
    form = parse_qs(fake.requests[0].body.decode())
    assert form["To"] == ["+15550001"] and form["From"] == ["+15550002"]
    assert form["Twiml"] == [
        '<Response><Connect><Stream url="wss://bot.example.com/twilio">'
        '<Parameter name="customer" value="42"/></Stream></Connect></Response>'
    ]


async def test_place_call_reports_twilio_refusing(twilio_env: None) -> None:
    fake = FakeTwilio(status=401)
    async with HTTPServer(fake.handle) as server:
        with pytest.raises(TwilioAPIError, match="401"):
            await place_call("+1", "+2", "wss://b.example.com",
                             api_base=f"http://{server.host}:{server.port}")  # fmt: skip
