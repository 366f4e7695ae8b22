"""A phone bot: it greets the caller, looks up an order with a tool, and hangs up politely.

    voiceagent phone examples/phone_bot.py --public-url wss://bot.example.com
    voiceagent phone --twiml --public-url wss://bot.example.com   # paste into Twilio

Parameters passed in the TwiML (``<Parameter name="customer" value="…"/>``) reach the tools
as ``ctx.metadata["custom_parameters"]``.
"""

from __future__ import annotations

from typing import Any

from voiceagent import Agent, ToolContext, tool
from voiceagent.tools import end_call

_ORDERS = {"1234": "shipped yesterday and arrives tomorrow", "5678": "being packed today"}


@tool(filler="Let me look that up.")
async def order_status(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Where an order is.

    Args:
        order_id: The order number the caller gave, digits only.
    """
    customer = ctx.metadata.get("custom_parameters", {}).get("customer")
    status = _ORDERS.get(order_id.strip())
    if status is None:
        return {"order_id": order_id, "error": "no order with that number"}
    return {"order_id": order_id, "status": status, "customer": customer}


agent = Agent(
    instructions=(
        "You answer the phone for a small shop. Speak in one or two short sentences. Use "
        "order_status for questions about an order. When the caller has nothing more, say "
        "goodbye with end_call."
    ),
    tools=[order_status, end_call],
    greeting="Hello, thanks for calling the shop. How can I help?",
)
