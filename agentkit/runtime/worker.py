"""Workers: lease due jobs, run them with bounded concurrency, retry or dead-letter failures.

A worker holds a lease on each job it runs and extends it while the job runs;
a worker that dies stops extending, its leases expire and another worker runs
the jobs again. On shutdown a worker stops leasing, lets running jobs finish
for ``drain_timeout`` seconds, then hands the rest back. A failure that will
not go away by itself (runtime/failures.py) is dead-lettered at once; every
dead letter is announced once through ``on_dead_letter``.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog

from agentkit.events import parse_event
from agentkit.llm.usage import Usage
from agentkit.logs import get_logger
from agentkit.metrics import Metrics
from agentkit.runtime.dispatch import Dispatcher
from agentkit.runtime.failures import is_transient
from agentkit.store.base import BotRun, Job, JobSpec, Store, StoreError

log = get_logger("agentkit.runtime")

# The model usage of the job running in this task; contexts built for it add to it.
job_usage: ContextVar[Usage] = ContextVar("agentkit_job_usage")

DeadLetterHook = Callable[[Job, str, bool], Awaitable[None]]


@dataclass
class WorkerConfig:
    """How many jobs at once, how long leases last, how failures back off.

    ``concurrency`` bounds bot jobs and tasks; route jobs (which bots get an
    event) are pure bookkeeping and are done ``route_batch`` at a time.
    """

    concurrency: int = 8
    route_batch: int = 256
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    retry_base: float = 2.0
    retry_max: float = 600.0
    drain_timeout: float = 20.0


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: about base * 2^(attempt-1), at most ``cap``."""
    rng = rng or random.Random()
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


class Workers:
    """A pool of job runners in this process, sharing one store."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        metrics: Metrics,
        config: WorkerConfig | None = None,
        *,
        owner: str | None = None,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        self._store = store
        self._on_dead_letter = on_dead_letter
        self._dispatcher = dispatcher
        self._metrics = metrics
        self.config = config or WorkerConfig()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._wake_router = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        self._loop_tasks: list[asyncio.Task[None]] = []

    @property
    def busy(self) -> int:
        return len(self._running)

    def wake(self, _: object = None) -> None:
        """Look for work now (new events were stored)."""
        self._wake.set()
        self._wake_router.set()

    async def start(self) -> None:
        self._loop_tasks = [
            asyncio.create_task(self._lease_loop(), name="workers"),
            asyncio.create_task(self._route_loop(), name="router"),
        ]

    async def stop(self) -> None:
        """Stop leasing; finish running jobs within drain_timeout; hand back the rest."""
        self._stopping = True
        self.wake()
        await asyncio.gather(*self._loop_tasks)
        self._loop_tasks = []
        running = list(self._running.values())
        if running:
            log.info("workers.draining", jobs=len(running), timeout_s=self.config.drain_timeout)
            _, late = await asyncio.wait(running, timeout=self.config.drain_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _lease_loop(self) -> None:
        while not self._stopping:
            free = self.config.concurrency - len(self._running)
            jobs: list[Job] = []
            if free > 0:
                try:
                    jobs = await self._store.lease(self.owner, free, self.config.lease_seconds,
                                                   kinds="work")
                except StoreError as exc:
                    log.warning("workers.lease_failed", error=str(exc))
            for job in jobs:
                task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
                self._running[job.id] = task
                task.add_done_callback(self._done_callback(job.id))
            if jobs and len(jobs) == free:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_interval)
            except TimeoutError:
                pass

    async def _route_loop(self) -> None:
        batch = self.config.route_batch
        while not self._stopping:
            jobs: list[Job] = []
            try:
                jobs = await self._store.lease(self.owner, batch, self.config.lease_seconds,
                                               kinds="route")
            except StoreError as exc:
                log.warning("workers.lease_failed", error=str(exc))
            if jobs:
                await self._route(jobs)
                if len(jobs) == batch:
                    continue
            self._wake_router.clear()
            try:
                await asyncio.wait_for(self._wake_router.wait(),
                                       timeout=self.config.poll_interval)
            except TimeoutError:
                pass

    async def _route(self, jobs: list[Job]) -> None:
        """Route a batch of events and record every outcome in one transaction."""
        now = datetime.now(UTC)
        routed: list[tuple[Job, list[JobSpec]]] = []
        for job in jobs:
            self._metrics.job_wait.labels(kind="route").observe(
                max(0.0, (now - job.run_at).total_seconds())
            )
            started = time.monotonic()
            event = None
            try:
                event = parse_event(job.event_body, internal=True)
                follow_ups = await self._dispatcher.run(job, event)
            except Exception as exc:  # a bot's filter raised: retry this one alone
                self._metrics.job_duration.labels(kind="route", outcome="error").observe(
                    time.monotonic() - started
                )
                with structlog.contextvars.bound_contextvars(
                    job_id=job.id, event_id=job.event_id, job_kind=job.kind,
                    attempt=job.attempts, call_id=job.call_id,
                    event_type=event.type if event is not None else None,
                ):
                    await self._failed(job, f"{type(exc).__name__}: {exc}",
                                       transient=is_transient(exc))
                continue
            self._metrics.job_duration.labels(kind="route", outcome="ok").observe(
                time.monotonic() - started
            )
            log.debug("event.routed", event_id=job.event_id, event_type=event.type,
                      bots=[spec.bot for spec in follow_ups])
            routed.append((job, follow_ups))
        try:
            finished = await self._store.finish_many(routed)
        except StoreError as exc:
            log.error("job.store_failed", step="finish routes", jobs=len(routed), error=str(exc))
            return
        lost = finished.count(False)
        if lost:
            log.warning("job.lease_lost_before_finish", jobs=lost)
        if any(follow_ups for (_, follow_ups), ok in zip(routed, finished, strict=True) if ok):
            self._wake.set()

    def _done_callback(self, job_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)
            self._wake.set()

        return done

    async def _execute(self, job: Job) -> None:
        started = time.monotonic()
        started_at = datetime.now(UTC)
        self._metrics.job_wait.labels(kind=job.kind).observe(
            max(0.0, (started_at - job.run_at).total_seconds())
        )
        structlog.contextvars.bind_contextvars(
            job_id=job.id, event_id=job.event_id, bot=job.bot, job_kind=job.kind,
            attempt=job.attempts,
        )
        usage = Usage()
        job_usage.set(usage)
        lease = _LeaseKeeper(self._store, job, self.config.lease_seconds)
        heartbeat = asyncio.create_task(lease.keep(asyncio.current_task()))
        outcome: Literal["ok", "error"] = "ok"
        error: str | None = None
        try:
            event = parse_event(job.event_body, internal=True)
            structlog.contextvars.bind_contextvars(event_type=event.type, call_id=event.call_id)
            follow_ups = await self._dispatcher.run(job, event)
        except asyncio.CancelledError:
            heartbeat.cancel()
            if lease.lost:
                log.warning("job.lease_lost")
                return
            await self._settle(self._store.hand_back(job), "hand back")
            log.info("job.handed_back")
            return
        except Exception as exc:
            outcome = "error"
            error = f"{type(exc).__name__}: {exc}"
            await self._failed(job, error, transient=is_transient(exc))
        else:
            if not await self._settle(self._store.finish(job, follow_ups=follow_ups), "finish"):
                log.warning("job.lease_lost_before_finish")
            else:
                log.info("job.done", follow_ups=len(follow_ups),
                         ms=round((time.monotonic() - started) * 1000, 1))
        finally:
            heartbeat.cancel()
            self._metrics.job_duration.labels(kind=job.kind, outcome=outcome).observe(
                time.monotonic() - started
            )
        if job.kind == "bot" and job.bot:
            run = BotRun(job_id=job.id, event_id=job.event_id, bot=job.bot, attempt=job.attempts,
                         started_at=started_at, finished_at=datetime.now(UTC), outcome=outcome,
                         error=error, prompt_tokens=usage.prompt_tokens,
                         completion_tokens=usage.completion_tokens, cost_usd=usage.cost_usd)
            await self._settle(self._store.record_bot_run(run), "record bot run")

    async def _failed(self, job: Job, error: str, *, transient: bool = True) -> None:
        bot = job.bot or ""
        if job.last_attempt or not transient:
            self._metrics.dead_letters.labels(kind=job.kind, bot=bot).inc()
            log.error("job.dead_lettered", error=error, attempts=job.attempts,
                      retried=transient)
            if await self._settle(self._store.dead_letter(job, error), "dead-letter") \
                    and self._on_dead_letter is not None:
                try:
                    await self._on_dead_letter(job, error, transient)
                except Exception as exc:  # the alert is a courtesy; the dead letter stands
                    log.warning("job.dead_letter_alert_failed", error=str(exc))
            return
        delay = retry_delay(job.attempts, self.config.retry_base, self.config.retry_max)
        self._metrics.retries.labels(kind=job.kind, bot=bot).inc()
        log.warning("job.failed_will_retry", error=error, retry_in_s=round(delay, 2))
        run_at = datetime.now(UTC) + timedelta(seconds=delay)
        await self._settle(self._store.retry(job, error, run_at), "retry")

    async def _settle(self, change: Awaitable[object], what: str) -> bool:
        """Apply a store change; a store failure is logged, and the lease expiry recovers."""
        try:
            return bool(await change)
        except StoreError as exc:
            log.error("job.store_failed", step=what, error=str(exc))
            return False


class _LeaseKeeper:
    """Extends a job's lease while it runs; cancels the job if the lease is lost."""

    def __init__(self, store: Store, job: Job, lease_seconds: float) -> None:
        self._store = store
        self._job = job
        self._lease_seconds = lease_seconds
        self.lost = False

    async def keep(self, runner: asyncio.Task[object] | None) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                held = await self._store.extend(self._job, self._lease_seconds)
            except StoreError as exc:
                log.warning("job.lease_extend_failed", error=str(exc))
                continue
            if not held:
                self.lost = True
                if runner is not None:
                    runner.cancel()
                return
