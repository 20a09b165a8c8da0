"""Retention on every engine: claims won once, the purge of old rows, and the daily job."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from agentkit.errors import ConfigError
from agentkit.redact import CARD_MARK
from agentkit.runtime.retention import RetentionJob
from agentkit.store import BotRun, CachedAnswer, NewEvent, Store
from agentkit.store.privacy import WORDS_REMOVED
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import wait_until
from tests.stores import StoreFactory

CARD = "4111 1111 1111 1111"


def event(name: str, *, routable: bool = False) -> NewEvent:
    body = {"id": name, "type": "call.completed", "created_at": "2026-04-23T10:12:45Z",
            "data": {"from": "+442079460000", "to": "+40264000111"}}
    return NewEvent(id=name, type="call.completed", created_at=datetime.now(UTC),
                    call_id=f"cal_{name}", body=json.dumps(body).encode(), routable=routable)


async def moment_between() -> datetime:
    """Now, once the clock has moved past it: rows written before are older, rows after newer."""
    mark = datetime.now(UTC)
    await wait_until(lambda: datetime.now(UTC) > mark, message="the clock to move on")
    return mark


async def finish_routes(store: Store) -> None:
    """Lease and finish every due route job, adding no bot job."""
    for job in await store.lease("router", 100, 30):
        assert await store.finish(job)


def answer(key: str) -> CachedAnswer:
    return CachedAnswer(key=key, model="gpt-4o-mini", answer='{"urgency": "normal"}',
                        prompt_tokens=10, completion_tokens=5)


# claims


async def test_claim_once_is_won_once(store: Store) -> None:
    """The first claim of a name wins and every later one loses."""
    assert await store.claim_once("retention:2026-04-23") is True
    assert await store.claim_once("retention:2026-04-23") is False
    assert await store.claim_once("retention:2026-04-24") is True


async def test_claim_once_has_one_winner_across_processes(make_store: StoreFactory) -> None:
    """Two stores on one database racing for a name: exactly one wins, now and after."""
    first, second = await make_store(), await make_store()
    results = await asyncio.gather(*(s.claim_once("alert:disk") for s in (first, second) * 4))
    assert results.count(True) == 1
    assert not await first.claim_once("alert:disk")
    assert not await second.claim_once("alert:disk")


# purge


async def test_purge_removes_old_events_with_their_jobs_and_runs(store: Store) -> None:
    """An old event whose jobs are done goes with its jobs and bot runs; a new one stays."""
    await store.add_events([event("evt_old", routable=True)])
    await finish_routes(store)
    (job,) = await store.jobs_for_event("evt_old")
    now = datetime.now(UTC)
    await store.record_bot_run(BotRun(job_id=job.id, event_id="evt_old", bot="b", attempt=1,
                                      started_at=now, finished_at=now, outcome="ok"))
    cutoff = await moment_between()
    await store.add_events([event("evt_new", routable=True)])
    counts = await store.purge_older_than(cutoff)
    assert (counts["events"], counts["jobs"], counts["bot_runs"]) == (1, 1, 1)
    assert await store.get_event("evt_old") is None
    assert await store.jobs_for_event("evt_old") == []
    assert await store.bot_runs("evt_old") == []
    assert await store.get_event("evt_new") is not None
    assert len(await store.jobs_for_event("evt_new")) == 1


async def test_purge_keeps_old_event_with_an_open_job(store: Store) -> None:
    """An old event whose route job is still pending is kept, with its job."""
    await store.add_events([event("evt_waiting", routable=True)])
    cutoff = await moment_between()
    counts = await store.purge_older_than(cutoff)
    assert counts["events"] == 0
    assert await store.get_event("evt_waiting") is not None
    assert [j.state for j in await store.jobs_for_event("evt_waiting")] == ["pending"]


async def test_purge_removes_old_answers_and_joins(store: Store) -> None:
    """Model answers and joins older than the cutoff go; newer ones stay."""
    await store.cache_answer(answer("old"))
    await store.join_arrive("join:old", "voicemail.received", "evt_1")
    cutoff = await moment_between()
    await store.cache_answer(answer("new"))
    await store.join_arrive("join:new", "voicemail.received", "evt_2")
    counts = await store.purge_older_than(cutoff)
    assert (counts["llm_cache"], counts["joins"]) == (1, 1)
    assert await store.cached_answer("old") is None
    assert await store.cached_answer("new") is not None
    assert await store.join_state("join:old") is None
    assert await store.join_state("join:new") is not None


async def test_purge_works_through_many_batches(store: Store) -> None:
    """A purge larger than its batch takes every old row, a batch per transaction."""
    await store.add_events([event(f"evt_{n}") for n in range(7)])
    for n in range(5):
        await store.cache_answer(answer(f"a{n}"))
    cutoff = await moment_between()
    counts = await store.purge_older_than(cutoff, batch_size=2)
    assert (counts["events"], counts["llm_cache"]) == (7, 5)
    assert await store.count_events() == 0


async def test_purge_keeps_actions_masked(store: Store) -> None:
    """An old action stays, its caller's words cut, payment data masked, its numbers kept."""
    detail = {"to": "+442079460000", "reason": "Ana's internet is down", "urgency": "high",
              "channels": {"slack": f"refused: card {CARD}"}}
    await store.claim_action("evt_1:b:callback", event_id="evt_1", bot="b", kind="callback",
                             detail=detail)
    cutoff = await moment_between()
    counts = await store.purge_older_than(cutoff)
    record = await store.get_action("evt_1:b:callback")
    assert counts["actions_masked"] == 1
    assert record is not None
    assert record.detail == {"to": "+442079460000", "reason": WORDS_REMOVED, "urgency": "high",
                             "channels": {"slack": f"refused: card {CARD_MARK}"}}


async def test_purge_leaves_new_actions_as_they_are(store: Store) -> None:
    """An action newer than the cutoff keeps its detail untouched."""
    cutoff = await moment_between()
    detail = {"to": "+442079460000", "reason": "Ana's internet is down"}
    await store.claim_action("evt_1:b:callback", event_id="evt_1", bot="b", kind="callback",
                             detail=detail)
    counts = await store.purge_older_than(cutoff)
    record = await store.get_action("evt_1:b:callback")
    assert counts["actions_masked"] == 0
    assert record is not None and record.detail == detail


async def test_purge_masks_an_action_once(store: Store) -> None:
    """A second purge finds nothing more to mask in an action it masked before."""
    await store.claim_action("evt_1:b:notify", event_id="evt_1", bot="b", kind="notify",
                             detail={"title": "Voicemail from Ana Popescu"})
    cutoff = await moment_between()
    await store.purge_older_than(cutoff)
    assert (await store.purge_older_than(cutoff))["actions_masked"] == 0


# the daily job


class CountingStore:
    """A store's claims and purges, counted: one process's view in the daily job's tests."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.claims = 0
        self.purges: list[datetime] = []

    async def claim_once(self, name: str) -> bool:
        won = await self._store.claim_once(name)
        self.claims += 1
        return won

    async def purge_older_than(self, cutoff: datetime) -> dict[str, int]:
        self.purges.append(cutoff)
        return await self._store.purge_older_than(cutoff)


async def test_daily_job_purges_once_a_day_across_processes(make_store: StoreFactory) -> None:
    """Two processes' runners ticking many times a day purge once that day, and once the next."""
    today = datetime(2026, 4, 23, 3, 0, tzinfo=UTC)
    clock = {"now": today}
    stores = [CountingStore(await make_store()) for _ in range(2)]
    jobs = [RetentionJob(s, 90, clock=lambda: clock["now"], interval_seconds=0.005)
            for s in stores]
    for job in jobs:
        await job.start()
    try:
        await wait_until(lambda: all(s.claims >= 3 for s in stores), message="three ticks each")
        assert [cutoff for s in stores for cutoff in s.purges] == [today - timedelta(days=90)]
        clock["now"] = today + timedelta(days=1)
        ticks = [s.claims for s in stores]
        await wait_until(lambda: all(s.claims >= t + 3 for s, t in zip(stores, ticks, strict=True)),
                         message="three more ticks each")
        assert sorted(cutoff for s in stores for cutoff in s.purges) == [
            today - timedelta(days=90), today - timedelta(days=89)]
    finally:
        for job in jobs:
            await job.stop()


async def test_daily_job_logs_the_counts(store: Store) -> None:
    """The process that purges logs one retention.purged line with what it removed."""
    job = RetentionJob(store, 90)
    with capture_logs() as logs:
        await job.run_once()
        await job.run_once()
    purged = [entry for entry in logs if entry["event"] == "retention.purged"]
    assert len(purged) == 1
    assert purged[0]["retention_days"] == 90
    assert purged[0]["events"] == 0 and "actions_masked" in purged[0]


def test_daily_job_refuses_fewer_than_one_day() -> None:
    """Zero days of retention is refused at construction, before any row could go."""
    with pytest.raises(ConfigError, match="AGENTKIT_RETENTION_DAYS"):
        RetentionJob(SqliteStore(":memory:"), 0)
