"""voiceagent.tools.weather against a local fake Open-Meteo: results, unknown places, outages.

Nothing here reaches the internet: every base URL points at 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
import pytest

from voiceagent.testing._http import HTTPServer, Request, Response
from voiceagent.toolkit import ToolCall, ToolCallState, ToolExecutor, ToolRegistry
from voiceagent.tools import get_weather, weather
from voiceagent.tools.weather import WeatherClient, WeatherError

# Open-Meteo's real response shapes, trimmed to a few places.
PLACES: dict[str, dict[str, Any]] = {
    "Paris": {
        "id": 2988507,
        "name": "Paris",
        "latitude": 48.85341,
        "longitude": 2.3488,
        "elevation": 42.0,
        "feature_code": "PPLC",
        "country_code": "FR",
        "timezone": "Europe/Paris",
        "population": 2138551,
        "country_id": 3017382,
        "country": "France",
        "admin1": "Île-de-France",
    },
    "Reykjavik": {
        "id": 3413829,
        "name": "Reykjavík",
        "latitude": 64.13548,
        "longitude": -21.89541,
        "country_code": "IS",
        "timezone": "Atlantic/Reykjavik",
        "country": "Iceland",
    },
}
CURRENT: dict[tuple[float, float], dict[str, Any]] = {
    (48.85341, 2.3488): {"temperature_2m": 18.0, "weather_code": 0, "wind_speed_10m": 12.0},
    (64.13548, -21.89541): {"temperature_2m": -2.4, "weather_code": 73, "wind_speed_10m": 31.7},
}


def geocoding_body(name: str) -> dict[str, Any]:
    place = PLACES.get(name)
    if place is None:
        return {"generationtime_ms": 0.41}  # Open-Meteo leaves "results" out when nothing matches
    return {"results": [place], "generationtime_ms": 0.92}


def forecast_body(latitude: float, longitude: float) -> dict[str, Any]:
    return {
        "latitude": latitude,
        "longitude": longitude,
        "generationtime_ms": 0.03,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "timezone_abbreviation": "GMT",
        "elevation": 43.0,
        "current_units": {
            "time": "iso8601",
            "interval": "seconds",
            "temperature_2m": "°C",
            "weather_code": "wmo code",
            "wind_speed_10m": "km/h",
        },
        "current": {"time": "2026-11-27T14:00", "interval": 900, **CURRENT[latitude, longitude]},
    }


@dataclass
class FakeOpenMeteo:
    """Both Open-Meteo APIs; ``status``/``stall``/``body`` inject the outages under test."""

    status: int = 200
    stall: bool = False
    body: bytes | None = None
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        query = {key: values[0] for key, values in parse_qs(request.query).items()}
        self.requests.append((request.path, query))
        if self.stall:
            await anyio.sleep(60)
        if self.status != 200:
            return Response.json(self.status, {"error": True, "reason": "injected"})
        if self.body is not None:
            return Response(200, [("content-type", "application/json")], self.body)
        if request.path == "/v1/search":
            return Response.json(200, geocoding_body(query["name"]))
        if request.path == "/v1/forecast":
            latitude, longitude = float(query["latitude"]), float(query["longitude"])
            return Response.json(200, forecast_body(latitude, longitude))
        return Response.json(404, {"error": True, "reason": "not found"})


@dataclass
class Service:
    geocoding: FakeOpenMeteo
    forecast: FakeOpenMeteo
    client: WeatherClient


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    # Two servers, as in production: the bases are configured independently.
    geocoding, forecast = FakeOpenMeteo(), FakeOpenMeteo()
    async with HTTPServer(geocoding.handle) as geo_server, HTTPServer(forecast.handle) as fc_server:
        client = WeatherClient(
            f"http://127.0.0.1:{geo_server.port}",
            f"http://127.0.0.1:{fc_server.port}/",
            timeout=2.0,
        )
        yield Service(geocoding, forecast, client)


async def test_current_weather_for_a_city(service: Service) -> None:
    assert await service.client.current("Paris") == {
        "city": "Paris",
        "country": "France",
        "temperature_c": 18.0,
        "conditions": "clear sky",
        "wind_kmh": 12.0,
    }


async def test_the_requests_are_open_meteos(service: Service) -> None:
    await service.client.current("  Paris ")
    assert service.geocoding.requests == [
        ("/v1/search", {"name": "Paris", "count": "1", "language": "en", "format": "json"})
    ]
    assert service.forecast.requests == [
        (
            "/v1/forecast",
            {
                "latitude": "48.85341",
                "longitude": "2.3488",
                "current": "temperature_2m,weather_code,wind_speed_10m",
            },
        )
    ]


async def test_a_country_after_a_comma_is_left_out_of_the_search(service: Service) -> None:
    report = await service.client.current("Reykjavik, Iceland")
    assert report["city"] == "Reykjavík"
    assert (report["temperature_c"], report["conditions"]) == (-2.4, "snow")


async def test_an_unknown_city(service: Service) -> None:
    with pytest.raises(WeatherError, match=r"I couldn't find a place called Atlantis\."):
        await service.client.current("Atlantis")
    assert service.forecast.requests == []


async def test_an_empty_city_asks_which(service: Service) -> None:
    with pytest.raises(WeatherError, match="Which city"):
        await service.client.current("  ")


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_said_plainly(service: Service, status: int) -> None:
    service.forecast.status = status
    with pytest.raises(WeatherError, match=r"The weather service is having trouble right now\."):
        await service.client.current("Paris")


async def test_a_refusal_is_said_plainly(service: Service) -> None:
    service.geocoding.status = 400
    with pytest.raises(WeatherError, match="turned the request down"):
        await service.client.current("Paris")


@pytest.mark.parametrize(
    "body", [b"<html>maintenance</html>", b"[1, 2]", b'{"current": {"temperature_2m": null}}']
)
async def test_an_unreadable_answer(service: Service, body: bytes) -> None:
    service.forecast.body = body
    with pytest.raises(WeatherError, match="an answer I couldn't read"):
        await service.client.current("Paris")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more: connecting is refused


async def test_offline_is_said_plainly() -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    with anyio.fail_after(10):
        with pytest.raises(WeatherError, match=r"I couldn't reach the weather service\."):
            await WeatherClient(base, base, timeout=2.0).current("Paris")


async def test_a_stalled_service_times_out_instead_of_hanging(service: Service) -> None:
    service.forecast.stall = True
    client = WeatherClient(service.client.geocoding_base, service.client.forecast_base, 0.2)
    with anyio.fail_after(10):  # a bound on the test, not a timing assertion
        with pytest.raises(WeatherError, match="in time"):
            await client.current("Paris")


@pytest.mark.parametrize(
    ("code", "words"),
    [(0, "clear sky"), (2, "partly cloudy"), (45, "fog"), (63, "rain"), (95, "thunderstorm")],
)
def test_wmo_codes_in_words(code: int, words: str) -> None:
    assert weather.conditions(code) == words


def test_an_unknown_code_is_still_words() -> None:
    assert weather.conditions(42) == "unknown conditions"


def test_bases_come_from_the_environment_or_default_to_open_meteo() -> None:
    assert WeatherClient.from_env({}) == WeatherClient(
        "https://geocoding-api.open-meteo.com", "https://api.open-meteo.com"
    )
    env = {"OPEN_METEO_GEOCODING_URL": "http://geo", "OPEN_METEO_FORECAST_URL": "http://fc"}
    assert WeatherClient.from_env(env) == WeatherClient("http://geo", "http://fc")


def test_the_tool_has_a_filler_is_interruptible_and_outlasts_the_client_timeout() -> None:
    assert get_weather.filler == "Let me check the weather for you."
    assert get_weather.interruptible  # read-only: a barge-in may cancel it
    assert get_weather.timeout > weather.DEFAULT_TIMEOUT
    definition = get_weather.definition()["function"]
    assert definition["description"] == "Current weather for a city."
    assert definition["parameters"]["required"] == ["city"]


def point_env_at(monkeypatch: pytest.MonkeyPatch, client: WeatherClient) -> None:
    monkeypatch.setenv("OPEN_METEO_GEOCODING_URL", client.geocoding_base)
    monkeypatch.setenv("OPEN_METEO_FORECAST_URL", client.forecast_base)


async def run_tool(city: str) -> ToolCall:
    call = ToolCall("call_1", "get_weather", json.dumps({"city": city}))
    await ToolExecutor(ToolRegistry([get_weather])).run(call)
    return call


def content(call: ToolCall) -> Mapping[str, Any]:
    assert call.content is not None
    loaded: Mapping[str, Any] = json.loads(call.content)
    return loaded


async def test_through_the_executor(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    point_env_at(monkeypatch, service.client)
    call = await run_tool("Paris")
    assert call.state is ToolCallState.DONE
    assert content(call)["conditions"] == "clear sky"


async def test_an_unknown_city_through_the_executor(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_env_at(monkeypatch, service.client)
    call = await run_tool("Atlantis")
    assert call.state is ToolCallState.FAILED
    assert content(call) == {"error": "WeatherError: I couldn't find a place called Atlantis."}


async def test_offline_through_the_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    point_env_at(monkeypatch, WeatherClient(base, base))
    call = await run_tool("Paris")
    assert call.state is ToolCallState.FAILED
    assert content(call) == {"error": "WeatherError: I couldn't reach the weather service."}
