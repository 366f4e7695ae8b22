"""The ``get_weather`` tool: current weather from Open-Meteo (keyless), errors worded to say."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from voiceagent.toolkit import tool

if TYPE_CHECKING:
    import httpx2

logger = logging.getLogger(__name__)

GEOCODING_URL = "https://geocoding-api.open-meteo.com"
FORECAST_URL = "https://api.open-meteo.com"
DEFAULT_TIMEOUT = 4.0  # seconds for the whole look-up: a caller is waiting on the line

OFFLINE = "I couldn't reach the weather service."
TOO_SLOW = "I couldn't reach the weather service in time."
FAILING = "The weather service is having trouble right now."
REFUSED = "The weather service turned the request down."
UNREADABLE = "The weather service sent an answer I couldn't read."

# WMO weather interpretation codes, as Open-Meteo documents them.
CONDITIONS: dict[int, str] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "freezing fog",
    51: "light drizzle",
    53: "drizzle",
    55: "heavy drizzle",
    56: "light freezing drizzle",
    57: "freezing drizzle",
    61: "light rain",
    63: "rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "freezing rain",
    71: "light snow",
    73: "snow",
    75: "heavy snow",
    77: "snow grains",
    80: "light rain showers",
    81: "rain showers",
    82: "violent rain showers",
    85: "light snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with light hail",
    99: "thunderstorm with heavy hail",
}


class WeatherError(Exception):
    """The look-up failed; the message is worded for the model to pass on."""


def conditions(code: int) -> str:
    """A WMO weather code in words."""
    return CONDITIONS.get(code, "unknown conditions")


@dataclass(frozen=True)
class WeatherClient:
    """Open-Meteo's geocoding and forecast APIs at configurable bases (a local fake in tests)."""

    geocoding_base: str = GEOCODING_URL
    forecast_base: str = FORECAST_URL
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WeatherClient:
        """Bases from OPEN_METEO_GEOCODING_URL / OPEN_METEO_FORECAST_URL, else the public ones."""
        env = os.environ if environ is None else environ
        return cls(
            env.get("OPEN_METEO_GEOCODING_URL") or GEOCODING_URL,
            env.get("OPEN_METEO_FORECAST_URL") or FORECAST_URL,
        )

    async def current(self, city: str) -> dict[str, Any]:
        """The current weather in ``city``; raises WeatherError, never hangs past ``timeout``."""
        name = " ".join(city.split())
        if not name:
            raise WeatherError("Which city should I check the weather for?")
        import httpx2  # here, not at the top: `import voiceagent.tools` stays light

        try:
            with anyio.fail_after(self.timeout):
                async with httpx2.AsyncClient(timeout=self.timeout) as client:
                    place = await self._place(client, name)
                    now = await self._now(client, place)
        except TimeoutError as exc:
            raise WeatherError(TOO_SLOW) from exc
        try:
            return {
                "city": str(place["name"]),
                "country": str(place.get("country") or ""),
                "temperature_c": float(now["temperature_2m"]),
                "conditions": conditions(int(now["weather_code"])),
                "wind_kmh": float(now["wind_speed_10m"]),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise WeatherError(UNREADABLE) from exc

    async def _place(self, client: httpx2.AsyncClient, name: str) -> Mapping[str, Any]:
        # The geocoder matches place names only: "Paris, France" must be searched as "Paris".
        query = name.split(",", 1)[0].strip() or name
        data = await _get_json(
            client,
            f"{self.geocoding_base.rstrip('/')}/v1/search",
            {"name": query, "count": 1, "language": "en", "format": "json"},
        )
        results = data.get("results")
        if not isinstance(results, list) or not results or not isinstance(results[0], Mapping):
            raise WeatherError(f"I couldn't find a place called {name}.")
        place: Mapping[str, Any] = results[0]
        return place

    async def _now(self, client: httpx2.AsyncClient, place: Mapping[str, Any]) -> Mapping[str, Any]:
        data = await _get_json(
            client,
            f"{self.forecast_base.rstrip('/')}/v1/forecast",
            {
                "latitude": place.get("latitude"),
                "longitude": place.get("longitude"),
                "current": "temperature_2m,weather_code,wind_speed_10m",
            },
        )
        current = data.get("current")
        if not isinstance(current, Mapping):
            raise WeatherError(UNREADABLE)
        return current


async def _get_json(
    client: httpx2.AsyncClient, url: str, params: Mapping[str, Any]
) -> Mapping[str, Any]:
    import httpx2

    try:
        response = await client.get(url, params=dict(params))
    except httpx2.TimeoutException as exc:
        raise WeatherError(TOO_SLOW) from exc
    except httpx2.HTTPError as exc:  # refused, reset, DNS failure, protocol error
        raise WeatherError(OFFLINE) from exc
    if response.status_code >= 500:
        raise WeatherError(FAILING)
    if response.status_code != 200:
        logger.warning("Open-Meteo answered %s: %s", response.status_code, response.text[:300])
        raise WeatherError(REFUSED)
    try:
        data = response.json()
    except ValueError as exc:
        raise WeatherError(UNREADABLE) from exc
    if not isinstance(data, Mapping):
        raise WeatherError(UNREADABLE)
    return data


@tool(filler="Let me check the weather for you.", interruptible=True)
async def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: City name, e.g. "Paris".
    """
    return await WeatherClient.from_env().current(city)
