"""A callback window read from the model's answer: checked against now, ends dropped alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentkit import BusinessHours, CallbackWindow, read_window
from agentkit.actions.callbacks import _retry_at

# Tuesday 2026-03-10, 10:00 in Bucharest (UTC+2).
NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
ZONE = "Europe/Bucharest"
HOURS = BusinessHours.parse("Mon-Fri 09:00-17:00 Europe/Bucharest")


def test_an_offset_window_is_read_as_given() -> None:
    """"tomorrow morning", resolved with the offset: 09:00 to 12:00 local the next day."""
    got = read_window("2026-03-11T09:00:00+02:00", "2026-03-11T12:00:00+02:00", now=NOW,
                      zone=ZONE, asked="tomorrow morning").window
    assert got == CallbackWindow(datetime(2026, 3, 11, 7, 0, tzinfo=UTC),
                                 datetime(2026, 3, 11, 10, 0, tzinfo=UTC), "tomorrow morning")


def test_a_time_without_an_offset_is_read_in_the_business_zone() -> None:
    """15:00 with no offset is 15:00 in Bucharest, 13:00 UTC."""
    got = read_window("2026-03-10T15:00:00", None, now=NOW, zone=ZONE).window
    assert got is not None and got.start == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
    assert got.end is None


def test_a_start_already_past_starts_now() -> None:
    """"before noon", said at 10:00 with a start of 08:00: from now until noon."""
    got = read_window("2026-03-10T08:00:00+02:00", "2026-03-10T12:00:00+02:00", now=NOW,
                      zone=ZONE).window
    assert got is not None and got.start == NOW


def test_a_window_in_the_past_is_ignored() -> None:
    """Yesterday afternoon: no window, and the reason says it is in the past."""
    got = read_window("2026-03-09T13:00:00+02:00", "2026-03-09T17:00:00+02:00", now=NOW,
                      zone=ZONE)
    assert got.window is None and got.problem == "ignored: it is in the past"


def test_a_window_more_than_seven_days_ahead_is_ignored() -> None:
    """Eight days ahead: ignored as too far ahead."""
    got = read_window((NOW + timedelta(days=8)).isoformat(), None, now=NOW, zone=ZONE)
    assert got.window is None and got.problem == "ignored: more than 7 days ahead"


def test_a_window_that_ends_before_it_starts_is_ignored() -> None:
    """End before start: ignored, said so."""
    got = read_window("2026-03-11T12:00:00+02:00", "2026-03-11T09:00:00+02:00", now=NOW,
                      zone=ZONE)
    assert got.window is None and got.problem == "ignored: it ends before it starts"


@pytest.mark.parametrize("junk", ["after 3pm", "2026-13-45T99:00", 1500, ["x"]])
def test_an_end_that_does_not_parse_is_dropped_alone(junk: object) -> None:
    """A start that is no date-time is dropped; the end still makes the window."""
    got = read_window(junk, "2026-03-10T17:00:00+02:00", now=NOW, zone=ZONE)
    assert got.window == CallbackWindow(NOW, datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    assert got.problem is not None and "dropped" in got.problem


def test_no_times_is_no_window_and_no_problem() -> None:
    """The caller named no time: nothing to say."""
    assert read_window(None, None, now=NOW, zone=ZONE) == read_window("", None, now=NOW,
                                                                       zone=None)
    assert read_window(None, None, now=NOW, zone=ZONE).problem is None


def test_a_retry_moves_up_to_stay_inside_the_window() -> None:
    """With 40 minutes of the window left and 2 hours between tries, the retry comes at the
    window's midpoint, not after it."""
    window = CallbackWindow(NOW, NOW + timedelta(minutes=40))
    assert _retry_at(NOW, timedelta(hours=2), HOURS, window) == NOW + timedelta(minutes=20)


def test_a_retry_that_cannot_fit_the_window_keeps_its_time() -> None:
    """Four minutes left: no retry squeezed in under the minimum gap; the usual time stands."""
    window = CallbackWindow(NOW, NOW + timedelta(minutes=4))
    assert _retry_at(NOW, timedelta(minutes=15), HOURS, window) == NOW + timedelta(minutes=15)
