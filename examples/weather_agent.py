"""A small weather agent: one tool, short spoken answers.

    voiceagent chat examples/weather_agent.py --say "What's the weather in Paris?"

With no network the weather service cannot be reached; the tool then returns an error the
agent can say, so the caller still hears an answer.
"""

from __future__ import annotations

from typing import Any

from voiceagent import Agent, tool
from voiceagent.tools.weather import WeatherClient, WeatherError


@tool(filler="Let me check the weather for you.", interruptible=True)
async def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: City name, e.g. "Paris".
    """
    try:
        report = await WeatherClient.from_env().current(city)
    except WeatherError as error:
        # Worded for the listener: the model passes it on instead of guessing the weather.
        return {"city": city, "error": str(error)}
    return {
        "city": report["city"],
        "temperature_c": round(report["temperature_c"]),
        "conditions": report["conditions"],
    }


agent = Agent(
    instructions=(
        "You are a weather assistant on a voice line. Answer in one or two short spoken "
        "sentences, in degrees Celsius. Always use the get_weather tool; never guess. If it "
        "fails, say so briefly and suggest trying again later."
    ),
    tools=[get_weather],
    greeting="Hi! Which city's weather would you like to know?",
)
