"""Campaign time: durations ("90m", "24h", "7d"), quiet hours ("21:00-08:00") and time zones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([0-9]{1,9})\s*([smhdw])", re.ASCII)
LONGEST = 366 * 86400
"""A campaign's durations (reminders, expiry) are at most a year: a longer one is a typo, not a plan."""
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
OFF = ("none", "off", "no")


class TimingError(ValueError):
    """A duration, quiet-hours range or time zone that cannot be used; the message says what is expected."""


def parse_duration(text: str) -> int:
    """Seconds in '90m', '24h', '7d', '1d12h' (units s, m, h, d, w)."""
    compact = (text or "").strip().lower().replace(" ", "")
    if not compact or _DURATION.sub("", compact) or not _DURATION.search(compact):
        raise TimingError(f"{text!r} is not a duration: write a number and a unit, like 90m, 24h or 7d")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(compact))
    if seconds <= 0:
        raise TimingError(f"{text!r} is not a duration longer than zero")
    if seconds > LONGEST:
        raise TimingError(f"{text!r} is longer than a year (366d), the most a campaign's durations may be")
    return seconds


def format_duration(seconds: int | None) -> str:
    """The shortest exact form: 86400 -> '1d', 5400 -> '90m'."""
    if not seconds:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time range without messages; it may span midnight (21:00-08:00)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str | None) -> QuietHours | None:
        """'21:00-08:00' -> QuietHours; 'none' or '' -> None."""
        value = (text or "").strip().lower()
        if not value or value in OFF:
            return None
        parts = [p.strip() for p in value.split("-")]
        clocks = [_CLOCK.match(p) for p in parts]
        if len(parts) != 2 or not all(clocks):
            raise TimingError(f"{text!r} is not a quiet-hours range: write HH:MM-HH:MM, like 21:00-08:00, or none")
        start, end = (time(int(m.group(1)), int(m.group(2))) for m in clocks if m)
        if start == end:
            raise TimingError(f"{text!r} starts and ends at the same time; use none for no quiet hours")
        return cls(start, end)

    @classmethod
    def of(cls, start: str | None, end: str | None) -> QuietHours | None:
        return cls.parse(f"{start}-{end}") if start and end else None

    def contains(self, moment: datetime, timezone: str) -> bool:
        """Whether `moment` is in the quiet hours where the respondent lives."""
        local = moment.astimezone(zone(timezone)).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimingError(f"{name!r} is not a time zone; use a name like America/Mexico_City") from None


def check_zone(name: str) -> str:
    """The name, if it is a known IANA time zone."""
    zone((name or "").strip())
    return name.strip()


def aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive UTC datetimes; PostgreSQL aware ones."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
