"""voiceagent.tools.clock: current_time in a zone, spoken forms, unknown zones, no tzdata."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from voiceagent.toolkit import ToolCall, ToolCallState, ToolExecutor, ToolRegistry
from voiceagent.tools import clock, current_time

FIXED = datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)  # a Friday


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_now", lambda: FIXED)


def test_the_time_in_a_zone_has_time_date_weekday_and_a_spoken_form(fixed_clock: None) -> None:
    assert current_time("Europe/Paris") == {
        "timezone": "Europe/Paris",
        "time": "14:05",
        "date": "2026-11-27",
        "weekday": "Friday",
        "utc_offset": "+01:00",
        "spoken": "five past two in the afternoon",
    }


def test_the_date_follows_the_zone(fixed_clock: None) -> None:
    report = current_time("Pacific/Kiritimati")  # UTC+14: already the next day
    assert (report["date"], report["weekday"], report["time"]) == (
        "2026-11-28",
        "Saturday",
        "03:05",
    )


@pytest.mark.parametrize(
    ("said", "key"),
    [
        ("europe/paris", "Europe/Paris"),
        ("Paris", "Europe/Paris"),
        ("new york", "America/New_York"),
        ("São Paulo", "America/Sao_Paulo"),
        ("Tokyo", "Asia/Tokyo"),
        ("PST", "America/Los_Angeles"),
        ("Mumbai", "Asia/Kolkata"),
        ("utc", "UTC"),
        ("  Asia/Kolkata ", "Asia/Kolkata"),
    ],
)
def test_zone_names_cities_and_common_aliases_resolve(said: str, key: str) -> None:
    assert clock.resolve_zone(said) == key


def test_an_unknown_zone_is_an_error_the_model_can_say() -> None:
    with pytest.raises(ValueError, match="I don't know a time zone called 'Atlantis'"):
        current_time("Atlantis")


def test_without_a_zone_it_is_the_local_time(fixed_clock: None) -> None:
    report = current_time()
    local = FIXED.astimezone()
    assert report["time"] == local.strftime("%H:%M")
    assert report["timezone"]


def test_without_zone_data_it_falls_back_to_utc_with_a_note(
    fixed_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "known_zones", frozenset)
    report = current_time("Europe/Paris")
    assert (report["timezone"], report["time"]) == ("UTC", "13:05")
    assert "not installed" in report["note"] and "Europe/Paris" in report["note"]


@pytest.mark.parametrize(
    ("hour", "minute", "spoken"),
    [
        (14, 5, "five past two in the afternoon"),
        (0, 0, "midnight"),
        (12, 0, "noon"),
        (9, 0, "nine o'clock in the morning"),
        (19, 15, "quarter past seven in the evening"),
        (17, 30, "half past five in the afternoon"),
        (8, 45, "quarter to nine in the morning"),
        (23, 45, "quarter to midnight"),
        (11, 50, "ten to noon"),
        (9, 1, "one minute past nine in the morning"),
        (6, 37, "twenty-three minutes to seven in the morning"),
        (0, 20, "twenty past twelve at night"),
        (12, 10, "ten past twelve in the afternoon"),
    ],
)
def test_spoken_time(hour: int, minute: int, spoken: str) -> None:
    assert clock.spoken_time(hour, minute) == spoken


def test_describe_takes_any_aware_datetime() -> None:
    moment = datetime(2026, 3, 1, 7, 59, tzinfo=ZoneInfo("Asia/Kolkata"))
    report = clock.describe(moment, "Asia/Kolkata")
    assert report["utc_offset"] == "+05:30"
    assert report["spoken"] == "one minute to eight in the morning"


def test_the_schema_is_one_sentence_and_an_optional_zone() -> None:
    definition = current_time.definition()["function"]
    assert definition["description"] == (
        "The current date and time, optionally in a given IANA time zone."
    )
    assert "timezone" in definition["parameters"]["properties"]
    assert "required" not in definition["parameters"]


async def test_through_the_executor(fixed_clock: None) -> None:
    executor = ToolExecutor(ToolRegistry([current_time]))
    call = ToolCall("call_1", "current_time", '{"timezone": "Europe/Paris"}')
    await executor.run(call)
    assert call.state is ToolCallState.DONE
    assert call.content is not None
    assert json.loads(call.content)["spoken"] == "five past two in the afternoon"


async def test_an_unknown_zone_through_the_executor_is_an_error_message() -> None:
    executor = ToolExecutor(ToolRegistry([current_time]))
    call = ToolCall("call_1", "current_time", '{"timezone": "Narnia/Cair_Paravel"}')
    await executor.run(call)
    assert call.state is ToolCallState.FAILED
    assert call.content is not None
    assert (
        "I don't know a time zone called 'Narnia/Cair_Paravel'" in json.loads(call.content)["error"]
    )
