"""The one Retry-After parser: delta-seconds and HTTP dates, capped; garbage is no wait."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentkit.odygy.ratelimit import MAX_RETRY_AFTER, parse_retry_after

NOW = datetime(2026, 4, 23, 10, 0, 0, tzinfo=UTC)


def test_delta_seconds() -> None:
    """A number of seconds is that many seconds."""
    assert parse_retry_after("120") == 120.0


def test_fraction_of_a_second() -> None:
    """A fraction some servers send ("0.5") is read as it is."""
    assert parse_retry_after(" 0.5 ") == 0.5


def test_http_date() -> None:
    """An HTTP date is the seconds from now until then."""
    assert parse_retry_after("Thu, 23 Apr 2026 10:01:30 GMT", now=NOW) == 90.0


def test_past_date_is_no_wait() -> None:
    """A date already past (a server's clock behind ours) means retry now."""
    assert parse_retry_after("Thu, 23 Apr 2026 09:59:00 GMT", now=NOW) == 0.0


def test_absent_is_none() -> None:
    """No header gives None, so the caller uses its own back-off."""
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("value", ["-5", "", "soon", "nan", "inf", "1e3", "12s",
                                   "Thu, 99 Apr 2026 10:00:00 GMT"])
def test_unreadable_is_none(value: str) -> None:
    """A negative number, a float spelling or anything else unreadable gives None."""
    assert parse_retry_after(value) is None


def test_long_wait_is_capped() -> None:
    """A wait longer than the cap is the cap, in either form."""
    assert parse_retry_after("86400", cap=60.0) == 60.0
    assert parse_retry_after("Fri, 24 Apr 2026 10:00:00 GMT", cap=60.0, now=NOW) == 60.0


def test_default_cap() -> None:
    """Without a cap of its own, no wait exceeds MAX_RETRY_AFTER."""
    assert parse_retry_after("99999999") == MAX_RETRY_AFTER
