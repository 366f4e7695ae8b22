"""The ``current_time`` tool: the date and time in a time zone, with a spoken form."""

from __future__ import annotations

import functools
import os
import unicodedata
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from voiceagent.toolkit import tool

# Names people say that are not IANA zone names (cities that are, like "Paris", need none).
_ALIASES = {
    "utc": "UTC",
    "gmt": "UTC",
    "pacific": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "mountain": "America/Denver",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "central": "America/Chicago",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "dallas": "America/Chicago",
    "houston": "America/Chicago",
    "eastern": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "washington": "America/New_York",
    "boston": "America/New_York",
    "miami": "America/New_York",
    "ist": "Asia/Kolkata",
    "india": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "chennai": "Asia/Kolkata",
    "beijing": "Asia/Shanghai",
    "china": "Asia/Shanghai",
    "japan": "Asia/Tokyo",
    "uk": "Europe/London",
    "bst": "Europe/London",
}
# Where a city name is the last part of several zone names, the first region here wins.
_REGIONS = ("Europe", "America", "Asia", "Africa", "Australia", "Pacific", "Atlantic", "Indian")

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty"}


@tool
def current_time(timezone: str | None = None) -> dict[str, Any]:
    """The current date and time, optionally in a given IANA time zone.

    Args:
        timezone: IANA zone such as "Europe/Paris" or a major city; omit for local time.
    """
    now = _now()
    if timezone is None or not timezone.strip():
        local = now.astimezone()
        return describe(local, _local_zone_name(local))
    if not known_zones():
        # No zone database (no system tzdata and no tzdata package): say so, don't guess.
        report = describe(now, "UTC")
        report["note"] = (
            f"Time zone data is not installed here, so this is UTC, not {timezone.strip()}."
        )
        return report
    key = resolve_zone(timezone)
    return describe(now.astimezone(ZoneInfo(key)), key)


def _now() -> datetime:
    return datetime.now(dt_timezone.utc)  # a seam: tests fix the clock here


def resolve_zone(name: str) -> str:
    """The IANA key for ``name`` (a key in any case, a city, a common alias); else ValueError."""
    wanted = _normalise(name)
    for candidate in (
        _ALIASES.get(wanted.replace("_", " ")),
        _zones_by_lower_key().get(wanted),
        _zones_by_city().get(wanted.rsplit("/", 1)[-1]),
    ):
        if candidate is not None:
            return candidate
    raise ValueError(
        f"I don't know a time zone called {name.strip()!r}: use a zone name like "
        "'Europe/Paris' or 'America/New_York', or a major city."
    )


def describe(moment: datetime, zone: str) -> dict[str, Any]:
    """What the model reads: zone, 24-hour time, ISO date, weekday and a spoken form."""
    offset = moment.strftime("%z")
    return {
        "timezone": zone,
        "time": moment.strftime("%H:%M"),
        "date": moment.date().isoformat(),
        "weekday": moment.strftime("%A"),
        "utc_offset": f"{offset[:3]}:{offset[3:]}" if offset else "+00:00",
        "spoken": spoken_time(moment.hour, moment.minute),
    }


def spoken_time(hour: int, minute: int) -> str:
    """How a person says the time: "five past two in the afternoon", "quarter to midnight"."""
    if minute == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "noon"
    if minute == 0:
        return f"{_hour_word(hour)} o'clock {_period(hour)}"
    if minute <= 30:
        said, target = _minutes_word(minute), hour
        relation = "past"
    else:
        said, target = _minutes_word(60 - minute), (hour + 1) % 24
        relation = "to"
    if target in (0, 12) and relation == "to":
        return f"{said} to {'midnight' if target == 0 else 'noon'}"
    return f"{said} {relation} {_hour_word(target)} {_period(hour)}"


def _minutes_word(minutes: int) -> str:
    if minutes == 15:
        return "quarter"
    if minutes == 30:
        return "half"
    words = _number_word(minutes)
    if minutes % 5 == 0:
        return words
    return f"{words} minute" if minutes == 1 else f"{words} minutes"


def _number_word(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens * 10] + (f"-{_ONES[ones]}" if ones else "")


def _hour_word(hour: int) -> str:
    return _ONES[hour % 12 or 12]


def _period(hour: int) -> str:
    if 5 <= hour < 12:
        return "in the morning"
    if 12 <= hour < 18:
        return "in the afternoon"
    if 18 <= hour < 22:
        return "in the evening"
    return "at night"


def _normalise(name: str) -> str:
    # "São Paulo" -> "sao_paulo": zone names are ASCII with underscores for spaces.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "_".join(ascii_name.strip().lower().split())


@functools.cache
def known_zones() -> frozenset[str]:
    """Every zone key this system knows; empty when there is no zone database at all."""
    zones = frozenset(available_timezones())
    if zones:
        return zones
    try:
        ZoneInfo("UTC")
    except ZoneInfoNotFoundError:
        return frozenset()
    return frozenset({"UTC"})


@functools.cache
def _zones_by_lower_key() -> dict[str, str]:
    return {key.lower(): key for key in known_zones()}


@functools.cache
def _zones_by_city() -> dict[str, str]:
    by_city: dict[str, str] = {}
    for key in sorted(known_zones(), key=_region_rank):
        if "/" in key:
            by_city.setdefault(key.rsplit("/", 1)[1].lower(), key)
    return by_city


def _region_rank(key: str) -> tuple[int, str]:
    region = key.split("/", 1)[0]
    return (_REGIONS.index(region) if region in _REGIONS else len(_REGIONS), key)


def _local_zone_name(local: datetime) -> str:
    """The local zone's IANA name if known (TZ, /etc/localtime), else its abbreviation."""
    configured = os.environ.get("TZ", "").lstrip(":")
    if configured and "/" in configured and not configured.startswith("/"):
        return configured
    target = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in target:
        return target.split("zoneinfo/", 1)[1]
    return local.tzname() or "local time"
