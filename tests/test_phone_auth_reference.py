"""The upgrade checks of ``phone_auth`` against each carrier's own code, not against a copy of
our formula: Twilio's ``RequestValidator`` (run side by side over a table of URLs), Plivo's
``signature_v3`` and Telnyx's ``webhook_verification`` (fixed vectors computed once with the
SDK's own functions: neither SDK imports without its heavy dependencies)."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest
from nacl.signing import SigningKey
from twilio.request_validator import (  # type: ignore[import-untyped]
    HMAC_SHA1,
    HMAC_SHA256,
    RequestValidator,
    get_signature_algorithm,
)
from websockets.datastructures import Headers

from voiceagent.adapters.phone_auth import PhoneAuth, plivo_valid, telnyx_valid, twilio_valid
from voiceagent.adapters.phone_server import PhoneServer

TOKEN = "twilio-auth-token"
SHARED = "twilio-shared-key-secret"
SETTINGS = "X-Twilio-Webhooks-Signature-Settings"

# -- Twilio: RequestValidator and twilio_valid over every (server URL, signed URL) pair -------

HOSTS = ["bot.example.com", "bot.example.com:443", "bot.example.com:80", "bot.example.com:8443"]
SCHEMES = ["https", "http", "wss", "ws"]
PATHS = ["/twilio", "/voice/twilio", "/twilio?a=1&b=2", "/twilio?b=2&a=1", "/voice/twilio?x=%2F"]
URLS = [f"{s}://{h}{p}" for s, h, p in itertools.product(SCHEMES, HOSTS, PATHS)]

# What "agree" means. twilio_valid is asked about the URL the server was dialled on (the
# wss:// stream URL: `voiceagent phone` turns an https:// --public-url into wss://, and the
# TwiML's <Stream url="wss://…/twilio"> is the URL Twilio signs on the upgrade, as configured).
# - http/https URLs: literally RequestValidator(token).validate(url, {}, signature).
# - ws/wss URLs: RequestValidator only knows https's default port (its add_port gives every
#   other scheme ":80", so wss://host/x would be matched against wss://host:80/x, a port
#   Twilio never dials for a stream configured without one). wss's default port is 443 and
#   ws's 80 (RFC 6455 §3), as https's and http's: so for ws/wss we compare with RequestValidator
#   on the same pair with the schemes exchanged (ws<->http, wss<->https) in BOTH URLs. The
#   exchange is one-to-one on strings, so a signature over https://… still does not open
#   wss://… (nor the reverse). The one literal difference is pinned below.
SWAP = {"ws": "http", "wss": "https", "http": "ws", "https": "wss"}


def _swap(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{SWAP[scheme]}://{rest}"


def _reference(server_url: str, signed_url: str, secret: str, algorithm: str) -> bool:
    """RequestValidator's verdict on a signature over ``signed_url`` for ``server_url``."""
    if server_url.startswith("ws"):
        server_url, signed_url = _swap(server_url), _swap(signed_url)
    validator = RequestValidator(secret)
    signature = validator.compute_signature(signed_url, {}, algorithm)
    return bool(validator.validate(server_url, {}, signature, algorithm))


def _ours(server_url: str, signed_url: str, secret: str, settings: str | None) -> bool:
    algorithm = get_signature_algorithm(settings)
    signature = RequestValidator(secret).compute_signature(signed_url, {}, algorithm)
    headers = Headers({"X-Twilio-Signature": signature})
    if settings is not None:
        headers[SETTINGS] = settings
    return twilio_valid(TOKEN, SHARED, server_url, headers)


@pytest.mark.parametrize(
    ("secret", "settings"),
    [(TOKEN, None), (SHARED, "key=KS0123,algorithm=HMAC_SHA256"), (SHARED, "key=KS0123")],
    ids=["auth-token-sha1", "shared-key-sha256", "shared-key-sha1"],
)
def test_twilio_valid_agrees_with_request_validator_on_every_pair(
    secret: str, settings: str | None
) -> None:
    algorithm = get_signature_algorithm(settings)
    disagree = [
        (server, signed, ours)
        for server, signed in itertools.product(URLS, URLS)
        if (ours := _ours(server, signed, secret, settings))
        != _reference(server, signed, secret, algorithm)
    ]
    assert disagree == []
    # and the table is not vacuous: both verdicts occur, explicit default ports among the yeses
    accepted = {(a, b) for a, b in itertools.product(URLS, URLS) if _ours(a, b, secret, settings)}
    assert ("wss://bot.example.com/twilio", "wss://bot.example.com:443/twilio") in accepted
    assert (
        "https://bot.example.com:443/twilio?a=1&b=2",
        "https://bot.example.com/twilio?a=1&b=2",
    ) in accepted
    assert ("ws://bot.example.com/voice/twilio", "ws://bot.example.com:80/voice/twilio") in accepted
    assert ("wss://bot.example.com/twilio", "https://bot.example.com/twilio") not in accepted
    assert (
        "wss://bot.example.com/twilio?a=1&b=2",
        "wss://bot.example.com/twilio?b=2&a=1",
    ) not in accepted
    assert ("wss://bot.example.com/twilio", "wss://bot.example.com:8443/twilio") not in accepted
    assert len(URLS) <= len(accepted) < len(URLS) ** 2 // 4


def test_the_one_literal_difference_from_request_validator_is_the_wss_default_port() -> None:
    server = "wss://bot.example.com/twilio"
    on_80 = RequestValidator(TOKEN).compute_signature("wss://bot.example.com:80/twilio", {})
    on_443 = RequestValidator(TOKEN).compute_signature("wss://bot.example.com:443/twilio", {})
    # RequestValidator adds ":80" to a wss:// URL without a port; we add wss's own 443
    assert RequestValidator(TOKEN).validate(server, {}, on_80)
    assert not RequestValidator(TOKEN).validate(server, {}, on_443)
    assert not twilio_valid(TOKEN, None, server, Headers({"X-Twilio-Signature": on_80}))
    assert twilio_valid(TOKEN, None, server, Headers({"X-Twilio-Signature": on_443}))


@pytest.mark.parametrize(
    "settings",
    ["key=KS1,algorithm=HMAC_SHA256", "algorithm=hmac_sha256", " algorithm = HMAC_SHA256 ",
     "key=KS1", "", "algorithm=", "algorithm", "algorithm=HMAC_SHA512", "key=KS1,algorithm=MD5"],
)  # fmt: skip
def test_the_settings_header_picks_the_algorithm_as_get_signature_algorithm_does(
    settings: str,
) -> None:
    """Signed with SHA-1 and with SHA-256 by the shared key: each accepted exactly when
    RequestValidator, given get_signature_algorithm(header), accepts it."""
    url = "wss://bot.example.com/twilio"
    validator = RequestValidator(SHARED)
    for signed_with in (HMAC_SHA1, HMAC_SHA256):
        signature = validator.compute_signature(url, {}, signed_with)
        expected = validator.validate(url, {}, signature, get_signature_algorithm(settings))
        headers = Headers({"X-Twilio-Signature": signature, SETTINGS: settings})
        assert twilio_valid(TOKEN, SHARED, url, headers) is expected, signed_with


def _server(public_url: str, **auth: Any) -> PhoneServer:
    async def run_call(_: Any) -> None:
        return None

    return PhoneServer(run_call, public_url=public_url, auth=PhoneAuth(public_url, **auth))


def _refusal(server: PhoneServer, path: str, headers: Headers) -> str | None:
    """What the server's upgrade check (_process_request) answers for ``path``."""
    return server.auth.refusal(server.carrier_for(path), server.route(path), headers)


@pytest.mark.parametrize("path", ["/voice/twilio", "/twilio"], ids=["proxy-keeps", "proxy-strips"])
def test_with_a_path_prefix_the_signature_covers_the_prefixed_stream_url(path: str) -> None:
    """--public-url https://bot.example.com/voice: Twilio dials (and signs)
    wss://bot.example.com/voice/twilio; a proxy may hand the server /voice/twilio or /twilio."""
    server = _server("wss://bot.example.com/voice", twilio_auth_token=TOKEN)
    validator = RequestValidator(TOKEN)
    for signed in ("wss://bot.example.com/voice/twilio", "wss://bot.example.com:443/voice/twilio"):
        headers = Headers({"X-Twilio-Signature": validator.compute_signature(signed, {})})
        assert _refusal(server, path, headers) is None
    for signed in ("wss://bot.example.com/twilio", "wss://bot.example.com/voice/voice/twilio"):
        headers = Headers({"X-Twilio-Signature": validator.compute_signature(signed, {})})
        assert _refusal(server, path, headers) is not None


def test_the_stream_secret_opens_twilio_paths_too_when_the_auth_token_is_set() -> None:
    server = _server("wss://bot.example.com", twilio_auth_token=TOKEN, stream_secret="s3cret")
    assert _refusal(server, "/twilio", Headers({"Authorization": "Bearer s3cret"})) is None
    assert _refusal(server, "/twilio?token=s3cret", Headers()) is None
    assert _refusal(server, "/twilio", Headers({"Authorization": "Bearer guess"})) is not None


@pytest.mark.parametrize(
    "name",
    ["X-Twilio-Signature", "Authorization", "telnyx-signature-ed25519", "X-Plivo-Signature-V3"],
)
def test_an_auth_header_given_twice_is_refused_not_an_error(name: str) -> None:
    """websockets' Headers.get raises MultipleValuesError on a repeated header: the check
    answered 500 (an exception in process_request) where it must answer 403. A repeated
    auth header fails the checks even beside a good credential (no carrier repeats one)."""
    signature = RequestValidator(TOKEN).compute_signature("wss://bot.example.com/twilio", {})
    server = _server("wss://bot.example.com", twilio_auth_token=TOKEN, stream_secret="s3cret")
    good = [("X-Twilio-Signature", signature), ("Authorization", "Bearer s3cret")]
    once = Headers([pair for pair in good if pair[0] != name])
    twice = Headers([*once.raw_items(), (name, dict(good).get(name, "x")), (name, "x")])
    assert _refusal(server, "/twilio", once) is None
    assert _refusal(server, "/twilio", twice) is not None
    assert _refusal(server, "/", twice) is not None


# -- Plivo: a vector computed with plivo-python's own signature_v3 ----------------------------

# Computed ONCE with plivo==4.63.0 (PyPI wheel plivo-4.63.0-py2.py3-none-any.whl, sha256
# 41ad558d5d96b570b8d2fc1bb93cc12eeedff2d4761ce5611ac32309f612cdcd), plivo/utils/signature_v3.py:
#   base = construct_get_url(URL, {}).decode()   # its query parsed, keys and values sorted
#   get_signature_v3(b"plivo-token", base, b"05429567804466091622")
# (validate_v3_signature itself runs the same two calls, then `signature in header.split(",")`;
# its argument check only takes http(s):// URIs, so for the https:// twin of each URL it was
# run too and accepted.) plivo is not a test dependency: it pulls requests, lxml, six, decorator
# and PyJWT, and its package __init__ imports the REST client.
PLIVO_TOKEN = "plivo-token"
PLIVO_NONCE = "05429567804466091622"
PLIVO_VECTORS = [
    # (URL as the server computes it, Plivo's canonical string it signed, signature)
    ("wss://bot.example.com/plivo?b=2&a=3&a=1&c=x%20y",
     "wss://bot.example.com/plivo?a=1&a=3&b=2&c=x y",
     "K8EEf+JokdftzJkBpUK5fINrS/BLe/LmCErBnQ6fDHc="),
    ("wss://bot.example.com/voice/plivo?zeta=1&alpha=two&alpha=one&empty=",
     "wss://bot.example.com/voice/plivo?alpha=one&alpha=two&empty=&zeta=1",
     "xxwIkblnH2q1x81ZUs99OJ+RKoidKIei9y9cJHL8gDs="),
    ("wss://bot.example.com/plivo?a+b=c+d&x=%2B",
     "wss://bot.example.com/plivo?a b=c d&x=+",
     "oHIUhaoPVq3u2W8bFgnTTKu67jNiuKzmPsXyd0yAVmM="),
    ("wss://bot.example.com/plivo?flag",
     "wss://bot.example.com/plivo?flag=",
     "s9C/Ko6iGz0elbxlmeYi7/GtA/eo6iTySv3eYHECwkQ="),
    ("wss://bot.example.com/plivo?", "wss://bot.example.com/plivo",
     "iE+eyLK64+8XcrpQQa4B7lNjKnUNYx87MeclnAshnY4="),
]  # fmt: skip


def _plivo(signature: str, header: str = "X-Plivo-Signature-V3") -> Headers:
    return Headers({header: signature, "X-Plivo-Signature-V3-Nonce": PLIVO_NONCE})


@pytest.mark.parametrize(("url", "canonical", "signature"), PLIVO_VECTORS)
@pytest.mark.parametrize("header", ["X-Plivo-Signature-V3", "X-Plivo-Signature-Ma-V3"])
def test_plivo_valid_accepts_what_plivo_python_signs(
    url: str, canonical: str, signature: str, header: str
) -> None:
    assert plivo_valid(PLIVO_TOKEN, url, _plivo(signature, header))
    # the header may list several signatures, comma-separated (Plivo splits on ",")
    assert plivo_valid(PLIVO_TOKEN, url, _plivo(f"bm9wZQ==,{signature}", header))


@pytest.mark.parametrize(("url", "canonical", "signature"), PLIVO_VECTORS)
def test_plivo_valid_refuses_a_tampered_url_nonce_signature_or_token(
    url: str, canonical: str, signature: str
) -> None:
    assert not plivo_valid(PLIVO_TOKEN, url + "&z=1", _plivo(signature))
    assert not plivo_valid(PLIVO_TOKEN, url.replace("/plivo", "/plivo2"), _plivo(signature))
    assert not plivo_valid(PLIVO_TOKEN, url.replace("wss://", "https://"), _plivo(signature))
    assert not plivo_valid("other-token", url, _plivo(signature))
    flipped = ("L" if signature[0] != "L" else "M") + signature[1:]
    assert not plivo_valid(PLIVO_TOKEN, url, _plivo(flipped))
    other_nonce = Headers({"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": "1"})
    assert not plivo_valid(PLIVO_TOKEN, url, other_nonce)
    assert not plivo_valid(PLIVO_TOKEN, url, Headers({"X-Plivo-Signature-V3": signature}))


def test_plivos_query_is_sorted_so_any_order_of_the_same_params_is_one_signature() -> None:
    _, _, signature = PLIVO_VECTORS[0]
    reordered = "wss://bot.example.com/plivo?c=x%20y&a=1&b=2&a=3"
    assert plivo_valid(PLIVO_TOKEN, reordered, _plivo(signature))


# -- Telnyx: a vector checked with telnyx-python's own verify_webhook_signature ---------------

# Verified ONCE with telnyx==4.189.0 (PyPI wheel telnyx-4.189.0-py3-none-any.whl, sha256
# 1a67236f7b04965ec940b704bc3d11373a8e5c90a6c6966d99d16c88bfa09085),
# telnyx/lib/webhook_verification.py verify_webhook_signature (lines 85-178): headers
# telnyx-signature-ed25519 (base64, 64 bytes) and telnyx-timestamp, the Ed25519 signature over
# f"{timestamp}|{payload}" (lines 167, 174; here payload "", an upgrade has no body) by the
# base64 public key; `abs(int(time.time()) - int(timestamp)) > 300` refused (lines 129-134).
# Key: nacl SigningKey(b"telnyx reference vector seed 32b"). With time.time() patched in that
# module it accepted at 1700000000.0 and 1700000300.9 and refused at 1700000301.0 and
# 1699999699.5 (301 s in whole seconds), and refused timestamp "1700000001" with this signature.
TELNYX_PUBLIC_KEY = "GYEDSopGD0vwoZOUL1Wtx9+K6IWrHzpW7rjud4hQaYQ="
TELNYX_TIMESTAMP = "1700000000"
TELNYX_SIGNATURE = (
    "9AHLBpeLtBmneH3N05ibdHeiNp11AAdk20KmiJNrjO+ouca+XSHY2t7xuABdu9CCBv/EJj82lcKAfj70hsTEAw=="
)


def _telnyx(signature: str = TELNYX_SIGNATURE, timestamp: str = TELNYX_TIMESTAMP) -> Headers:
    return Headers({"Telnyx-Signature-Ed25519": signature, "Telnyx-Timestamp": timestamp})


@pytest.mark.parametrize(
    ("now", "accepted"),
    [(1700000000.0, True), (1700000300.9, True), (1699999700.0, True),
     (1700000301.0, False), (1699999699.5, False)],
)  # fmt: skip
def test_telnyx_valid_agrees_with_telnyx_python_on_the_vector_and_its_window(
    now: float, accepted: bool
) -> None:
    assert telnyx_valid(TELNYX_PUBLIC_KEY, _telnyx(), now=now) is accepted


def test_telnyx_valid_refuses_a_tampered_timestamp_signature_or_key() -> None:
    now = float(TELNYX_TIMESTAMP)
    assert not telnyx_valid(TELNYX_PUBLIC_KEY, _telnyx(timestamp="1700000001"), now=now)
    raw = bytearray(base64.b64decode(TELNYX_SIGNATURE))
    raw[0] ^= 1
    flipped = base64.b64encode(bytes(raw)).decode()
    assert not telnyx_valid(TELNYX_PUBLIC_KEY, _telnyx(flipped), now=now)
    other_key = base64.b64encode(bytes(SigningKey(b"x" * 32).verify_key)).decode()
    assert not telnyx_valid(other_key, _telnyx(), now=now)
    assert not telnyx_valid(TELNYX_PUBLIC_KEY, Headers({"telnyx-timestamp": "1700000000"}), now=now)
