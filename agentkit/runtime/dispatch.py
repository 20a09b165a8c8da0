"""Routing: which bots get an event, running a bot's handlers, joins and scheduled tasks.

A route job becomes one bot job per interested bot. A bot job runs the bot's
handlers for the event; a handler with a join runs once per call, when all
the joined events have arrived or its timeout (a scheduled task) has passed.
A join whose handler's own event never came expires without running it.
Tasks are named ``<kind>:<detail>`` and run by the handler registered for
their kind (callbacks register theirs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from agentkit.bot import Bot, Listener
from agentkit.context import Context
from agentkit.events import CallCompleted, Event, is_routable, parse_event
from agentkit.logs import get_logger
from agentkit.odygy.models import Call
from agentkit.store.base import Job, JobSpec, JoinState, Store

log = get_logger("agentkit.runtime")

JOIN_TIMEOUT = "join-timeout"


class ContextFactory(Protocol):
    def __call__(
        self,
        event: Event,
        bot: Bot,
        job: Job,
        *,
        joined: dict[str, Event] | None = None,
        missing: tuple[str, ...] = (),
    ) -> Context[Any]: ...


# Which of a handler's own events a finished call goes on to bring (docs/simulator.md);
# the call's other events always come.
_CALL_BRINGS: dict[str, Callable[[Call], bool]] = {
    "call.answered": lambda call: call.answered_at is not None,
    "voicemail.received": lambda call: call.direction == "inbound" and call.status == "voicemail",
    "recording.ready": lambda call: call.recording,
    "transcript.ready": lambda call: (call.recording or "transcript" in call.ai_features
                                      or call.status == "voicemail"),
}

TaskHandler = Callable[[Job, Event], Awaitable[list[JobSpec]]]
RouteHook = Callable[[Event], list[JobSpec]]


class UnknownJobError(Exception):
    """A job names a bot or task this process does not have."""


class Dispatcher:
    """Turns route jobs into bot jobs, and runs bot jobs and tasks."""

    def __init__(
        self,
        bots: Sequence[Bot],
        make_context: ContextFactory,
        store: Store,
        *,
        tasks: Mapping[str, TaskHandler] | None = None,
        route_hooks: Sequence[RouteHook] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``clock``: when a join's wait starts, for its timeout (a replay's is virtual)."""
        self._clock = clock
        self.bots = {bot.name: bot for bot in bots}
        self._make_context = make_context
        self._store = store
        self._tasks: dict[str, TaskHandler] = {JOIN_TIMEOUT: self._join_timeout, **(tasks or {})}
        self._route_hooks = route_hooks

    def follow_ups(self, event: Event) -> list[JobSpec]:
        """One bot job per bot with a handler for this event, plus the hooks' tasks."""
        if not is_routable(event):
            return []
        target = getattr(getattr(event, "data", None), "bot", None)
        if event.type.startswith("agentkit.") and target is not None:
            # agentkit's own events name the one bot they are for.
            bot = self.bots.get(target)
            if bot is None or not bot.listeners_for(event):
                return []
            return [JobSpec("bot", event.id, bot=target)]
        jobs = [
            JobSpec("bot", event.id, bot=bot.name)
            for bot in self.bots.values()
            if bot.listeners_for(event)
        ]
        for hook in self._route_hooks:
            jobs.extend(hook(event))
        return jobs

    async def run(self, job: Job, event: Event) -> list[JobSpec]:
        """Do a job's work; return the jobs it leads to. Raises if the work failed."""
        if job.kind == "route":
            return self.follow_ups(event)
        if job.kind == "bot":
            return await self._run_bot(job, event)
        kind = job.name.split(":", 1)[0]
        handler = self._tasks.get(kind)
        if handler is None:
            raise UnknownJobError(f"no handler for task {job.name!r} in this process")
        return await handler(job, event)

    def bot(self, name: str | None) -> Bot:
        bot = self.bots.get(name or "")
        if bot is None:
            raise UnknownJobError(
                f"no bot named {name!r} is loaded in this process: deploy it, or the job is "
                "dead-lettered after its attempts"
            )
        return bot

    async def _run_bot(self, job: Job, event: Event) -> list[JobSpec]:
        bot = self.bot(job.bot)
        follow_ups: list[JobSpec] = []
        for listener in bot.listeners_for(event):
            if not listener.join or event.call_id is None:
                await listener.handler(self._make_context(event, bot, job))
            else:
                follow_ups.extend(await self._arrive(bot, listener, event, job))
        return follow_ups

    # joins

    async def _arrive(
        self, bot: Bot, listener: Listener, event: Event, job: Job
    ) -> list[JobSpec]:
        key = f"{bot.name}|{listener.name}|{event.call_id}"
        state = await self._store.join_arrive(key, event.type, event.id)
        if set(listener.event_types) <= set(state.events):
            await self._fire(bot, listener, key, state, job)
            return []
        # Without the handler's own event the wait may come to nothing (an answered call
        # brings no voicemail): not yet a step of the handler's.
        waits = log.info if listener.event_type in state.events else log.debug
        waits("join.waiting", handler=listener.name, have=sorted(state.events))
        timeout_at = self._clock() + listener.join_timeout
        return [
            JobSpec("task", event.id, bot=bot.name, name=f"{JOIN_TIMEOUT}:{listener.name}",
                    payload={"key": key}, run_at=timeout_at)
        ]

    async def _join_timeout(self, job: Job, event: Event) -> list[JobSpec]:
        bot = self.bot(job.bot)
        listener = bot.listener(job.name.split(":", 1)[1])
        if listener is None:
            raise UnknownJobError(f"bot {bot.name!r} has no handler for {job.name!r}")
        state = await self._store.join_state(str(job.payload["key"]))
        if state is None or state.fired:
            return []
        if listener.event_type not in state.events:
            if await self._call_brings(listener, event.call_id):
                log.warning("join.expired", handler=listener.name, have=sorted(state.events),
                            reason=f"{listener.event_type} never arrived")
            else:
                log.debug("join.expired", handler=listener.name, have=sorted(state.events),
                          reason=f"the call brought this handler no {listener.event_type}")
            return []
        await self._fire(bot, listener, state.key, state, job)
        return []

    async def _call_brings(self, listener: Listener, call_id: str | None) -> bool:
        """Whether the call should have brought the handler its own event.

        Its ``call.completed`` tells: a voicemail follows only an inbound call that ended
        in voicemail, a recording only a recorded call; a call the handler's filters
        refuse brings it nothing. Without ``call.completed`` there is no telling: yes.
        """
        completed_id = await self._store.call_completed_event(call_id) if call_id else None
        stored = await self._store.get_event(completed_id) if completed_id else None
        completed = parse_event(stored.body, internal=True) if stored is not None else None
        if not isinstance(completed, CallCompleted):
            return True
        if listener.event_type == completed.type:
            return listener.wants(completed)
        # Status is left out: it is the status of the handler's own event, not the call's.
        if not replace(listener.filters, status=frozenset()).accepts(completed):
            return False
        brings = _CALL_BRINGS.get(listener.event_type)
        return brings is None or brings(completed.data)

    async def _fire(
        self, bot: Bot, listener: Listener, key: str, state: JoinState, job: Job
    ) -> None:
        if not await self._store.join_fire(key, f"job:{job.id}"):
            return
        joined: dict[str, Event] = {}
        for event_type, event_id in state.events.items():
            stored = await self._store.get_event(event_id)
            if stored is not None:
                joined[event_type] = parse_event(stored.body, internal=True)
        missing = tuple(t for t in listener.event_types if t not in joined)
        primary = joined[listener.event_type]
        log.info("join.complete" if not missing else "join.timed_out",
                 handler=listener.name, missing=list(missing))
        await listener.handler(
            self._make_context(primary, bot, job, joined=joined, missing=missing)
        )
