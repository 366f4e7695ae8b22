"""Phone tools: ``end_call`` (say goodbye, hang up once it has been heard) and
``transfer_call`` (Twilio's REST API redirects the live call to another number)."""

from __future__ import annotations

import os
import re
from typing import Any
from xml.sax.saxutils import escape

from voiceagent.toolkit import ToolContext, tool

TWILIO_API = "https://api.twilio.com"
NUMBER = re.compile(r"^\+?[0-9]{3,15}$")  # E.164, or a short extension
# Twilio's ids are letters and digits ("CA" + 32 hex); the call's id comes from the wire and
# names a path of the signed REST request, so anything else is refused, never sent
CALL_SID = re.compile(r"[A-Za-z0-9]{1,64}")
NO_CREDENTIALS = (
    "Transferring calls is not set up here (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are "
    "not configured), so I can't transfer you."
)


@tool(interruptible=False)
async def end_call(ctx: ToolContext, goodbye: str = "Thank you for calling. Goodbye!") -> str:
    """Hang up the call after saying goodbye; use when the caller is done.

    Args:
        goodbye: The last words to say.
    """
    await ctx.say(goodbye)
    await ctx.end_call()  # returns once the goodbye has played; then the line closes
    return "The call has ended."


@tool(filler="Transferring you now.", interruptible=False, timeout=15)
async def transfer_call(ctx: ToolContext, number: str) -> dict[str, Any]:
    """Transfer the caller to another phone number.

    Args:
        number: The number to transfer to, in E.164 form, e.g. "+14155550100".
    """
    import httpx2  # here, not at the top: `import voiceagent.tools` stays light

    cleaned = re.sub(r"[\s().-]", "", number)
    if not NUMBER.match(cleaned):
        return {"error": f"{number!r} is not a phone number I can dial."}
    sid = os.environ.get("TWILIO_ACCOUNT_SID", "").strip()
    token = os.environ.get("TWILIO_AUTH_TOKEN", "").strip()
    call_sid = str(ctx.metadata.get("call_sid") or "")
    if not sid or not token:
        return {"error": NO_CREDENTIALS}
    if not call_sid:
        return {"error": "There is no phone call to transfer."}
    if not CALL_SID.fullmatch(call_sid):
        return {"error": "This call's id is not one Twilio issues, so I can't transfer it."}
    base = (os.environ.get("TWILIO_API_BASE", "").strip() or TWILIO_API).rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{sid}/Calls/{call_sid}.json"
    twiml = f"<Response><Dial>{escape(cleaned)}</Dial></Response>"
    try:
        async with httpx2.AsyncClient(timeout=10.0) as client:
            response = await client.post(url, data={"Twiml": twiml}, auth=(sid, token))
    except httpx2.HTTPError:
        return {"error": "I couldn't reach the phone service to transfer you."}
    if response.status_code >= 400:
        return {"error": f"The phone service refused the transfer ({response.status_code})."}
    return {"transferred_to": cleaned}
