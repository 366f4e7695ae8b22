"""Who may open a call: each carrier's check of the websocket upgrade (Twilio's and Plivo's
HMAC signatures, Telnyx's Ed25519 signature, a shared stream secret); a carrier with none
configured is closed as soon as any is."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from urllib.parse import parse_qs, urlsplit, urlunsplit

from websockets.datastructures import Headers

CARRIERS = ("twilio", "telnyx", "plivo", "exotel")
# the environment variable of each setting (voiceagent phone reads them; never a flag: a
# secret on the command line shows in every process listing)
ENV = {
    "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    "twilio_shared_key_secret": "TWILIO_SHARED_KEY_SECRET",
    "telnyx_public_key": "TELNYX_PUBLIC_KEY",
    "plivo_auth_token": "PLIVO_AUTH_TOKEN",
    "stream_secret": "VOICEAGENT_STREAM_SECRET",
}
TWILIO_SIGNATURE = "X-Twilio-Signature"
TWILIO_SETTINGS = "X-Twilio-Webhooks-Signature-Settings"  # "key=KS…,algorithm=HMAC_SHA256"
TWILIO_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
TELNYX_SIGNATURE = "telnyx-signature-ed25519"
TELNYX_TIMESTAMP = "telnyx-timestamp"
TELNYX_TOLERANCE_S = 300  # as Telnyx's SDK: a signature older or newer than this is refused
PLIVO_SIGNATURES = ("X-Plivo-Signature-V3", "X-Plivo-Signature-Ma-V3")
PLIVO_NONCE = "X-Plivo-Signature-V3-Nonce"
# the headers a check reads: one given twice makes the upgrade fail its checks (no carrier
# repeats them; websockets' Headers.get would raise MultipleValuesError, a 500, not a 403)
AUTH_HEADERS = (TWILIO_SIGNATURE, TWILIO_SETTINGS, TELNYX_SIGNATURE, TELNYX_TIMESTAMP,
                *PLIVO_SIGNATURES, PLIVO_NONCE, "Authorization")  # fmt: skip
DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}


class SignatureConfigError(ValueError):
    """Authentication configured in a way that cannot work (a token without the public URL
    its signatures are computed over, a key that is not one)."""


@dataclass(frozen=True)
class PhoneAuth:
    """The checks an upgrade must pass, per carrier. With none configured every call is let
    in; with any, a call must pass its carrier's check (or carry ``stream_secret``), and a
    carrier with no check configured is closed.

    - Twilio: ``X-Twilio-Signature``, HMAC-SHA1 of ``public_url`` + path with the auth token
      (the URL with or without its port, as Twilio's ``RequestValidator``); with
      ``X-Twilio-Webhooks-Signature-Settings`` (a Webhook Rule's SharedKey) the header's
      algorithm (HMAC-SHA1/-SHA256) with ``twilio_shared_key_secret``.
    - Plivo: ``X-Plivo-Signature-V3`` (or ``-Ma-V3``), HMAC-SHA256 of ``URL.nonce``.
    - Telnyx: ``telnyx-signature-ed25519`` over ``timestamp|`` (the upgrade has no body),
      verified with ``telnyx_public_key``, the timestamp within 300 s.
    - Any carrier: ``stream_secret`` as ``Authorization: Bearer``, as the password of
      ``Authorization: Basic`` (Exotel's ``wss://KEY:SECRET@host/…``), or as ``?token=``.
    """

    public_url: str | None = None  # the wss:// base the carriers dial, without a path
    twilio_auth_token: str | None = None
    twilio_shared_key_secret: str | None = None
    telnyx_public_key: str | None = None  # base64, 32 bytes (Telnyx's portal: Keys & Credentials)
    plivo_auth_token: str | None = None
    stream_secret: str | None = None

    def __post_init__(self) -> None:
        for field in fields(self):  # blank settings are no settings
            value = getattr(self, field.name)
            object.__setattr__(self, field.name, (value or "").strip() or None)
        if self.public_url is not None:
            object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        signed = [n for n in ("twilio_auth_token", "twilio_shared_key_secret",
                              "plivo_auth_token") if getattr(self, n)]  # fmt: skip
        if signed and not self.public_url:
            names = " and ".join(ENV[n] for n in signed)
            raise SignatureConfigError(
                f"{names} set but --public-url is not: the signature is computed over the "
                "public URL the carrier dials (e.g. wss://bot.example.com)"
            )
        if self.telnyx_public_key is not None:
            _telnyx_verifier(self.telnyx_public_key)  # a bad key or no PyNaCl: refuse to start

    @classmethod
    def from_env(cls, env: Mapping[str, str], public_url: str | None = None) -> PhoneAuth:
        return cls(public_url, **{name: env.get(var) for name, var in ENV.items()})

    @property
    def enabled(self) -> bool:
        """Whether any check is configured (then every call path is authenticated)."""
        return any(self.methods(carrier) for carrier in CARRIERS)

    def methods(self, carrier: str) -> list[str]:
        """The checks that can let ``carrier``'s calls in (none: its paths are closed)."""
        own = {
            "twilio": self.twilio_auth_token or self.twilio_shared_key_secret,
            "telnyx": self.telnyx_public_key,
            "plivo": self.plivo_auth_token,
        }
        names = {"twilio": TWILIO_SIGNATURE, "telnyx": TELNYX_SIGNATURE,
                 "plivo": PLIVO_SIGNATURES[0]}  # fmt: skip
        found = [names[carrier]] if own.get(carrier) else []
        return found + (["the stream secret"] if self.stream_secret else [])

    def describe(self) -> str:
        """One line for the start banner: what each carrier's calls need."""
        if not self.enabled:
            names = ", ".join(ENV[n] for n in ENV if n != "twilio_shared_key_secret")
            return f"calls are not authenticated (none of {names} is set)"
        needs = [f"{c} {' or '.join(self.methods(c)) or 'closed'}" for c in CARRIERS]
        return "calls authenticated: " + "; ".join(needs)

    def refusal(self, carrier: str | None, path: str, headers: Headers) -> str | None:
        """Why an upgrade for ``carrier`` on ``path`` (with its query) is refused; None if it
        may come in. ``carrier`` None ("/", detected later): refused unless some carrier's
        check passes — the detected carrier's is asked again by ``allows``."""
        if not self.enabled:
            return None
        if carrier is None:
            if any(self.allows(c, path, headers) for c in CARRIERS):
                return None
            return "no carrier's signature nor the stream secret on this upgrade"
        if not self.methods(carrier):
            return f"{carrier} calls are closed: no authentication is configured for them"
        if self.allows(carrier, path, headers):
            return None
        return f"missing or wrong {' or '.join(self.methods(carrier))}"

    def allows(self, carrier: str, path: str, headers: Headers) -> bool:
        """Whether an upgrade on ``path`` passes ``carrier``'s check or the stream secret."""
        if not self.enabled:
            return True
        if any(len(headers.get_all(name)) > 1 for name in AUTH_HEADERS):
            return False
        if self.stream_secret and _carries_secret(self.stream_secret, path, headers):
            return True
        url = f"{self.public_url}{path}"
        if carrier == "twilio" and self.public_url:
            return twilio_valid(self.twilio_auth_token, self.twilio_shared_key_secret, url,
                                headers)  # fmt: skip
        if carrier == "plivo" and self.public_url and self.plivo_auth_token:
            return plivo_valid(self.plivo_auth_token, url, headers)
        if carrier == "telnyx" and self.telnyx_public_key:
            return telnyx_valid(self.telnyx_public_key, headers)
        return False


# -- Twilio ---------------------------------------------------------------------------------


def twilio_signature(token: str, url: str, algorithm: str = "HMAC_SHA1") -> str:
    """Twilio's request signature for a URL without POST parameters (the stream's upgrade)."""
    digest = hmac.new(token.encode(), url.encode(), TWILIO_HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_valid(
    auth_token: str | None, shared_key_secret: str | None, url: str, headers: Headers
) -> bool:
    """``X-Twilio-Signature`` for ``url``: with the auth token and HMAC-SHA1, or — when
    ``X-Twilio-Webhooks-Signature-Settings`` says a SharedKey signed it — with that secret
    and the header's algorithm (twilio-python's ``get_signature_algorithm``)."""
    given = _header(headers, TWILIO_SIGNATURE) or ""
    settings = _header(headers, TWILIO_SETTINGS)
    secret = shared_key_secret if settings is not None else auth_token
    algorithm = _twilio_algorithm(settings)
    if not given or secret is None or algorithm not in TWILIO_HASHES:
        return False
    return any(_same(given, twilio_signature(secret, u, algorithm)) for u in port_variants(url))


def _twilio_algorithm(settings: str | None) -> str:
    for part in (settings or "").split(","):
        name, _, value = part.partition("=")
        if name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def port_variants(url: str) -> list[str]:
    """``url`` without its port and with it (the scheme's default when it has none): Twilio
    signs either, so its ``RequestValidator`` accepts both. (That validator adds :80 to any
    scheme but https; here wss gets its own default, 443.)"""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    port = port if port is not None else DEFAULT_PORTS.get(parts.scheme)
    without = urlunsplit(parts._replace(netloc=host))
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{port}")) if port else url
    return list(dict.fromkeys([url, without, with_port]))


# -- Plivo ----------------------------------------------------------------------------------


def plivo_signature(auth_token: str, url: str, nonce: str) -> str:
    """Plivo's V3 signature of a GET (the stream's upgrade): base64 HMAC-SHA256 of the URL
    (its query sorted, as plivo-python's ``construct_get_url``), ".", the nonce."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    pairs = [f"{key}={value}" for key in sorted(query) for value in sorted(query[key])]
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(pairs), ""))
    digest = hmac.new(auth_token.encode(), f"{base}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def plivo_valid(auth_token: str, url: str, headers: Headers) -> bool:
    nonce = _header(headers, PLIVO_NONCE)
    if not nonce:
        return False
    expected = plivo_signature(auth_token, url, nonce)
    given = [s.strip() for n in PLIVO_SIGNATURES for s in (_header(headers, n) or "").split(",")]
    return any(_same(s, expected) for s in given if s)


# -- Telnyx ---------------------------------------------------------------------------------


def telnyx_valid(public_key: str, headers: Headers, now: float | None = None) -> bool:
    """``telnyx-signature-ed25519`` over ``timestamp|`` (an upgrade has no body), by the
    account's key, ``telnyx-timestamp`` within ``TELNYX_TOLERANCE_S`` of ``now`` in whole
    seconds (as Telnyx's SDK: ``abs(int(time.time()) - int(timestamp))``)."""
    timestamp = _header(headers, TELNYX_TIMESTAMP) or ""
    try:
        signature = base64.b64decode(_header(headers, TELNYX_SIGNATURE) or "", validate=True)
        age = abs(int(time.time() if now is None else now) - int(timestamp))
    except (binascii.Error, ValueError):
        return False
    if age > TELNYX_TOLERANCE_S or len(signature) != 64:
        return False
    return _telnyx_verifier(public_key)(f"{timestamp}|".encode(), signature)


def _telnyx_verifier(public_key: str) -> Callable[[bytes, bytes], bool]:
    try:
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey
    except ImportError:
        raise SignatureConfigError(
            "TELNYX_PUBLIC_KEY needs PyNaCl (Ed25519): pip install 'voiceagent[telnyx]'"
        ) from None
    try:
        key = VerifyKey(base64.b64decode(public_key, validate=True))
    except (binascii.Error, ValueError):
        raise SignatureConfigError(
            "TELNYX_PUBLIC_KEY is not a base64 Ed25519 public key (32 bytes)"
        ) from None

    def verify(message: bytes, signature: bytes) -> bool:
        try:
            key.verify(message, signature)
        except BadSignatureError:
            return False
        return True

    return verify


# -- the stream secret ----------------------------------------------------------------------


def _carries_secret(secret: str, path: str, headers: Headers) -> bool:
    """``Authorization: Bearer SECRET``, ``Authorization: Basic`` with SECRET as password
    (any user), or ``?token=SECRET`` in the stream URL."""
    offered = parse_qs(urlsplit(path).query).get("token", [])
    scheme, _, value = (_header(headers, "Authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        offered.append(value.strip())
    elif scheme.lower() == "basic":
        try:
            pair = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            pair = ""
        offered.append(pair.partition(":")[2])
    return any(_same(o, secret) for o in offered)


def _header(headers: Headers, name: str) -> str | None:
    """The value of ``name`` if the upgrade carries it exactly once (else None)."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
