"""``ManualClock``: a clock a test moves by hand, for what agentkit decides by the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """Stands still at ``start`` (default: now) until the test moves it.

    Pass it as ``BotHarness(..., clock=clock)``: handlers, callbacks, joins,
    schedules and the dial caps then take its time for now.
    """

    def __init__(self, start: datetime | None = None) -> None:
        moment = start or datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime, e.g. datetime.now(UTC)")
        self._now = moment.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move on by ``by``; returns the new now."""
        self._now += by
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (aware), forward or back."""
        if moment.tzinfo is None:
            raise ValueError("ManualClock.set needs an aware datetime")
        self._now = moment.astimezone(UTC)
