"""Schedules: ``@bot.on_schedule(hours)`` handlers run when their hours open and close.

At each change the scheduler stores one of agentkit's own events, with an id
made of the bot, the handler and the instant of the change. Every worker
process computes the same id, so the store keeps one event and the handler
runs once, however many processes run the scheduler. At start-up it stores
the event of the last change too: a restart never misses one, never repeats one.
A daily schedule (``on_schedule(at="18:00")``) is hours from midnight to that
time, every day, in the business's time zone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from agentkit.actions.hours import BusinessHours
from agentkit.bot import Bot, Listener
from agentkit.events import SCHEDULE_ID_PREFIX, internal_body
from agentkit.logs import get_logger
from agentkit.store.base import NewEvent, Store, StoreError

log = get_logger("agentkit.runtime")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def schedule_event(bot: Bot, listener: Listener, at: datetime, state: str) -> NewEvent:
    """The event of one change of one schedule."""
    event_id = f"{SCHEDULE_ID_PREFIX}{bot.name}_{listener.name}_{int(at.timestamp())}"
    data = {"bot": bot.name, "handler": listener.name, "state": state,
            "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return NewEvent(id=event_id, type="agentkit.schedule", created_at=datetime.now(UTC),
                    call_id=None, body=internal_body(event_id, "agentkit.schedule", data),
                    routable=True)


def daily_hours(at: str, time_zone: str) -> BusinessHours:
    """Hours that close every day at ``at`` (HH:MM) in ``time_zone``."""
    return BusinessHours.parse(f"Mon-Sun 00:00-{at} {time_zone}")


class Scheduler:
    """Stores schedule events at each change of every bot's schedule."""

    def __init__(
        self,
        store: Store,
        bots: Sequence[Bot],
        *,
        default_hours: BusinessHours,
        on_stored: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        time_zone: str = "UTC",
    ) -> None:
        """``time_zone``: the business's, for daily schedules."""
        self._store = store
        self._schedules = [
            (bot, listener, daily_hours(listener.daily_at, time_zone) if listener.daily_at
             else listener.schedule or bot.business_hours or default_hours)
            for bot in bots for listener in bot.schedules
        ]
        self._on_stored = on_stored
        self._clock = clock
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._schedules:
            self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        await self._store_changes(initial=True)
        while not self._stop.is_set():
            now = self._clock()
            upcoming = [
                change for _, _, hours in self._schedules
                if (change := hours.next_change(now)) is not None
            ]
            wait = min((c - now).total_seconds() for c in upcoming) if upcoming else 3600.0
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, min(wait, 3600.0)))
            except TimeoutError:
                await self._store_changes(initial=False)

    async def _store_changes(self, *, initial: bool) -> None:
        now = self._clock()
        events = []
        for bot, listener, hours in self._schedules:
            last = hours.last_change(now)
            if last is None and not initial:
                continue
            state = "open" if hours.is_open(now) else "closed"
            events.append(schedule_event(bot, listener, last or EPOCH, state))
        if not events:
            return
        try:
            fresh = await self._store.add_events(events)
        except StoreError as exc:
            log.error("schedule.not_stored", error=str(exc))
            return
        for event, new in zip(events, fresh, strict=True):
            if new:
                log.info("schedule.changed", event_id=event.id)
        if any(fresh) and self._on_stored is not None:
            self._on_stored()
