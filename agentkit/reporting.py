"""Reports: what happened on a day, read-only, for a digest bot or an operator's report.

A day is local midnight to the next local midnight in the deployment's time zone,
so it lasts 23 or 25 hours when the clocks change. Bots read figures here and
never reach into the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

from agentkit.errors import ConfigError
from agentkit.store.base import Store

TOP_TOPICS = 3


class CallbackFigures(BaseModel):
    """Calls placed in the day, and the callbacks and escalations that ended in it, by outcome.

    ``refusals``: the refused ones by the reason given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    placed: int
    reached: int
    unreached: int
    refused: int
    expired: int
    cancelled: int
    rejected: int
    merged: int
    failed: int
    refusals: dict[str, int]


class DayReport(BaseModel):
    """One day's figures in one time zone; ``start`` and ``end`` (left out) are in UTC.

    ``topics``: the three topics model answers named most, most named first (ties by
    name). ``approvals_pending`` and ``callbacks_open`` are as they stood when the
    report was made.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: date
    time_zone: str
    start: datetime
    end: datetime
    calls_in: int
    calls_out: int
    missed: int
    voicemails: int
    callbacks: CallbackFigures
    escalations: int
    dead_letters: int
    model_answers: int
    cached_answers: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    topics: list[tuple[str, int]]
    approvals_pending: int
    callbacks_open: int


class Reports:
    """What happened on a day, read-only: the figures a digest or a report shows."""

    def __init__(self, store: Store, *, zone: str | None,
                 clock: Callable[[], datetime]) -> None:
        """``zone``: an IANA time zone name (``Europe/Bucharest``), None for UTC;
        ``clock``: what is taken for now (an aware datetime), for which day is today."""
        self._store = store
        self._zone_name = zone or "UTC"
        self._zone = _zone(zone)
        self._clock = clock

    def _window(self, day: date) -> tuple[datetime, datetime]:
        """The day's start and end (left out) in UTC: its local midnight and the next one."""
        start = datetime.combine(day, time(), tzinfo=self._zone)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=self._zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def _today(self) -> date:
        """Today's date in the time zone, by the clock."""
        return self._clock().astimezone(self._zone).date()

    async def day(self, day: date | None = None) -> DayReport:
        """The figures of ``day`` (default: today, so far)."""
        day = self._today() if day is None else day
        start, end = self._window(day)
        figures = await self._store.day_figures(start, end)
        outcomes = figures.outcomes
        return DayReport(
            day=day, time_zone=self._zone_name, start=start, end=end,
            calls_in=figures.calls_in, calls_out=figures.calls_out, missed=figures.missed,
            voicemails=figures.voicemails,
            callbacks=CallbackFigures(
                placed=figures.calls_placed,
                reached=outcomes.get("reached", 0), unreached=outcomes.get("unreached", 0),
                refused=outcomes.get("refused", 0), expired=outcomes.get("expired", 0),
                cancelled=outcomes.get("cancelled", 0), rejected=outcomes.get("rejected", 0),
                merged=outcomes.get("merged", 0), failed=outcomes.get("failed", 0),
                refusals=dict(figures.refusals),
            ),
            escalations=figures.escalations, dead_letters=figures.dead_letters,
            model_answers=figures.model_answers, cached_answers=figures.cached_answers,
            prompt_tokens=figures.prompt_tokens, completion_tokens=figures.completion_tokens,
            cost_usd=figures.cost_usd,
            topics=sorted(figures.topics.items(), key=lambda t: (-t[1], t[0]))[:TOP_TOPICS],
            approvals_pending=figures.approvals_pending, callbacks_open=figures.callbacks_open,
        )


def _zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"time zone {name!r} is not an IANA time zone name: use one such as "
            "'Europe/Bucharest' or 'UTC'"
        ) from None
