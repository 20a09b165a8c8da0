"""Business hours: parsing specs, open or closed at a moment, the next opening."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentkit.actions.hours import BusinessHours
from agentkit.errors import ConfigError

BUCHAREST = ZoneInfo("Europe/Bucharest")
LONDON = ZoneInfo("Europe/London")
OFFICE = BusinessHours.parse("Mon-Fri 09:00-17:30 Europe/Bucharest")


def at(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0,
    second: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("always", "always"),
        ("  ALWAYS ", "always"),
        ("Mon-Fri 09:00-17:30 Europe/Bucharest", "Mon-Fri 09:00-17:30 Europe/Bucharest"),
        (
            "Mon-Fri 09:00-12:30,13:30-17:30 Sat 10:00-14:00 Europe/London",
            "Mon-Fri 09:00-12:30,13:30-17:30 Sat 10:00-14:00 Europe/London",
        ),
        ("Mon,Wed,Fri 08:00-16:00 UTC", "Mon,Wed,Fri 08:00-16:00 UTC"),
        ("mon - fri  9:00-12:30, 13:30-17:30  UTC", "Mon-Fri 09:00-12:30,13:30-17:30 UTC"),
        ("Monday,Friday 08:00-24:00 UTC", "Mon,Fri 08:00-24:00 UTC"),
        ("Sun-Thu 08:00-16:00 Asia/Dubai", "Sun-Thu 08:00-16:00 Asia/Dubai"),
    ],
)
def test_good_specs_parse_and_print_back(spec: str, canonical: str) -> None:
    """A valid spec parses, prints in canonical form, and that form parses to the same hours."""
    hours = BusinessHours.parse(spec)
    assert str(hours) == canonical
    assert BusinessHours.parse(str(hours)) == hours


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("", "it is empty"),
        ("Mon-Fri 09:00-17:30", "does not end with a time zone"),
        ("Mon-Fri 09:00-17:30 Europe/Bucharets", "did you mean 'Europe/Bucharest'"),
        ("Mon-Fri 9-17 UTC", "'9-17' is not a time range"),
        ("Mon Tue 09:00-17:00 UTC", "join days with commas"),
        ("Mon-Fri 22:00-06:00 UTC", "cannot cross midnight"),
        ("Mon-Fri 09:00-09:00 UTC", "ends before it starts"),
        ("Mon-Fri 09:00-24:30 UTC", "does not exist"),
        ("Mon-Fri 24:00-24:00 UTC", "does not exist"),
        ("Mon-Fri 09:60-17:00 UTC", "does not exist"),
        ("Funday 09:00-17:00 UTC", "'Funday' is not a day"),
        ("Mon-Fri-Sat 09:00-17:00 UTC", "is not a day"),
        ("Mon-Fri UTC", "have no hours after them"),
        ("UTC", "no days and hours"),
        ("always UTC", "'always' is not a day"),
    ],
)
def test_bad_specs_name_the_problem_and_show_an_example(spec: str, complaint: str) -> None:
    """A wrong spec raises ConfigError saying what is wrong and showing a valid spec."""
    with pytest.raises(ConfigError) as caught:
        BusinessHours.parse(spec)
    assert complaint in str(caught.value)
    assert "Mon-Fri 09:00-17:30 Europe/Bucharest" in str(caught.value)


def test_start_is_open_and_end_is_closed() -> None:
    """A range includes its start and excludes its end, to the second."""
    assert OFFICE.is_open(at(BUCHAREST, 2026, 4, 22, 9, 0))
    assert not OFFICE.is_open(at(BUCHAREST, 2026, 4, 22, 8, 59, 59))
    assert OFFICE.is_open(at(BUCHAREST, 2026, 4, 22, 17, 29, 59))
    assert not OFFICE.is_open(at(BUCHAREST, 2026, 4, 22, 17, 30))


def test_open_is_judged_in_the_hours_time_zone() -> None:
    """A UTC moment is converted to the hours' zone before comparing."""
    assert OFFICE.is_open(datetime(2026, 4, 22, 6, 0, tzinfo=UTC))  # 09:00 in Bucharest
    assert not OFFICE.is_open(datetime(2026, 4, 22, 5, 59, tzinfo=UTC))


def test_lunch_break_is_closed() -> None:
    """The gap between two ranges of one day is closed."""
    hours = BusinessHours.parse("Mon-Fri 09:00-12:30,13:30-17:30 Sat 10:00-14:00 Europe/London")
    assert not hours.is_open(at(LONDON, 2026, 4, 22, 13, 0))
    assert hours.is_open(at(LONDON, 2026, 4, 25, 10, 0))  # a Saturday


def test_end_at_midnight_keeps_the_last_minute_open() -> None:
    """24:00 as an end keeps the day open until midnight."""
    hours = BusinessHours.parse("Mon 20:00-24:00 UTC")
    assert hours.is_open(datetime(2026, 4, 20, 23, 59, 59, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 4, 21, 0, 0, tzinfo=UTC))


def test_naive_moment_is_refused() -> None:
    """A datetime without a time zone is a programming error, not a guess."""
    with pytest.raises(ValueError, match="aware datetime"):
        OFFICE.is_open(datetime(2026, 4, 22, 10, 0))


def test_next_opening_of_an_open_moment_is_the_moment() -> None:
    """While open, the next opening is now, given in UTC."""
    moment = at(BUCHAREST, 2026, 4, 22, 10, 15)
    assert OFFICE.next_opening(moment) == moment
    assert OFFICE.next_opening(moment).tzinfo is UTC


def test_next_opening_after_closing_is_next_morning() -> None:
    """After closing on a weekday, the next opening is 09:00 the following day."""
    opening = OFFICE.next_opening(at(BUCHAREST, 2026, 4, 22, 17, 30))
    assert opening == at(BUCHAREST, 2026, 4, 23, 9, 0)


def test_next_opening_jumps_the_weekend() -> None:
    """From Friday evening the next opening is Monday morning."""
    opening = OFFICE.next_opening(at(BUCHAREST, 2026, 4, 24, 18, 0))
    assert opening == at(BUCHAREST, 2026, 4, 27, 9, 0)


def test_next_opening_before_dawn_is_the_same_day() -> None:
    """Early on a weekday, the next opening is that day's start."""
    assert OFFICE.next_opening(at(BUCHAREST, 2026, 4, 22, 3, 0)) == at(BUCHAREST, 2026, 4, 22, 9)


def test_next_opening_over_spring_forward() -> None:
    """Over the weekend clocks go forward, Monday 09:00 is 06:00 UTC, not 07:00."""
    opening = OFFICE.next_opening(at(BUCHAREST, 2026, 3, 27, 18, 0))
    assert opening == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def test_next_opening_over_fall_back() -> None:
    """Over the weekend clocks go back, Monday 09:00 is 07:00 UTC, not 06:00."""
    opening = OFFICE.next_opening(at(BUCHAREST, 2026, 10, 23, 18, 0))
    assert opening == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def test_opening_inside_the_skipped_hour_is_when_clocks_jump() -> None:
    """A range starting at 03:30 on the night 03:00 becomes 04:00 opens at the jump."""
    hours = BusinessHours.parse("Sun 03:30-05:00 Europe/Bucharest")
    opening = hours.next_opening(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert opening == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 04:00 EEST


def test_repeated_hour_opens_again_when_clocks_go_back() -> None:
    """When 03:00-04:00 happens twice, a range covering 03:00 reopens as the clock falls back."""
    hours = BusinessHours.parse("Sun 02:30-03:15 Europe/Bucharest")
    first_0330 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert not hours.is_open(first_0330)
    assert hours.next_opening(first_0330) == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def test_always_is_always_open() -> None:
    """'always' is open at any moment, and the next opening is the moment itself."""
    hours = BusinessHours.parse("always")
    moment = at(BUCHAREST, 2026, 4, 26, 3, 0)
    assert hours.always
    assert hours.is_open(moment)
    assert hours.next_opening(moment) == moment


def test_day_named_twice_gets_both_ranges() -> None:
    """A day named in two rules is open in the ranges of both."""
    hours = BusinessHours.parse("Mon-Fri 09:00-12:00 Mon 18:00-20:00 UTC")
    assert hours.is_open(datetime(2026, 4, 20, 19, 0, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 4, 21, 19, 0, tzinfo=UTC))
