"""The queue depth: jobs by state, leaving out join timers still waiting for their timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentkit.runtime.dispatch import JOIN_TIMEOUT
from agentkit.store import JobSpec, NewEvent, Store


async def stored_event(store: Store) -> str:
    """An event with no route job of its own, for tasks to hang on."""
    await store.add_events([NewEvent(id="evt_1", type="voicemail.received",
                                     created_at=datetime.now(UTC), call_id="cal_1",
                                     body=b"{}", routable=False)])
    return "evt_1"


def timer(event_id: str, run_at: datetime) -> JobSpec:
    """A join timer as the dispatcher adds it."""
    return JobSpec("task", event_id, bot="voicemail", name=f"{JOIN_TIMEOUT}:call_back",
                   payload={"key": "voicemail|call_back|cal_1"}, run_at=run_at)


async def test_waiting_join_timer_is_not_pending(store: Store) -> None:
    """A join timer whose timeout is still ahead is left out of the pending count."""
    event_id = await stored_event(store)
    await store.add_jobs([timer(event_id, datetime.now(UTC) + timedelta(minutes=15))])
    assert (await store.job_counts())["pending"] == 0


async def test_due_join_timer_is_pending(store: Store) -> None:
    """A join timer whose timeout has passed is work to do, and counts as pending."""
    event_id = await stored_event(store)
    await store.add_jobs([timer(event_id, datetime.now(UTC) - timedelta(seconds=1))])
    assert (await store.job_counts())["pending"] == 1


async def test_other_delayed_task_is_pending(store: Store) -> None:
    """A delayed task that is not a join timer still counts as pending before it is due."""
    event_id = await stored_event(store)
    await store.add_jobs([JobSpec("task", event_id, bot="voicemail", name="callback:1",
                                  run_at=datetime.now(UTC) + timedelta(minutes=15))])
    assert (await store.job_counts())["pending"] == 1
