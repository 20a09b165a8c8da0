"""Workers run each bot's handlers on each event: retried, dead-lettered, in order, drained."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from agentkit.bot import Bot
from agentkit.context import Context
from agentkit.errors import BadRequestError
from agentkit.llm import LlmInvalidAnswer, PromptError
from agentkit.metrics import Metrics
from agentkit.odygy import OdygyClient
from agentkit.runtime.environment import BotEnvironment
from agentkit.runtime.worker import WorkerConfig, Workers, retry_delay
from agentkit.settings import Settings
from agentkit.store import Job, JobSpec, NewEvent, Store
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import wait_until
from agentkit.testing.deliveries import envelope
from tests.stores import StoreFactory

T0 = datetime(2026, 4, 23, 10, 12, 45, tzinfo=UTC)
FAST = WorkerConfig(concurrency=4, lease_seconds=5, poll_interval=0.05, retry_base=0.01,
                    retry_max=0.05, drain_timeout=2)


@dataclass
class Harness:
    """Workers over a real store, fed events as the receiver stores them."""

    store: Store
    metrics: Metrics
    bots: list[Bot]
    config: WorkerConfig = field(default_factory=lambda: FAST)
    workers: Workers | None = None
    client: OdygyClient = field(
        default_factory=lambda: OdygyClient(api_key="unused", base_url="http://127.0.0.1:9/v1")
    )
    dead_letters: list[tuple[Job, str, bool]] = field(default_factory=list)

    async def start(self) -> Workers:
        settings = Settings.from_env({}, sandbox=True, env_file=None)
        environment = BotEnvironment(settings, api=self.client, store=self.store, bots=self.bots)

        async def dead_letter(job: Job, error: str, retried: bool) -> None:
            self.dead_letters.append((job, error, retried))

        self.workers = Workers(self.store, environment.dispatcher(), self.metrics,
                               self.config, owner="test-worker", on_dead_letter=dead_letter)
        await self.workers.start()
        return self.workers

    async def add(self, *events: dict[str, Any]) -> None:
        from agentkit.events import is_routable, parse_event

        new = []
        for raw in events:
            body = json.dumps(raw).encode()
            event = parse_event(body)
            new.append(NewEvent(event.id, event.type, event.created_at, event.call_id, body,
                                is_routable(event)))
        await self.store.add_events(new)
        if self.workers:
            self.workers.wake()

    async def states(self, event_id: str) -> dict[str | None, str]:
        return {j.bot: j.state for j in await self.store.jobs_for_event(event_id) if j.bot}

    async def settled(self, event_id: str, bots: int) -> dict[str | None, str]:
        async def check() -> dict[str | None, str] | None:
            states = await self.states(event_id)
            done = len(states) == bots and all(s in ("done", "dead") for s in states.values())
            return states if done else None

        result = await wait_until(check, timeout=10, message=f"jobs of {event_id} to settle")
        assert result is not None
        return result


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []
    store = SqliteStore(tmp_path / "agentkit.db", max_attempts=3)
    await store.open()

    def make(*bots: Bot, config: WorkerConfig = FAST) -> Harness:
        h = Harness(store, Metrics(), list(bots), config)
        made.append(h)
        return h

    yield make
    for h in made:
        if h.workers:
            await h.workers.stop()
        await h.client.aclose()
    await store.close()


async def test_each_bot_runs_once_per_event(harness: Callable[..., Harness]) -> None:
    """An event reaches every bot with a handler for its type, once, and no other bot."""
    seen: list[tuple[str, str]] = []
    a, b, c = Bot("a"), Bot("b"), Bot("c")

    @a.on("voicemail.received")
    async def a_vm(ctx: Context[Any]) -> None:
        seen.append(("a", ctx.event.id))

    @b.on("voicemail.received")
    async def b_vm(ctx: Context[Any]) -> None:
        seen.append(("b", ctx.event.id))

    @c.on("call.completed")
    async def c_done(ctx: Context[Any]) -> None:
        seen.append(("c", ctx.event.id))

    h = harness(a, b, c)
    await h.start()
    event = envelope("voicemail.received")
    await h.add(event)
    assert await h.settled(event["id"], 2) == {"a": "done", "b": "done"}
    assert sorted(seen) == [("a", event["id"]), ("b", event["id"])]
    runs = await h.store.bot_runs(event["id"])
    assert sorted((r.bot, r.outcome) for r in runs) == [("a", "ok"), ("b", "ok")]


async def test_failure_retried_until_success(harness: Callable[..., Harness]) -> None:
    """A handler that fails twice runs a third time and the job completes."""
    attempts: list[int] = []
    bot = Bot("flaky")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        attempts.append(ctx.attempt)
        if len(attempts) < 3:
            raise ConnectionError("temporary")

    h = harness(bot)
    await h.start()
    event = envelope("call.completed")
    await h.add(event)
    assert await h.settled(event["id"], 1) == {"flaky": "done"}
    assert attempts == [1, 2, 3]
    assert h.metrics.retries.labels(kind="bot", bot="flaky")._value.get() == 2


async def test_dead_letter_after_max_attempts(harness: Callable[..., Harness]) -> None:
    """A handler that keeps failing on a transient error is dead-lettered after its attempts."""
    bot = Bot("broken")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        raise ConnectionError(f"attempt {ctx.attempt} failed")

    h = harness(bot)
    await h.start()
    event = envelope("call.completed")
    with structlog.testing.capture_logs() as logs:
        await h.add(event)
        assert await h.settled(event["id"], 1) == {"broken": "dead"}
    (job,) = [j for j in await h.store.jobs_for_event(event["id"]) if j.bot]
    assert job.attempts == 3
    assert job.last_error == "ConnectionError: attempt 3 failed"
    assert h.metrics.dead_letters.labels(kind="bot", bot="broken")._value.get() == 1
    dead = [entry for entry in logs if entry["event"] == "job.dead_lettered"]
    assert dead and dead[0]["error"] == "ConnectionError: attempt 3 failed"
    assert [(j.id, retried) for j, _, retried in h.dead_letters] == [(job.id, True)]


@pytest.mark.parametrize(
    "error",
    [ValueError("a bug in the handler"), KeyError("missing"),
     PromptError("no prompt template triage.j2"), LlmInvalidAnswer("no", task="t", problem="p"),
     BadRequestError("bad number", status=400)],
    ids=lambda e: type(e).__name__,
)
async def test_deterministic_failure_is_dead_lettered_at_once(
    harness: Callable[..., Harness], error: Exception
) -> None:
    """A failure that would repeat (a bug, a missing prompt, a refused request) is not retried,
    and its dead letter is announced once."""
    bot = Bot("buggy")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        raise error

    h = harness(bot)
    await h.start()
    event = envelope("call.completed")
    await h.add(event)
    assert await h.settled(event["id"], 1) == {"buggy": "dead"}
    (job,) = [j for j in await h.store.jobs_for_event(event["id"]) if j.bot]
    assert job.attempts == 1
    assert job.last_error is not None and type(error).__name__ in job.last_error
    assert h.metrics.retries.labels(kind="bot", bot="buggy")._value.get() == 0
    assert [(j.id, retried) for j, _, retried in h.dead_letters] == [(job.id, False)]


async def test_failing_bot_does_not_hold_back_others(harness: Callable[..., Harness]) -> None:
    """One bot failing on an event never keeps another from handling it."""
    done: list[str] = []
    bad, good = Bot("bad"), Bot("good")

    @bad.on("call.completed")
    async def fail(ctx: Context[Any]) -> None:
        raise ConnectionError("no")

    @good.on("call.completed")
    async def work(ctx: Context[Any]) -> None:
        done.append(ctx.event.id)

    h = harness(bad, good)
    await h.start()
    event = envelope("call.completed")
    await h.add(event)
    assert await h.settled(event["id"], 2) == {"bad": "dead", "good": "done"}
    assert done == [event["id"]]


async def test_one_calls_events_in_order(harness: Callable[..., Harness]) -> None:
    """A bot handles one call's events in arrival order, even when the first is slow."""
    order: list[str] = []
    release = asyncio.Event()
    bot = Bot("ordered")

    @bot.on("voicemail.received")
    async def voicemail(ctx: Context[Any]) -> None:
        await release.wait()
        order.append("voicemail")

    @bot.on("transcript.ready")
    async def transcript(ctx: Context[Any]) -> None:
        order.append("transcript")

    h = harness(bot)
    await h.start()
    first, second = envelope("voicemail.received"), envelope("transcript.ready")
    await h.add(first)
    await wait_until(lambda: h.workers is not None and h.workers.busy == 1, timeout=10)
    await h.add(second)
    other_call = envelope("transcript.ready", {"call_id": "cal_other", "language": "en-US"})
    await h.add(other_call)
    await h.settled(other_call["id"], 1)
    assert order == ["transcript"]  # the other call's event was not held back
    release.set()
    await h.settled(second["id"], 1)
    assert order == ["transcript", "voicemail", "transcript"]


async def test_concurrency_is_bounded(harness: Callable[..., Harness]) -> None:
    """No more handlers run at once than the configured concurrency."""
    running = 0
    peak = 0
    release = asyncio.Event()
    bot = Bot("busy")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    h = harness(bot, config=WorkerConfig(concurrency=3, poll_interval=0.05, drain_timeout=2))
    await h.start()
    events = [envelope("call.completed", {**envelope()["data"], "id": f"cal_{n}"})
              for n in range(10)]
    await h.add(*events)
    await wait_until(lambda: running == 3, timeout=10, message="three handlers running")
    assert h.workers is not None and h.workers.busy == 3
    release.set()
    for event in events:
        await h.settled(event["id"], 1)
    assert peak == 3


async def test_drain_finishes_running_jobs(harness: Callable[..., Harness]) -> None:
    """On stop, a running handler may finish within the drain timeout and is done."""
    started = asyncio.Event()
    release = asyncio.Event()
    bot = Bot("steady")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        started.set()
        await release.wait()

    h = harness(bot)
    workers = await h.start()
    event = envelope("call.completed")
    await h.add(event)
    await asyncio.wait_for(started.wait(), 10)
    with structlog.testing.capture_logs() as logs:
        stopping = asyncio.create_task(workers.stop())
        # Released only once the workers drain, so the job finishes inside the drain.
        await wait_until(lambda: [e for e in logs if e["event"] == "workers.draining"],
                         timeout=10, message="the workers to start draining")
        release.set()
        await stopping
    h.workers = None
    assert await h.states(event["id"]) == {"steady": "done"}


async def test_drain_hands_back_what_does_not_finish(harness: Callable[..., Harness]) -> None:
    """A handler still running at the drain timeout is handed back, its attempt not counted."""
    started = asyncio.Event()
    bot = Bot("stuck")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    h = harness(bot, config=WorkerConfig(poll_interval=0.05, drain_timeout=0.1))
    workers = await h.start()
    event = envelope("call.completed")
    await h.add(event)
    await asyncio.wait_for(started.wait(), 10)
    await workers.stop()
    h.workers = None
    (job,) = [j for j in await h.store.jobs_for_event(event["id"]) if j.bot]
    assert (job.state, job.attempts) == ("pending", 0)


async def test_log_lines_carry_job_context(harness: Callable[..., Harness]) -> None:
    """Every log line of a job carries its event id, event type, call id and bot."""
    bot = Bot("talker")

    @bot.on("voicemail.received")
    async def handle(ctx: Context[Any]) -> None:
        ctx.log.info("bot.said_hello")

    h = harness(bot)
    await h.start()
    event = envelope("voicemail.received")
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await h.add(event)
        await h.settled(event["id"], 1)
    (line,) = [entry for entry in logs if entry["event"] == "bot.said_hello"]
    assert line["event_id"] == event["id"]
    assert line["event_type"] == "voicemail.received"
    assert line["call_id"] == "cal_test_1"
    assert line["bot"] == "talker"


async def test_removed_bot_is_dead_lettered_with_reason(
    harness: Callable[..., Harness],
) -> None:
    """A job for a bot no longer deployed ends dead with a message that says so."""
    h = harness()
    event = envelope("call.completed")
    await h.add(event)
    (route,) = await h.store.lease("router-with-the-bot", 1, 30)
    await h.store.finish(route, follow_ups=[JobSpec("bot", event["id"], bot="gone")])
    await h.start()
    assert await h.settled(event["id"], 1) == {"gone": "dead"}
    (job,) = [j for j in await h.store.jobs_for_event(event["id"]) if j.bot]
    assert "no bot named 'gone'" in (job.last_error or "")


async def test_route_failure_fails_only_its_event(harness: Callable[..., Harness]) -> None:
    """Route jobs are done in batches; one that can never be routed (its body is not JSON) is
    dead-lettered alone, at once, and the events routed with it reach their bot."""
    seen: list[str] = []
    bot = Bot("b")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        seen.append(ctx.event.id)

    h = harness(bot)
    good = [envelope("call.completed", {**envelope("call.completed")["data"], "id": f"cal_{n}"})
            for n in range(5)]
    await h.add(*good[:2])
    await h.store.add_events([NewEvent("evt_unreadable", "call.completed", T0, "cal_x",
                                       b"{not json", True)])
    await h.add(*good[2:])
    await h.start()
    for event in good:
        assert await h.settled(event["id"], 1) == {"b": "done"}

    async def route_dead() -> bool:
        jobs = await h.store.jobs_for_event("evt_unreadable")
        return [(j.kind, j.state, j.attempts) for j in jobs] == [("route", "dead", 1)]

    await wait_until(route_dead, timeout=10, message="the unreadable event's route job to die")
    assert sorted(seen) == sorted(e["id"] for e in good)


def test_retry_delay_grows_and_is_capped() -> None:
    """Retry delays double per attempt, with jitter, and never pass the cap."""
    import random

    rng = random.Random(1)
    delays = [retry_delay(n, 2.0, 60.0, rng) for n in range(1, 10)]
    assert 1.0 <= delays[0] <= 2.0
    assert 8.0 <= delays[3] <= 16.0
    assert all(d <= 60.0 for d in delays)


async def test_workers_on_postgres_too(make_store: StoreFactory) -> None:
    """The same workers run events end to end on each store engine."""
    store = await make_store()
    seen: list[str] = []
    bot = Bot("both")

    @bot.on("call.completed")
    async def handle(ctx: Context[Any]) -> None:
        seen.append(ctx.event.id)

    h = Harness(store, Metrics(), [bot])
    await h.start()
    try:
        event = envelope("call.completed")
        await h.add(event)
        assert await h.settled(event["id"], 1) == {"both": "done"}
        assert seen == [event["id"]]
    finally:
        assert h.workers is not None
        await h.workers.stop()
        await h.client.aclose()
