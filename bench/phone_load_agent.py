"""The agent ``bench/phone_load.py`` and ``bench/phone_soak.py`` serve: a greeting and a local
weather tool (no network), so each caller turn is one tool turn through the Electron fake."""

from __future__ import annotations

import anyio

from voiceagent import Agent, tool

TOOL_S = 0.2  # what the "lookup" takes: the filler plays meanwhile


@tool(filler="Let me check the weather for you.")
async def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city."""
    await anyio.sleep(TOOL_S)
    return {"city": city, "temperature_c": 21, "conditions": "sunny"}


agent = Agent(
    instructions="You are a weather line. Answer in one short sentence.",
    tools=[get_weather],
    greeting="Hello, weather line.",
)
