"""Routing: which bots get an event, and running a bot's handlers for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from agentkit.bot import Bot
from agentkit.context import Context
from agentkit.events import Event, is_routable
from agentkit.store.base import Job, JobSpec

log = structlog.get_logger("agentkit.runtime")

ContextFactory = Callable[[Event, Bot, Job], Context[Any]]


class UnknownJobError(Exception):
    """A job names a bot or task this process does not have."""


class Dispatcher:
    """Turns route jobs into one job per interested bot, and runs bot jobs."""

    def __init__(self, bots: Sequence[Bot], make_context: ContextFactory) -> None:
        self.bots = {bot.name: bot for bot in bots}
        self._make_context = make_context

    def follow_ups(self, event: Event) -> list[JobSpec]:
        """One bot job per bot with a handler for this event."""
        if not is_routable(event):
            return []
        return [
            JobSpec("bot", event.id, bot=bot.name)
            for bot in self.bots.values()
            if bot.listeners_for(event)
        ]

    async def run(self, job: Job, event: Event) -> list[JobSpec]:
        """Do a job's work; return the jobs it leads to. Raises if the work failed."""
        if job.kind == "route":
            follow_ups = self.follow_ups(event)
            log.debug("event.routed", bots=[spec.bot for spec in follow_ups])
            return follow_ups
        if job.kind == "bot":
            bot = self.bots.get(job.bot or "")
            if bot is None:
                raise UnknownJobError(
                    f"no bot named {job.bot!r} is loaded in this process: deploy it, or the "
                    "job is dead-lettered after its attempts"
                )
            context = self._make_context(event, bot, job)
            for listener in bot.listeners_for(event):
                await listener.handler(context)
            return []
        raise UnknownJobError(f"no handler for {job.kind} job {job.name!r}")
