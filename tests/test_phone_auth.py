"""Who may open a call: with any authentication configured every carrier path is checked
(Twilio's and Plivo's signatures, Telnyx's Ed25519 signature, the stream secret) or closed,
on its own path and on "/" once the carrier is detected; with none, calls stay open."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from nacl.signing import SigningKey
from test_phone_call import SAFETY_S, phone_rig, played
from twilio.request_validator import HMAC_SHA256, RequestValidator
from websockets.exceptions import InvalidStatus

from voiceagent.agent import Agent
from voiceagent.testing import CarrierCaller

PUBLIC = "wss://bot.example.com"
TOKEN = "twilio-token"
PLIVO_TOKEN = "plivo-token"
SECRET = "stream-secret"
GREETER = Agent(instructions="Answer.", greeting="Hello.")
CARRIERS = ["twilio", "telnyx", "plivo", "exotel"]
TELNYX_KEY = SigningKey(b"k" * 32)
VOICEAGENT = str(Path(__import__("sys").executable).with_name("voiceagent"))


def _auth(**options: Any) -> Any:
    from voiceagent.adapters.phone_auth import PhoneAuth

    return PhoneAuth(public_url=PUBLIC, **options)


def _url(port: int, path: str) -> str:
    return f"ws://127.0.0.1:{port}{path}"


async def _greeted(url: str, carrier: str, headers: dict[str, str] | None = None) -> CarrierCaller:
    """A call on ``url`` that hears the greeting, then hangs up."""
    caller = CarrierCaller(url, carrier=carrier, headers=headers)
    async with caller:
        with anyio.fail_after(SAFETY_S):
            await caller.wait_for(lambda: len(played(caller)) >= 1)
    assert caller.protocol_errors == []
    return caller


async def _refused(url: str, carrier: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status an upgrade on ``url`` is refused with."""
    with pytest.raises(InvalidStatus) as refused:
        async with CarrierCaller(url, carrier=carrier, headers=headers):
            pass
    return refused.value.response.status_code


def _telnyx_headers(key: SigningKey = TELNYX_KEY, age_s: float = 0.0) -> dict[str, str]:
    timestamp = str(int(time.time() - age_s))
    signature = key.sign(f"{timestamp}|".encode()).signature  # the upgrade has no body
    return {"telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": timestamp}  # fmt: skip


def _telnyx_public_key() -> str:
    return base64.b64encode(bytes(TELNYX_KEY.verify_key)).decode()


def _plivo_headers(url: str, nonce: str = "05429567804466091622") -> dict[str, str]:
    # Plivo's V3 recipe (plivo/utils/signature_v3.py): base64 HMAC-SHA256 of "URL.nonce"
    digest = hmac.new(PLIVO_TOKEN.encode(), f"{url}.{nonce}".encode(), hashlib.sha256).digest()
    return {"X-Plivo-Signature-V3": base64.b64encode(digest).decode(),
            "X-Plivo-Signature-V3-Nonce": nonce}  # fmt: skip


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- a Twilio token alone no longer opens the other carriers' paths ----------------------------


@pytest.mark.parametrize("carrier", ["telnyx", "plivo", "exotel"])
async def test_with_a_twilio_token_unsigned_calls_on_other_carrier_paths_are_refused(
    carrier: str,
) -> None:
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        status = await _refused(_url(rig.server.port, f"/{carrier}"), carrier)
        assert rig.server.calls_served == 0 and rig.server.refused[403] == 1
    assert status == 403


@pytest.mark.parametrize("carrier", CARRIERS)
async def test_with_a_twilio_token_unsigned_calls_on_root_are_refused_whatever_the_carrier(
    carrier: str,
) -> None:
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        status = await _refused(_url(rig.server.port, "/"), carrier)
        assert rig.server.calls_served == 0 and rig.server.refused[403] == 1
    assert status == 403


async def test_a_twilio_signed_upgrade_on_root_that_speaks_another_carrier_is_closed() -> None:
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/", {})
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        root = _url(rig.server.port, "/")
        twilio = await _greeted(root, "twilio", {"X-Twilio-Signature": signature})
        telnyx = CarrierCaller(root, carrier="telnyx", headers={"X-Twilio-Signature": signature})
        with anyio.fail_after(SAFETY_S):
            await telnyx.run()
        assert rig.server.refused[403] == 1
    assert telnyx.close_code == 1008 and not played(telnyx)
    assert [t.metadata["carrier"] for t in rig.transports] == ["twilio"]
    assert twilio.close_code != 1008


# -- each carrier's own check --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/telnyx", "/"])
async def test_a_telnyx_call_signed_with_ed25519_runs(path: str) -> None:
    auth = _auth(telnyx_public_key=_telnyx_public_key())
    async with phone_rig(GREETER, listen=False, auth=auth) as rig:
        await _greeted(_url(rig.server.port, path), "telnyx", _telnyx_headers())
    assert [t.metadata["carrier"] for t in rig.transports] == ["telnyx"]


@pytest.mark.parametrize(
    "headers",
    [{}, _telnyx_headers(SigningKey(b"x" * 32)), _telnyx_headers(age_s=600)],
    ids=["unsigned", "another-key", "stale"],
)
async def test_a_telnyx_call_unsigned_forged_or_stale_is_refused(headers: dict[str, str]) -> None:
    auth = _auth(telnyx_public_key=_telnyx_public_key())
    async with phone_rig(GREETER, listen=False, auth=auth) as rig:
        assert await _refused(_url(rig.server.port, "/telnyx"), "telnyx", headers) == 403
        assert await _refused(_url(rig.server.port, "/"), "telnyx", headers) == 403
        assert rig.server.calls_served == 0


async def test_a_plivo_call_with_its_v3_signature_runs_and_a_wrong_one_is_refused() -> None:
    async with phone_rig(GREETER, listen=False, auth=_auth(plivo_auth_token=PLIVO_TOKEN)) as rig:
        url = _url(rig.server.port, "/plivo")
        await _greeted(url, "plivo", _plivo_headers(f"{PUBLIC}/plivo"))
        await _greeted(_url(rig.server.port, "/"), "plivo", _plivo_headers(f"{PUBLIC}/"))
        signed_for_root = _plivo_headers(f"{PUBLIC}/")
        assert await _refused(url, "plivo", signed_for_root) == 403
        assert await _refused(url, "plivo") == 403
    assert [t.metadata["carrier"] for t in rig.transports] == ["plivo", "plivo"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/exotel", _basic("exotel-key", SECRET)),  # wss://KEY:SECRET@host/exotel in Exotel
        ("/exotel", {"Authorization": f"Bearer {SECRET}"}),
        (f"/exotel?token={SECRET}", {}),
        ("/", _basic("exotel-key", SECRET)),
    ],
    ids=["basic", "bearer", "query", "root"],
)
async def test_an_exotel_call_with_the_stream_secret_runs(
    path: str, headers: dict[str, str]
) -> None:
    async with phone_rig(GREETER, listen=False, auth=_auth(stream_secret=SECRET)) as rig:
        await _greeted(_url(rig.server.port, path), "exotel", headers)
    assert [t.metadata["carrier"] for t in rig.transports] == ["exotel"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/exotel", _basic("exotel-key", "guess")), ("/exotel?token=guess", {}), ("/exotel", {})],
    ids=["basic", "query", "none"],
)
async def test_a_wrong_or_missing_stream_secret_is_refused(
    path: str, headers: dict[str, str]
) -> None:
    async with phone_rig(GREETER, listen=False, auth=_auth(stream_secret=SECRET)) as rig:
        assert await _refused(_url(rig.server.port, path), "exotel", headers) == 403


async def test_carriers_with_nothing_configured_are_closed() -> None:
    async with phone_rig(GREETER, listen=False, auth=_auth(plivo_auth_token=PLIVO_TOKEN)) as rig:
        port = rig.server.port
        for carrier in ("twilio", "telnyx", "exotel"):
            # even a credential meant for another carrier does not open them
            assert await _refused(_url(port, f"/{carrier}"), carrier) == 403
            assert await _refused(_url(port, "/"), carrier) == 403
        signed = _plivo_headers(f"{PUBLIC}/")
        exotel = CarrierCaller(_url(port, "/"), carrier="exotel", headers=signed)
        with anyio.fail_after(SAFETY_S):
            await exotel.run()  # signed as Plivo would sign "/", but speaks Exotel
        assert rig.server.calls_served == 0
    assert exotel.close_code == 1008


# -- Twilio's signature as its own RequestValidator computes it -------------------------------


async def test_twilio_signatures_with_and_without_the_default_port_are_accepted() -> None:
    validator = RequestValidator(TOKEN)
    async with phone_rig(GREETER, listen=False, public_url=PUBLIC, auth_token=TOKEN) as rig:
        for signed in (f"{PUBLIC}/twilio", "wss://bot.example.com:443/twilio"):
            signature = validator.compute_signature(signed, {})
            url = _url(rig.server.port, "/twilio")
            await _greeted(url, "twilio", {"X-Twilio-Signature": signature})
        other_port = validator.compute_signature("wss://bot.example.com:8443/twilio", {})
        assert await _refused(url, "twilio", {"X-Twilio-Signature": other_port}) == 403
    assert rig.server.calls_served == 2


async def test_a_public_url_with_the_default_port_accepts_signatures_without_it() -> None:
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio", {})
    public = "wss://bot.example.com:443"
    async with phone_rig(GREETER, listen=False, public_url=public, auth_token=TOKEN) as rig:
        url = _url(rig.server.port, "/twilio")
        await _greeted(url, "twilio", {"X-Twilio-Signature": signature})


async def test_a_twilio_shared_key_signature_with_hmac_sha256_is_accepted() -> None:
    shared = "shared-key-secret"
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=KS123,algorithm=HMAC_SHA256"}
    good = RequestValidator(shared).compute_signature(f"{PUBLIC}/twilio", {}, HMAC_SHA256)
    with_token = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio", {}, HMAC_SHA256)
    auth = _auth(twilio_auth_token=TOKEN, twilio_shared_key_secret=shared)
    async with phone_rig(GREETER, listen=False, auth=auth) as rig:
        url = _url(rig.server.port, "/twilio")
        await _greeted(url, "twilio", {"X-Twilio-Signature": good, **settings})
        assert await _refused(url, "twilio", {"X-Twilio-Signature": with_token, **settings}) == 403
        assert await _refused(url, "twilio", {"X-Twilio-Signature": good}) == 403  # not SHA-1


# -- nothing configured ---------------------------------------------------------------------


async def test_with_nothing_configured_calls_are_open_and_the_server_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="voiceagent.adapters.phone_server")
    async with phone_rig(GREETER, listen=False) as rig:
        for carrier in CARRIERS:
            await _greeted(_url(rig.server.port, f"/{carrier}"), carrier)
    warnings = [r.getMessage() for r in caplog.records if "not authenticated" in r.getMessage()]
    assert len(warnings) == 1


def test_a_plivo_token_without_a_public_url_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMALLEST", "TWILIO"))}
    env |= {"PLIVO_AUTH_TOKEN": "tok", "PULSE_URL": "ws://127.0.0.1:9/x"}
    done = subprocess.run([VOICEAGENT, "phone", "--port", "0", "--tts", "test"], env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2
    assert "PLIVO_AUTH_TOKEN" in done.stderr and "--public-url" in done.stderr
    assert done.stdout == ""
