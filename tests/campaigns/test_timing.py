"""Durations, quiet hours and time zones as staff write them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.campaigns.timing import QuietHours, TimingError, check_zone, format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90m", 5400), ("24h", 86400), ("7d", 604800), ("1d12h", 129600), ("30s", 30), ("2w", 1209600), (" 36H ", 129600),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "1.5h", "-3d", "0h", "3 days", "1d-2h"])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(TimingError, match="duration"):
        parse_duration(text)


def test_durations_print_in_the_largest_exact_unit():
    assert [format_duration(s) for s in (604800, 86400, 5400, 3600, 45)] == ["7d", "1d", "90m", "1h", "45s"]


def test_quiet_hours_across_midnight_in_the_respondents_time_zone():
    quiet = QuietHours.parse("21:00-08:00")
    # 03:30 UTC on 3 March: 21:30 in Mexico City (UTC-6), 19:30 in Tijuana (UTC-8, before US daylight time)
    moment = datetime(2026, 3, 3, 3, 30, tzinfo=UTC)
    assert quiet.contains(moment, "America/Mexico_City")
    assert not quiet.contains(moment, "America/Tijuana")
    assert quiet.contains(datetime(2026, 3, 3, 13, 59, tzinfo=UTC), "America/Mexico_City")  # 07:59
    assert not quiet.contains(datetime(2026, 3, 3, 14, 0, tzinfo=UTC), "America/Mexico_City")  # 08:00
    assert not quiet.contains(datetime(2026, 3, 3, 2, 59, tzinfo=UTC), "America/Mexico_City")  # 20:59


def test_quiet_hours_within_a_day_and_none():
    siesta = QuietHours.parse("14:00-16:00")
    assert siesta.contains(datetime(2026, 3, 3, 21, 0, tzinfo=UTC), "America/Mexico_City")  # 15:00
    assert not siesta.contains(datetime(2026, 3, 3, 23, 0, tzinfo=UTC), "America/Mexico_City")  # 17:00
    assert QuietHours.parse("none") is None and QuietHours.parse("") is None
    assert str(QuietHours.parse("9:00-17:30")) == "09:00-17:30"


@pytest.mark.parametrize("text", ["21-08", "25:00-08:00", "21:00", "21:00-21:00", "nine to five"])
def test_bad_quiet_hours(text):
    with pytest.raises(TimingError):
        QuietHours.parse(text)


def test_time_zones():
    assert check_zone("America/Tijuana") == "America/Tijuana"
    with pytest.raises(TimingError, match="America/Mexico_City"):
        check_zone("Mexico/Nowhere")
