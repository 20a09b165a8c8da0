"""The replay: stored calls, one at a time, through candidate bots in an isolated run.

Calls are read from the live store oldest first, by cursor, and each call's
events in the order they were received. For each call the candidate bots run
as ``agentkit run`` would run them, in a dry run against an isolated
in-memory store: actions are decided, vetted by the dialling policy and
recorded as "would do", never done. The dial gate reads the live store's
do-not-call list and calls placed as they stood at each event's time. A join
waits on a virtual clock that reads each event's time of arrival, so that its
timeout passes where it passed live (after a call's last event: when, and
if, the live timeout ran); nothing waits in real time. A handler that fails is run
again at once, as a worker would after its back-off, up to the job's attempts.

What the candidate would do is then compared with what the live bots did
(``compare_call``), and the call is forgotten: memory stays flat however
many calls there are. The only thing written to the live store is new
entries in the model-answer cache.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agentkit.bot import Bot
from agentkit.errors import AgentkitError
from agentkit.events import Event, parse_event
from agentkit.llm import LlmClient, Usage
from agentkit.logs import get_logger
from agentkit.odygy.client import OdygyClient
from agentkit.replay.compare import compare_call, failing
from agentkit.replay.report import ReplayReport
from agentkit.runtime.dispatch import Dispatcher
from agentkit.runtime.environment import BotEnvironment
from agentkit.runtime.failures import is_transient
from agentkit.runtime.worker import job_usage
from agentkit.settings import Settings
from agentkit.store.base import (
    CallCursor,
    CallRow,
    Job,
    JobRecord,
    JobSpec,
    NewEvent,
    Store,
    StoredEvent,
)
from agentkit.store.sqlite import SqliteStore

log = get_logger("agentkit.replay")

# Every so many calls the isolated store starts afresh, so that it never grows.
CALLS_PER_STORE = 1000
PAGE = 200


@dataclass(frozen=True)
class ReplayScope:
    """Which calls to replay: started in [since, until), or by id; at most ``limit``."""

    since: datetime | None = None
    until: datetime | None = None
    call_ids: tuple[str, ...] = ()
    limit: int | None = None


class Replay:
    """Replays a live store's calls through candidate bots and reports the differences.

    ``against``: the live bots compared with, by name (default: the candidates'
    names); ``same_bot`` maps a candidate's name to the live bot it stands for.
    ``api`` must be a read-only client (``recorded_client``); ``llm`` a client
    whose cache is the live store's, so that unchanged prompts cost nothing.
    """

    def __init__(
        self,
        settings: Settings,
        live: Store,
        bots: Sequence[Bot],
        *,
        api: OdygyClient,
        llm: LlmClient,
        prompts: str | Path = "./prompts",
        against: Sequence[str] | None = None,
        same_bot: Mapping[str, str] | None = None,
        model: str = "",
        fail_on: Sequence[str] = (),
        max_attempts: int = Store.default_max_attempts,
    ) -> None:
        self._settings = settings.model_copy(update={
            "dry_run": True, "shadow": (), "shadow_channel": None,
            "slack_webhook_url": None, "teams_webhook_url": None, "slack_bot_token": None,
            "slack_signing_secret": None, "slack_approval_channel": None,
        })
        self._live = live
        self._bots = list(bots)
        self._api = api
        self._llm = llm
        self._prompts = prompts
        names = [bot.name for bot in self._bots]
        self.against = list(against) if against is not None else names
        self._same_bot = dict(same_bot) if same_bot is not None else \
            standing_for(names, self.against)
        self._model = model
        self._fail_on = list(fail_on)
        self._max_attempts = max_attempts
        self._now = datetime.now(UTC)
        self._isolated: SqliteStore | None = None
        self._dispatcher: Dispatcher | None = None
        self._environment: BotEnvironment | None = None
        self._calls_in_store = 0
        self._job_ids = itertools.count(1)

    async def run(self, scope: ReplayScope = ReplayScope(), *,
                  progress: Callable[[ReplayReport], None] | None = None,
                  every: int = 1000) -> ReplayReport:
        """Replay every call in ``scope``; ``progress`` sees the report every ``every`` calls."""
        report = ReplayReport(
            candidate=[bot.name for bot in self._bots], against=self.against,
            model=self._model, since=scope.since, until=scope.until,
            started_at=datetime.now(UTC), fail_on=self._fail_on,
        )
        try:
            async for row in stored_calls(self._live, scope):
                await self._replay_call(row, report)
                if progress is not None and report.calls % every == 0:
                    progress(report)
        finally:
            await self._close_isolated()
        report.finished_at = datetime.now(UTC)
        report.failing = failing(Counter(report.counts), self._fail_on)
        return report

    # one call

    async def _replay_call(self, row: CallRow, report: ReplayReport) -> None:
        dispatcher, isolated = await self._isolated_run()
        events = await self._live.call_events(row.call_id)
        if not events:
            report.add_call(compare_call(row.call_id, [], []))
            return
        await isolated.add_events([_copy(event) for event in events])
        placed = await self._live.placed_call(row.call_id)
        if placed is not None:  # bots never call back a call agentkit placed
            await isolated.record_placed_call(placed)
        run = _CallRun(dispatcher, {e.id: e for e in events}, self._max_attempts,
                       self._job_ids, self._set_clock)
        for stored in events:
            await run.timers_until(stored.received_at)
            self._now = stored.received_at
            event = parse_event(stored.body, internal=True)
            try:
                specs = dispatcher.follow_ups(event)
            except Exception as exc:  # a bot's filter raised: the live router retried it
                run.errors.append(f"routing {event.type}: {type(exc).__name__}: {exc}")
                continue
            for spec in specs:
                await run.job(spec)
        if run.waiting:
            await run.timeouts_as_live(await self._live.jobs_of_call(row.call_id),
                                       self._same_bot)
        live_actions = [a for a in await self._live.actions_for_call(row.call_id)
                        if a.bot in self.against]
        live_answers = [a for a in await self._live.model_answers_of_call(row.call_id)
                        if a.bot in self.against]
        would = await isolated.actions_for_call(row.call_id)
        would_answers = await isolated.model_answers_of_call(row.call_id)
        report.live.add(live_actions, live_answers)
        report.replayed.add(would, would_answers)
        found = compare_call(row.call_id, live_actions, would, live_answers=live_answers,
                             candidate_answers=would_answers, same_bot=self._same_bot)
        report.add_call(found, started_at=row.started_at, from_number=row.from_number,
                        errors=run.errors)

    def _set_clock(self, at: datetime) -> None:
        self._now = at

    async def _isolated_run(self) -> tuple[Dispatcher, SqliteStore]:
        if self._isolated is not None and self._calls_in_store < CALLS_PER_STORE:
            assert self._dispatcher is not None
            self._calls_in_store += 1
            return self._dispatcher, self._isolated
        await self._close_isolated()
        isolated = SqliteStore(":memory:", max_attempts=self._max_attempts, inline=True)
        await isolated.open()
        self._environment = BotEnvironment(
            self._settings, api=self._api, store=isolated, bots=self._bots,
            prompts=self._prompts, llm=self._llm, clock=lambda: self._now,
            dialled=self._live,
        )
        self._isolated, self._calls_in_store = isolated, 1
        self._dispatcher = Dispatcher(self._bots, self._environment.context, isolated,
                                      clock=lambda: self._now)
        return self._dispatcher, isolated

    async def _close_isolated(self) -> None:
        isolated, self._isolated = self._isolated, None
        if isolated is not None:
            await isolated.close()


async def stored_calls(store: Store, scope: ReplayScope) -> AsyncIterator[CallRow]:
    """The calls in ``scope``, oldest first, a page at a time."""
    if scope.call_ids:
        for call_id in dict.fromkeys(scope.call_ids):
            row = await store.get_call(call_id)
            if row is None:
                raise ReplayError(f"no call {call_id!r} in the store: check the id, and "
                                  "AGENTKIT_DATABASE_URL or --database-url")
            yield row
        return
    left = scope.limit
    after: CallCursor | None = None
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        page = await store.replay_calls(since=scope.since, until=scope.until, after=after,
                                        limit=size)
        for row in page:
            yield row
        if len(page) < size:
            return
        if left is not None:
            left -= len(page)
        after = CallCursor(started_at=page[-1].started_at, call_id=page[-1].call_id)


def standing_for(candidates: Sequence[str], against: Sequence[str]) -> dict[str, str]:
    """Which live bot each candidate stands for: its namesake; or, one candidate against one
    live bot of another name, that bot."""
    if len(candidates) == 1 and len(against) == 1:
        return {candidates[0]: against[0]}
    return {}


async def shadow_report(store: Store, shadow: str, scope: ReplayScope = ReplayScope(), *,
                        against: Sequence[str] = (), fail_on: Sequence[str] = (),
                        progress: Callable[[ReplayReport], None] | None = None,
                        every: int = 1000) -> ReplayReport:
    """How a shadow bot's "would do" differed from what the ``against`` live bots did.

    Nothing runs again: both sides are read from the store's action log.
    """
    report = ReplayReport(source="shadow", candidate=[shadow], against=list(against),
                          since=scope.since, until=scope.until, started_at=datetime.now(UTC),
                          fail_on=list(fail_on))
    same_bot = standing_for([shadow], against)
    async for row in stored_calls(store, scope):
        actions = await store.actions_for_call(row.call_id)
        answers = await store.model_answers_of_call(row.call_id)
        live = [a for a in actions if a.bot in against]
        would = [a for a in actions if a.bot == shadow]
        live_answers = [a for a in answers if a.bot in against]
        would_answers = [a for a in answers if a.bot == shadow]
        report.live.add(live, live_answers)
        report.replayed.add(would, would_answers)
        report.add_call(compare_call(row.call_id, live, would, live_answers=live_answers,
                                     candidate_answers=would_answers, same_bot=same_bot),
                        started_at=row.started_at, from_number=row.from_number)
        if progress is not None and report.calls % every == 0:
            progress(report)
    report.finished_at = datetime.now(UTC)
    report.failing = failing(Counter(report.counts), fail_on)
    return report


class _CallRun:
    """One call's jobs: run at once, or (join timeouts) when the virtual clock reaches them."""

    def __init__(self, dispatcher: Dispatcher, events: Mapping[str, StoredEvent],
                 max_attempts: int, ids: itertools.count[int],
                 set_clock: Callable[[datetime], None]) -> None:
        self._dispatcher = dispatcher
        self._events = events
        self._max_attempts = max_attempts
        self._ids = ids
        self._set_clock = set_clock
        self._timers: list[tuple[datetime, int, JobSpec]] = []
        self.errors: list[str] = []

    async def timers_until(self, at: datetime) -> None:
        """Run the timers due by ``at``, in time order, the clock at each one's time."""
        while self._timers and self._timers[0][0] <= at:
            due, _, spec = heapq.heappop(self._timers)
            self._set_clock(due)
            await self.job(spec)

    @property
    def waiting(self) -> bool:
        return bool(self._timers)

    async def timeouts_as_live(self, live_jobs: Sequence[JobRecord],
                               same_bot: Mapping[str, str]) -> None:
        """After the call's last event: run each timeout that had run live (or, for a wait
        live never had, that is due by now); the others have not passed yet."""
        # A job's run_at is when it last came due: when it ran, give or take a lease.
        ran = {(job.event_id, job.bot, job.name): job.run_at
               for job in live_jobs if job.kind == "task" and job.state != "pending"}
        known = {(job.event_id, job.bot, job.name) for job in live_jobs}
        now = datetime.now(UTC)
        while self._timers:
            due, _, spec = heapq.heappop(self._timers)
            identity = (spec.event_id, same_bot.get(spec.bot or "", spec.bot), spec.name)
            if identity in ran:
                self._set_clock(ran[identity])
                await self.job(spec)
            elif identity not in known and due <= now:
                self._set_clock(due)
                await self.job(spec)

    async def job(self, spec: JobSpec) -> None:
        stored = self._events.get(spec.event_id)
        if stored is None:
            self.errors.append(f"{spec.bot or spec.name}: its event {spec.event_id} is not "
                               "one of the call's")
            return
        event = parse_event(stored.body, internal=True)
        for attempt in range(1, self._max_attempts + 1):
            job = Job(id=next(self._ids), kind=spec.kind, event_id=stored.id, seq=stored.seq,
                      call_id=stored.call_id, bot=spec.bot, name=spec.name,
                      payload=dict(spec.payload), attempts=attempt,
                      max_attempts=self._max_attempts, run_at=stored.received_at,
                      lease_owner="replay", last_error=None, event_body=stored.body)
            try:
                follow_ups = await self._run(job, event)
            except Exception as exc:  # the live worker's rule: retry, or give up
                if attempt < self._max_attempts and is_transient(exc):
                    continue
                self.errors.append(f"{spec.bot or spec.name} on {event.type}: "
                                   f"{type(exc).__name__}: {exc}")
                log.warning("replay.handler_failed", bot=spec.bot, event_id=stored.id,
                            error=f"{type(exc).__name__}: {exc}")
                return
            for follow_up in follow_ups:
                if follow_up.run_at is not None:
                    heapq.heappush(self._timers, (follow_up.run_at, next(self._ids), follow_up))
                else:
                    await self.job(follow_up)
            return

    async def _run(self, job: Job, event: Event) -> list[JobSpec]:
        token = job_usage.set(Usage())
        try:
            return await self._dispatcher.run(job, event)
        finally:
            job_usage.reset(token)


class ReplayError(AgentkitError):
    """A replay cannot run as asked; the message says why."""


def _copy(event: StoredEvent) -> NewEvent:
    # The route jobs this makes are never run: the replay routes each event itself, in order.
    return NewEvent(id=event.id, type=event.type, created_at=event.created_at,
                    call_id=event.call_id, body=event.body, routable=event.routable)
