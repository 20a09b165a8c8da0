"""The daily purge: one process of a deployment deletes, each day, what is older than its days.

Every process runs the loop. Each interval it claims the day (``retention:YYYY-MM-DD``,
in UTC) in the store; the one process that wins the claim purges
(``Store.purge_older_than``), the others carry on. A day whose purge failed is not
tried again: the next day's purge takes everything older than its cutoff, that
day's rows included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Protocol

from agentkit.errors import ConfigError
from agentkit.logs import get_logger

log = get_logger("agentkit.runtime")


class RetentionStore(Protocol):
    """The two store methods the daily purge needs."""

    async def claim_once(self, name: str) -> bool: ...

    async def purge_older_than(self, cutoff: datetime) -> dict[str, int]: ...


def _now() -> datetime:
    return datetime.now(UTC)


class RetentionJob:
    """Purges what is older than ``days``, once a day across every process sharing the store."""

    def __init__(
        self,
        store: RetentionStore,
        days: int,
        *,
        clock: Callable[[], datetime] = _now,
        interval_seconds: float = 3600.0,
    ) -> None:
        if days < 1:
            raise ConfigError(
                f"AGENTKIT_RETENTION_DAYS must be a whole number of days, 1 or more, not {days}"
            )
        self._store = store
        self.days = days
        self._clock = clock
        self._interval = interval_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop in the running event loop: it tries the day now, then each interval."""
        if self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        """Stop the loop; a purge under way stops after its current batch's transaction.

        Each batch commits on its own, so a stopped purge leaves the rest for the
        next day's.
        """
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> dict[str, int] | None:
        """Claim today and purge if this process won; None if the day was claimed before."""
        now = self._clock().astimezone(UTC)
        day = now.date().isoformat()
        bound = log.bind(job="retention", day=day, retention_days=self.days)
        if not await self._store.claim_once(f"retention:{day}"):
            bound.debug("retention.claimed_elsewhere")
            return None
        cutoff = now - timedelta(days=self.days)
        counts = await self._store.purge_older_than(cutoff)
        bound.info("retention.purged", cutoff=cutoff.isoformat(), **counts)
        return counts

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:
                # A store outage or a failing batch must not end the loop: the
                # next day's purge takes what this one left.
                log.error("retention.failed", job="retention",
                          error=f"{type(exc).__name__}: {exc}")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
