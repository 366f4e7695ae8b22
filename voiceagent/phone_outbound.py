"""Phone calls through Twilio's REST API: place an outbound call whose TwiML streams it to
our server, and the TwiML itself (``voiceagent phone --twiml`` prints it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

TWILIO_API = "https://api.twilio.com"
API_BASE_ENV = "TWILIO_API_BASE"  # tests point it at a local server
TIMEOUT_S = 10.0


class TwilioAPIError(RuntimeError):
    """Twilio refused or failed a request; ``status`` and Twilio's own message say why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def stream_url(public_url: str) -> str:
    """The ``wss://…/twilio`` URL Twilio dials, from the public base (https:// becomes wss://)."""
    parts = urlsplit(public_url.strip())
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"the public URL is a wss:// (or https://) base URL, not {public_url!r}")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/twilio"


def twiml(public_url: str, parameters: Mapping[str, str] | None = None) -> str:
    """TwiML connecting a call to the server; ``parameters`` reach the agent's tools as
    ``metadata["custom_parameters"]`` (the stream URL takes no query string)."""
    params = "".join(
        f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>"
        for k, v in (parameters or {}).items()
    )
    url = quoteattr(stream_url(public_url))
    inner = f"<Stream url={url}>{params}</Stream>" if params else f"<Stream url={url}/>"
    return f"<Response><Connect>{inner}</Connect></Response>"


def dial_twiml(number: str) -> str:
    return f"<Response><Dial>{escape(number)}</Dial></Response>"


async def place_call(
    to: str,
    from_: str,
    public_url: str,
    *,
    parameters: Mapping[str, str] | None = None,
    account_sid: str | None = None,
    auth_token: str | None = None,
    api_base: str | None = None,
) -> str:
    """Calls ``to`` from ``from_`` (a Twilio number); when answered it streams to the server
    at ``public_url``. Credentials default to TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN.
    Returns the new call's sid."""
    body = await twilio_request(
        "Calls.json",
        {"To": to, "From": from_, "Twiml": twiml(public_url, parameters)},
        account_sid=account_sid,
        auth_token=auth_token,
        api_base=api_base,
    )
    return str(body.get("sid", ""))


async def twilio_request(
    resource: str,
    form: Mapping[str, str],
    *,
    account_sid: str | None = None,
    auth_token: str | None = None,
    api_base: str | None = None,
) -> dict[str, object]:
    """POST ``form`` to ``/2010-04-01/Accounts/{sid}/{resource}``; Twilio's JSON answer."""
    import httpx2

    sid = account_sid or os.environ.get("TWILIO_ACCOUNT_SID", "").strip()
    token = auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "").strip()
    if not sid or not token:
        raise TwilioAPIError(
            "Twilio credentials missing: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    base = (api_base or os.environ.get(API_BASE_ENV, "").strip() or TWILIO_API).rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{sid}/{resource}"
    async with httpx2.AsyncClient(timeout=TIMEOUT_S) as client:
        try:
            response = await client.post(url, data=dict(form), auth=(sid, token))
        except httpx2.HTTPError as error:
            raise TwilioAPIError(f"could not reach Twilio: {error}") from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        detail = message or response.text[:200]
        raise TwilioAPIError(f"Twilio said {response.status_code}: {detail}", response.status_code)
    return body if isinstance(body, dict) else {}
