"""The store's reads for ``ctx.history`` and the dead-letter retry, on every engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentkit.store import NewEvent, Store

T0 = datetime(2026, 4, 23, 10, 12, 45, tzinfo=UTC)


def event(n: int, call: str | None) -> NewEvent:
    return NewEvent(id=f"evt_{n}", type="call.completed", created_at=T0 + timedelta(seconds=n),
                    call_id=call, body=b'{"n": %d}' % n, routable=True)


async def test_retry_dead_puts_the_job_back_once(store: Store) -> None:
    """A dead job is queued again, due now with its attempts reset; a second retry finds none."""
    await store.add_events([event(1, "cal_1")])
    (job,) = await store.lease("w1", 1, 30)
    await store.dead_letter(job, "boom")
    assert await store.retry_dead(job.id)
    (record,) = await store.jobs_for_event("evt_1")
    assert (record.state, record.attempts) == ("pending", 0)
    (again,) = await store.lease("w1", 1, 30)
    assert again.id == job.id
    assert not await store.retry_dead(job.id)


async def test_retry_dead_leaves_other_jobs_alone(store: Store) -> None:
    """Only a dead job can be retried: a pending or unknown id is refused."""
    await store.add_events([event(1, "cal_1")])
    (record,) = await store.jobs_for_event("evt_1")
    assert not await store.retry_dead(record.id)
    assert not await store.retry_dead(999_999)


async def test_actions_for_call_gathers_every_event_of_the_call(store: Store) -> None:
    """The actions on any event of a call come back, oldest first; other calls' do not."""
    await store.add_events([event(1, "cal_1"), event(2, "cal_1"), event(3, "cal_2")])
    for key, event_id in (("k1", "evt_1"), ("k2", "evt_2"), ("k3", "evt_3")):
        await store.claim_action(key, event_id=event_id, bot="b", kind="notify", detail={})
    assert [a.key for a in await store.actions_for_call("cal_1")] == ["k1", "k2"]
    assert [a.key for a in await store.actions_for_call("cal_2")] == ["k3"]
    assert await store.actions_for_call("cal_9") == []


async def test_a_finished_action_is_not_started_again(store: Store) -> None:
    """A late 'started' settle (a callback's 'placed' written after its outcome) leaves a
    done action done, with its detail."""
    await store.add_events([event(1, "cal_1")])
    await store.claim_action("k1", event_id="evt_1", bot="b", kind="callback", detail={})
    await store.settle_action("k1", "done", {"state": "reached"})
    record = await store.settle_action("k1", "started", {"state": "placed"})
    assert (record.state, record.detail["state"]) == ("done", "reached")
    again = await store.get_action("k1")
    assert again is not None and (again.state, again.detail["state"]) == ("done", "reached")


async def test_a_started_action_still_takes_progress(store: Store) -> None:
    """An action still started takes a 'started' settle's detail (its progress)."""
    await store.add_events([event(1, "cal_1")])
    await store.claim_action("k1", event_id="evt_1", bot="b", kind="callback", detail={})
    record = await store.settle_action("k1", "started", {"state": "placed"})
    assert (record.state, record.detail["state"]) == ("started", "placed")
