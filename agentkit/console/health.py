"""The deployment's health as the console's panel and /metrics both show it, read from the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agentkit.store.base import Store


@dataclass(frozen=True)
class Health:
    """Queue depth, jobs per minute, dead letters, model spend today, and the call budget used.

    The API budget is the outbound calls agentkit may place in 24 hours
    (``AGENTKIT_DIAL_DAILY_MAX``): what a runaway bot would spend.
    """

    queue_depth: int
    running: int
    jobs_per_minute: int
    dead_letters: int
    model_spend_today_usd: float
    calls_24h: int
    calls_daily_max: int

    @property
    def budget_used(self) -> float:
        """The share of the daily call budget used, 0 to 1 (1 when the budget is 0)."""
        if self.calls_daily_max <= 0:
            return 1.0
        return min(self.calls_24h / self.calls_daily_max, 1.0)


async def read_health(store: Store, *, calls_daily_max: int,
                      now: datetime | None = None) -> Health:
    """The figures, from the store's indexes (cheap enough for every page and scrape)."""
    figures = await store.health(now=now)
    return Health(
        queue_depth=figures.pending, running=figures.running,
        jobs_per_minute=figures.done_last_minute, dead_letters=figures.dead,
        model_spend_today_usd=figures.model_spend_today_usd,
        calls_24h=figures.dial_claims_24h, calls_daily_max=calls_daily_max,
    )
