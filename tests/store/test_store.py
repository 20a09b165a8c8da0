"""The store's contract, run on every engine."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from agentkit.store import BotRun, JobSpec, NewEvent, Store
from agentkit.store.schema import CURRENT_VERSION
from agentkit.testing import wait_until
from tests.stores import StoreFactory

T0 = datetime(2026, 4, 23, 10, 12, 45, tzinfo=UTC)


def event(n: int, *, call: str | None = "cal_1", routable: bool = True,
          type: str = "call.completed") -> NewEvent:
    return NewEvent(id=f"evt_{n}", type=type, created_at=T0 + timedelta(seconds=n),
                    call_id=call, body=b'{"n": %d}' % n, routable=routable)


async def route_all(store: Store, bots: list[str]) -> None:
    """Finish every due route job, adding a bot job per bot (as the dispatcher does)."""
    for job in await store.lease("router", 100, 30):
        assert job.kind == "route"
        await store.finish(job, follow_ups=[JobSpec("bot", job.event_id, bot=b) for b in bots])


# schema


async def test_migrates_to_current_version(store: Store) -> None:
    """A new store is at the current schema version."""
    assert await store.schema_version() == CURRENT_VERSION


async def test_reopening_keeps_data(make_store: StoreFactory) -> None:
    """Opening an existing store migrates nothing and keeps what it holds."""
    first = await make_store()
    await first.add_events([event(1)])
    await first.close()
    second = await make_store()
    assert await second.schema_version() == CURRENT_VERSION
    assert await second.count_events() == 1


async def test_concurrent_opens_migrate_once(make_store: StoreFactory) -> None:
    """Several processes starting at once all end up on one schema, migrated once."""
    stores = await asyncio.gather(*(make_store() for _ in range(5)))
    assert {await s.schema_version() for s in stores} == {CURRENT_VERSION}
    await stores[0].add_events([event(1)])
    assert await stores[4].count_events() == 1


async def test_ping(store: Store) -> None:
    """An open store answers a ping."""
    await store.ping()


# events


async def test_add_event_once(store: Store) -> None:
    """An event is new the first time and a redelivery the second; it is stored once."""
    assert await store.add_events([event(1)]) == [True]
    assert await store.add_events([event(1)]) == [False]
    assert await store.count_events() == 1
    stored = await store.get_event("evt_1")
    assert stored is not None
    assert stored.body == b'{"n": 1}'
    assert stored.created_at == T0 + timedelta(seconds=1)
    assert stored.call_id == "cal_1"


async def test_batch_with_duplicates(store: Store) -> None:
    """A batch reports, per event, whether it was new, even with a repeat inside the batch."""
    await store.add_events([event(1)])
    assert await store.add_events([event(2), event(1), event(3), event(2)]) == [
        True, False, True, False
    ]
    assert await store.count_events() == 3


async def test_routable_events_get_one_route_job(store: Store) -> None:
    """A routable event gets one route job; an unroutable one is stored without any."""
    await store.add_events([event(1), event(2, routable=False, type="x.unknown")])
    await store.add_events([event(1)])
    assert [(j.kind, j.state) for j in await store.jobs_for_event("evt_1")] == [
        ("route", "pending")
    ]
    assert await store.jobs_for_event("evt_2") == []
    assert (await store.job_counts())["pending"] == 1


async def test_unknown_event(store: Store) -> None:
    """Looking up an unknown event id gives None."""
    assert await store.get_event("evt_nope") is None


# leases


async def test_lease_takes_due_jobs_once(store: Store) -> None:
    """A leased job is not leased again while its lease holds, and counts an attempt."""
    await store.add_events([event(1, call=None), event(2, call=None)])
    first = await store.lease("w1", 10, 30)
    assert sorted(j.event_id for j in first) == ["evt_1", "evt_2"]
    assert all(j.attempts == 1 and j.lease_owner == "w1" for j in first)
    assert first[0].event_body.startswith(b'{"n"')
    assert await store.lease("w2", 10, 30) == []
    assert (await store.job_counts())["running"] == 2


async def test_lease_respects_limit(store: Store) -> None:
    """No more jobs are leased than asked for."""
    await store.add_events([event(n, call=None) for n in range(5)])
    assert len(await store.lease("w1", 2, 30)) == 2
    assert len(await store.lease("w1", 0, 30)) == 0


async def test_lease_by_kind(store: Store) -> None:
    """A route lease takes only route jobs; a work lease only bot jobs and tasks."""
    await store.add_events([event(1, call=None), event(2, call=None)])
    await route_all(store, ["a"])
    await store.add_events([event(3, call=None)])
    work = await store.lease("w1", 10, 30, kinds="work")
    assert [(j.kind, j.event_id) for j in work] == [("bot", "evt_1"), ("bot", "evt_2")]
    routes = await store.lease("w1", 10, 30, kinds="route")
    assert [(j.kind, j.event_id) for j in routes] == [("route", "evt_3")]
    assert await store.lease("w1", 10, 30) == []


async def test_finish_many_adds_follow_ups_of_held_jobs(store: Store) -> None:
    """finish_many finishes each held job with its follow-ups; a lost lease finishes nothing."""
    await store.add_events([event(n) for n in (1, 2, 3)])
    first, second, third = await store.lease("w1", 3, 30)
    stale = dataclasses.replace(first, attempts=0)
    results = await store.finish_many([
        (stale, [JobSpec("bot", "evt_1", bot="a")]),
        (second, [JobSpec("bot", "evt_2", bot="a"), JobSpec("bot", "evt_2", bot="b")]),
        (third, []),
    ])
    assert results == [False, True, True]
    assert [(j.kind, j.state) for j in await store.jobs_for_event("evt_1")] == [
        ("route", "running")
    ]
    assert [(j.kind, j.bot, j.state) for j in await store.jobs_for_event("evt_2")] == [
        ("route", None, "done"), ("bot", "a", "pending"), ("bot", "b", "pending")
    ]
    assert [j.state for j in await store.jobs_for_event("evt_3")] == ["done"]
    assert await store.finish_many([]) == []


async def test_expired_lease_is_taken_over(store: Store) -> None:
    """A job whose worker stopped extending its lease is leased again by another."""
    await store.add_events([event(1)])
    (lost,) = await store.lease("w1", 1, 0.05)
    again = await wait_until(lambda: store.lease("w2", 1, 30), timeout=5,
                             message="the lease to expire")
    assert again[0].id == lost.id
    assert again[0].attempts == 2
    assert not await store.finish(lost)
    assert await store.finish(again[0])


async def test_extend_keeps_the_lease(store: Store) -> None:
    """Extending a lease keeps others from taking the job."""
    await store.add_events([event(1, call="cal_1"), event(2, call="cal_2")])
    kept, dropped = await store.lease("w1", 2, 2)
    assert await store.extend(kept, 30)
    # The lease taken with it but not extended runs out first: from then on, only
    # extend() keeps the other job from w2.
    taken = await wait_until(lambda: store.lease("w2", 2, 30), timeout=15,
                             message="the lease not extended to run out")
    assert [job.id for job in taken] == [dropped.id]
    assert await store.lease("w2", 2, 30) == []


async def test_finish_adds_follow_ups_once(store: Store) -> None:
    """Finishing a route job adds its bot jobs; the same follow-ups are never added twice."""
    await store.add_events([event(1)])
    (route,) = await store.lease("w1", 1, 30)
    specs = [JobSpec("bot", "evt_1", bot="a"), JobSpec("bot", "evt_1", bot="b")]
    assert await store.finish(route, follow_ups=specs)
    assert not await store.finish(route, follow_ups=specs)
    jobs = await store.jobs_for_event("evt_1")
    assert [(j.kind, j.bot, j.state) for j in jobs] == [
        ("route", None, "done"), ("bot", "a", "pending"), ("bot", "b", "pending")
    ]


async def test_retry_waits_until_run_at(store: Store) -> None:
    """A retried job keeps its error and is not leased before its run_at."""
    await store.add_events([event(1)])
    (job,) = await store.lease("w1", 1, 30)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await store.retry(job, "boom", later)
    assert await store.lease("w1", 1, 30) == []
    (record,) = await store.jobs_for_event("evt_1")
    assert (record.state, record.last_error, record.attempts) == ("pending", "boom", 1)


async def test_retry_soon_is_leased_again(store: Store) -> None:
    """A job retried for now is leased again with its attempt count and last error."""
    await store.add_events([event(1)])
    (job,) = await store.lease("w1", 1, 30)
    await store.retry(job, "boom", datetime.now(UTC))
    (again,) = await store.lease("w1", 1, 30)
    assert (again.attempts, again.last_error) == (2, "boom")


async def test_dead_letter(store: Store) -> None:
    """A dead-lettered job keeps its error and is never leased again."""
    await store.add_events([event(1)])
    (job,) = await store.lease("w1", 1, 30)
    assert await store.dead_letter(job, "gave up: boom")
    assert await store.lease("w1", 1, 30) == []
    (record,) = await store.jobs_for_event("evt_1")
    assert (record.state, record.last_error) == ("dead", "gave up: boom")
    assert (await store.job_counts())["dead"] == 1


async def test_lost_on_last_attempt_is_dead(store: Store) -> None:
    """A job whose worker dies on its last attempt is dead-lettered, not run again."""
    await store.add_events([event(1)])
    (route,) = await store.lease("w1", 1, 30)
    await store.finish(route, follow_ups=[JobSpec("bot", "evt_1", bot="a", max_attempts=1)])
    (job,) = await store.lease("w1", 1, 0.05)
    assert job.last_attempt

    async def dead_not_rerun() -> bool:
        assert await store.lease("w2", 1, 30) == []
        states = {j.bot: j.state for j in await store.jobs_for_event("evt_1")}
        return states["a"] == "dead"

    await wait_until(dead_not_rerun, timeout=5, message="the lost job to be dead-lettered")


async def test_hand_back_does_not_count(store: Store) -> None:
    """A job handed back at shutdown is due again at once, its attempt not counted."""
    await store.add_events([event(1)])
    (job,) = await store.lease("w1", 1, 30)
    assert await store.hand_back(job)
    (again,) = await store.lease("w2", 1, 30)
    assert again.attempts == 1


async def test_stale_holder_cannot_change_a_job(store: Store) -> None:
    """Once another worker holds a job, the old holder can neither finish nor retry it."""
    await store.add_events([event(1)])
    (old,) = await store.lease("w1", 1, 0.05)
    (new,) = await wait_until(lambda: store.lease("w2", 1, 30), timeout=5)
    assert not await store.finish(old)
    assert not await store.retry(old, "late", datetime.now(UTC))
    assert not await store.dead_letter(old, "late")
    assert not await store.hand_back(old)
    assert not await store.extend(old, 30)
    assert await store.finish(new)


# one call's events in order


async def test_bot_sees_a_calls_events_in_order(store: Store) -> None:
    """A bot's job for a call's later event waits until its job for the earlier one is done."""
    await store.add_events([event(1), event(2)])
    await route_all(store, ["a", "b"])
    leased = await store.lease("w1", 10, 30)
    assert sorted((j.event_id, j.bot) for j in leased) == [("evt_1", "a"), ("evt_1", "b")]
    first_a = next(j for j in leased if j.bot == "a")
    await store.finish(first_a)
    (next_a,) = await store.lease("w1", 10, 30)
    assert (next_a.event_id, next_a.bot) == ("evt_2", "a")


async def test_earlier_route_job_blocks_later_bot_jobs(store: Store) -> None:
    """A later event's bot job waits while an earlier event of the call is not routed yet."""
    await store.add_events([event(1)])
    (route_1,) = await store.lease("slow-router", 1, 30)
    await store.add_events([event(2)])
    (route_2,) = await store.lease("w1", 1, 30)
    await store.finish(route_2, follow_ups=[JobSpec("bot", "evt_2", bot="a")])
    assert await store.lease("w1", 10, 30) == []
    await store.finish(route_1, follow_ups=[JobSpec("bot", "evt_1", bot="a")])
    (job,) = await store.lease("w1", 10, 30)
    assert job.event_id == "evt_1"


async def test_other_calls_do_not_wait(store: Store) -> None:
    """Events of different calls, and events with no call, are handled in parallel."""
    await store.add_events([event(1, call="cal_1"), event(2, call="cal_2"), event(3, call=None)])
    await route_all(store, ["a"])
    assert len(await store.lease("w1", 10, 30)) == 3


async def test_dead_job_does_not_block_the_call(store: Store) -> None:
    """A dead-lettered job of an earlier event lets the call's later events go on."""
    await store.add_events([event(1), event(2)])
    await route_all(store, ["a"])
    (first,) = await store.lease("w1", 10, 30)
    await store.dead_letter(first, "boom")
    (second,) = await store.lease("w1", 10, 30)
    assert second.event_id == "evt_2"


async def test_delayed_tasks_do_not_block_the_call(store: Store) -> None:
    """A task scheduled for later never holds back the call's other events."""
    await store.add_events([event(1), event(2)])
    await store.add_jobs([JobSpec("task", "evt_1", bot="a", name="callback",
                                  run_at=datetime.now(UTC) + timedelta(hours=2))])
    await route_all(store, ["a"])
    leased = {(j.event_id, j.kind) for j in await store.lease("w1", 10, 30)}
    assert leased == {("evt_1", "bot")}


async def test_add_jobs_is_idempotent(store: Store) -> None:
    """Adding the same task twice gives one job and the same id."""
    await store.add_events([event(1)])
    spec = JobSpec("task", "evt_1", bot="a", name="callback", payload={"to": "+442079460000"})
    first = await store.add_jobs([spec])
    second = await store.add_jobs([spec])
    assert first == second
    assert len([j for j in await store.jobs_for_event("evt_1") if j.kind == "task"]) == 1


async def test_task_payload_round_trips(store: Store) -> None:
    """A task's payload comes back with its lease."""
    await store.add_events([event(1, routable=False)])
    await store.add_jobs([JobSpec("task", "evt_1", bot="a", name="t", payload={"k": [1, "x"]})])
    (job,) = await store.lease("w1", 1, 30)
    assert (job.kind, job.name, job.payload) == ("task", "t", {"k": [1, "x"]})


async def test_concurrent_leasers_never_share_a_job(make_store: StoreFactory) -> None:
    """Two stores on one database, leasing at once, never get the same job."""
    one, two = await make_store(), await make_store()
    await one.add_events([event(n, call=None) for n in range(60)])
    got: list[int] = []

    async def drain(store: Store, owner: str) -> None:
        while True:
            jobs = await store.lease(owner, 3, 30)
            if not jobs:
                return
            got.extend(j.id for j in jobs)
            for job in jobs:
                await store.finish(job)

    await asyncio.gather(drain(one, "w1"), drain(two, "w2"))
    assert len(got) == len(set(got)) == 60


# bot runs and actions


async def test_bot_runs_recorded(store: Store) -> None:
    """Bot runs are kept per event with their outcome and token use."""
    await store.add_events([event(1)])
    run = BotRun(job_id=1, event_id="evt_1", bot="a", attempt=1, started_at=T0,
                 finished_at=T0 + timedelta(seconds=2), outcome="ok", prompt_tokens=120,
                 completion_tokens=30, cost_usd=0.0004)
    await store.record_bot_run(run)
    assert await store.bot_runs("evt_1") == [run]


async def test_action_claimed_once(store: Store) -> None:
    """The first claim of an action key wins; later claims see the recorded action."""
    record, created = await store.claim_action(
        "evt_1:a:callback", event_id="evt_1", bot="a", kind="callback", detail={"to": "+44"}
    )
    assert created and record.state == "started"
    again, created_again = await store.claim_action(
        "evt_1:a:callback", event_id="evt_1", bot="a", kind="callback", detail={"to": "other"}
    )
    assert not created_again
    assert again.detail == {"to": "+44"}


async def test_action_settled(store: Store) -> None:
    """Settling an action records its end and merges what it learnt."""
    await store.claim_action("k", event_id="evt_1", bot="a", kind="callback", detail={"a": 1})
    done = await store.settle_action("k", "done", {"call_id": "cal_9"})
    assert done.state == "done"
    assert done.detail == {"a": 1, "call_id": "cal_9"}
    assert await store.get_action("k") == done
    assert [a.key for a in await store.actions_for_event("evt_1")] == ["k"]


async def test_settling_an_unknown_action_fails(store: Store) -> None:
    """An action must be claimed before it is settled."""
    from agentkit.store import StoreError

    with pytest.raises(StoreError, match="claim"):
        await store.settle_action("nope", "done", {})


# model answers, joins, placed calls


async def test_cached_answer_round_trips(store: Store) -> None:
    """A kept answer comes back for its key; the first one kept stays."""
    from agentkit.store import CachedAnswer

    first = CachedAnswer("k1", "gpt-x", '{"a": 1}', 120, 30)
    await store.cache_answer(first)
    await store.cache_answer(CachedAnswer("k1", "gpt-x", '{"a": 2}', 1, 1))
    assert await store.cached_answer("k1") == first
    assert await store.cached_answer("k2") is None


async def test_join_collects_events_and_fires_once(store: Store) -> None:
    """A join gathers event types in any order and fires for one caller only."""
    state = await store.join_arrive("bot|h|cal_1", "transcript.ready", "evt_2")
    assert state.events == {"transcript.ready": "evt_2"} and not state.fired
    state = await store.join_arrive("bot|h|cal_1", "voicemail.received", "evt_1")
    assert state.events == {"transcript.ready": "evt_2", "voicemail.received": "evt_1"}
    assert await store.join_fire("bot|h|cal_1", "job-7")
    assert await store.join_fire("bot|h|cal_1", "job-7")  # its own retry may fire again
    assert not await store.join_fire("bot|h|cal_1", "job-8")
    final = await store.join_state("bot|h|cal_1")
    assert final is not None and final.fired
    assert await store.join_state("other") is None


async def test_placed_calls_counted_per_number(store: Store) -> None:
    """Calls agentkit placed are found by call id and counted per number since a time."""
    from agentkit.store import PlacedCall

    now = datetime.now(UTC)
    await store.record_placed_call(PlacedCall("cal_a", "k", "+442079460000", 1,
                                              now - timedelta(days=2)))
    await store.record_placed_call(PlacedCall("cal_b", "k", "+442079460000", 2, now))
    await store.record_placed_call(PlacedCall("cal_c", "k2", "+442079460001", 1, now))
    found = await store.placed_call("cal_b")
    assert found is not None and (found.action_key, found.attempt) == ("k", 2)
    assert await store.placed_call("cal_zzz") is None
    since = now - timedelta(days=1)
    assert await store.count_placed_calls("+442079460000", since) == 1
    assert await store.count_placed_calls("+442079460001", since) == 1


async def test_call_completed_event_found_by_call(store: Store) -> None:
    """A call's first routable call.completed is found by its call id; other events are not."""
    await store.add_events([
        event(1, call="cal_x", type="call.initiated"),
        event(2, call="cal_y", routable=False),
        event(3, call="cal_x"),
        event(4, call="cal_x"),
    ])
    assert await store.call_completed_event("cal_x") == "evt_3"
    assert await store.call_completed_event("cal_y") is None
    assert await store.call_completed_event("cal_z") is None


async def test_rotation_counts_per_name(make_store: StoreFactory) -> None:
    """Rotation counters give 0, 1, 2, ... per name, across stores on one database."""
    one, two = await make_store(), await make_store()
    assert [await one.next_in_rotation("team-a"), await two.next_in_rotation("team-a"),
            await one.next_in_rotation("team-a")] == [0, 1, 2]
    assert await two.next_in_rotation("team-b") == 0


async def test_due_scheduled_and_rescheduled(store: Store) -> None:
    """Jobs due later are listed as scheduled, not due, until moved to now."""
    await store.add_events([event(1, routable=False)])
    later = datetime.now(UTC) + timedelta(hours=3)
    (job_id,) = await store.add_jobs([JobSpec("task", "evt_1", bot="a", name="callback:k:1",
                                              run_at=later)])
    await store.add_jobs([JobSpec("task", "evt_1", bot="a", name="other", run_at=later)])
    assert await store.count_due() == 0
    assert [j.name for j in await store.scheduled("callback:")] == ["callback:k:1"]
    assert await store.reschedule(job_id, datetime.now(UTC))
    assert await store.count_due() == 1
    assert [j.name for j in await store.scheduled()] == ["other"]


async def test_actions_of_kind_newest_first(store: Store) -> None:
    """Actions of one kind (and bot) come newest first."""
    for n in range(3):
        await store.claim_action(f"k{n}", event_id=f"evt_{n}", bot="a", kind="attach_number",
                                 detail={"n": n})
        await store.settle_action(f"k{n}", "done", {})
    await store.claim_action("other", event_id="evt_9", bot="b", kind="attach_number", detail={})
    await store.claim_action("x", event_id="evt_9", bot="a", kind="notify", detail={})
    assert [a.key for a in await store.actions_of_kind("attach_number", bot="a")] == [
        "k2", "k1", "k0"
    ]
    assert len(await store.actions_of_kind("attach_number")) == 4


async def test_jobs_in_state_lists_dead_letters(store: Store) -> None:
    """Dead-lettered jobs are listed with their last error."""
    await store.add_events([event(1), event(2, call="cal_2")])
    for job in await store.lease("w1", 10, 30):
        await store.dead_letter(job, f"boom {job.event_id}")
    dead = await store.jobs_in_state("dead")
    assert sorted(j.last_error or "" for j in dead) == ["boom evt_1", "boom evt_2"]
    assert await store.jobs_in_state("running") == []
