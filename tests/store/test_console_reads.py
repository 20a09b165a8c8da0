"""The console's reads on every engine: calls, their timelines, dead letters, health."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from agentkit.store import (
    BotRun,
    CallCursor,
    CallQuery,
    JobSpec,
    ModelAnswer,
    NewEvent,
    Store,
    dead_error,
)
from agentkit.store.base import CallOutcomeFilter, DialClaim
from agentkit.store.postgres import PostgresStore
from agentkit.store.privacy import ERASE_COUNTS, ERASED, PURGE_COUNTS
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import wait_until
from tests.stores import StoreFactory

T0 = datetime(2026, 4, 23, 10, 0, 0, tzinfo=UTC)
CALLER = "+442079460000"
OURS = "+40264000111"


def call_event(name: str, call: str, *, at: int = 0, type: str = "call.completed",
               from_: str | None = CALLER, to: str | None = OURS,
               direction: str | None = "inbound", routable: bool = True) -> NewEvent:
    """An event of ``call`` created ``at`` seconds after T0, naming the numbers given."""
    data: dict[str, Any] = {"id": call}
    for field, value in (("from", from_), ("to", to), ("direction", direction)):
        if value is not None:
            data[field] = value
    body = {"id": name, "type": type, "created_at": "2026-04-23T10:00:00Z", "data": data}
    return NewEvent(id=name, type=type, created_at=T0 + timedelta(seconds=at), call_id=call,
                    body=json.dumps(body).encode(), routable=routable, from_number=from_,
                    to_number=to, direction=direction)


async def calls_listed(store: Store, query: CallQuery | None = None, **page: Any) -> list[str]:
    return [row.call_id for row in await store.list_calls(query or CallQuery(), **page)]


async def route_all(store: Store, bots: list[str]) -> None:
    """Finish every due route job, adding a bot job per bot (as the dispatcher does)."""
    for job in await store.lease("router", 100, 30, kinds="route"):
        await store.finish(job, follow_ups=[JobSpec("bot", job.event_id, bot=b) for b in bots])


async def dead_letter_all(store: Store, error: str) -> None:
    """Give up on every due bot job with ``error``."""
    for job in await store.lease("worker", 100, 30, kinds="work"):
        assert await store.dead_letter(job, error)


async def act(store: Store, event_id: str, kind: str, state: str | None = None,
              outcome: str | None = None, *, name: str = "") -> str:
    """Record an action on an event, settled as given (or left started)."""
    key = f"{event_id}:bot:{kind}{name}"
    await store.claim_action(key, event_id=event_id, bot="bot", kind=kind, detail={"to": CALLER})
    if state is not None:
        await store.settle_action(key, state, {"outcome": outcome})  # type: ignore[arg-type]
    return key


def model_answer(event_id: str, *, at: datetime = T0, cost: float = 0.01,
                 answer: str = '{"urgency": "high"}') -> ModelAnswer:
    return ModelAnswer(event_id=event_id, bot="triage", task="extract", model="gpt-4o-mini",
                       prompt_tokens=100, completion_tokens=20, cost_usd=cost, cached=False,
                       answer=answer, created_at=at)


# the calls table


async def test_calls_listed_newest_first(store: Store) -> None:
    """Calls come newest first by the time their first event was created."""
    await store.add_events([call_event("e1", "cal_a", at=1), call_event("e2", "cal_c", at=3),
                            call_event("e3", "cal_b", at=2)])
    assert await calls_listed(store) == ["cal_c", "cal_b", "cal_a"]


async def test_next_page_starts_after_the_cursor(store: Store) -> None:
    """A page asked for before the last call of the page before goes on from there."""
    await store.add_events([call_event(f"e{n}", f"cal_{n}", at=n) for n in range(5)])
    first = await store.list_calls(CallQuery(), limit=2)
    cursor = CallCursor(first[-1].started_at, first[-1].call_id)
    assert [row.call_id for row in first] == ["cal_4", "cal_3"]
    assert await calls_listed(store, before=cursor, limit=2) == ["cal_2", "cal_1"]


async def test_calls_started_together_page_by_call_id(store: Store) -> None:
    """Calls started at the same moment are ordered by call id, and a page boundary between
    them loses none."""
    await store.add_events([call_event(f"e{n}", f"cal_{n}", at=7) for n in range(4)])
    first = await store.list_calls(CallQuery(), limit=3)
    rest = await calls_listed(store, before=CallCursor(first[-1].started_at, first[-1].call_id))
    assert [row.call_id for row in first] + rest == ["cal_3", "cal_2", "cal_1", "cal_0"]


async def test_batch_with_two_events_of_one_call_makes_one_row(store: Store) -> None:
    """Two events of one call in one batch make one row counting both, from the earlier."""
    await store.add_events([call_event("e2", "cal_a", at=5), call_event("e1", "cal_a", at=2)])
    row = await store.get_call("cal_a")
    assert row is not None
    assert (row.events, row.started_at) == (2, T0 + timedelta(seconds=2))
    assert (row.from_number, row.to_number, row.direction) == (CALLER, OURS, "inbound")


async def test_later_batches_add_to_a_call(store: Store) -> None:
    """A call's row counts events of later batches, and starts at the earliest created."""
    await store.add_events([call_event("e1", "cal_a", at=5)])
    first = await store.get_call("cal_a")
    await store.add_events([call_event("e2", "cal_a", at=1)])
    row = await store.get_call("cal_a")
    assert first is not None and row is not None
    assert (row.events, row.started_at) == (2, T0 + timedelta(seconds=1))
    assert row.last_at >= first.last_at


async def test_numbers_kept_from_the_first_event_that_has_them(store: Store) -> None:
    """A call keeps the numbers of the first event naming them; later events change nothing."""
    await store.add_events([
        call_event("e1", "cal_a", type="recording.ready", from_=None, to=None, direction=None),
        call_event("e2", "cal_a", from_="+442079460001", to=None),
    ])
    await store.add_events([call_event("e3", "cal_a", from_="+442079460002", to=OURS,
                                       direction="outbound")])
    row = await store.get_call("cal_a")
    assert row is not None
    assert (row.from_number, row.to_number, row.direction) == ("+442079460001", OURS, "inbound")


async def test_event_without_a_call_makes_no_row(store: Store) -> None:
    """An event of no call is stored without a call row."""
    event = call_event("e1", "cal_a")
    await store.add_events([NewEvent(event.id, event.type, event.created_at, None, event.body,
                                     True)])
    assert await calls_listed(store) == []


async def test_unknown_call(store: Store) -> None:
    """A call id the store never saw gives None."""
    assert await store.get_call("cal_nope") is None


# events and redeliveries


async def test_redeliveries_counted(store: Store) -> None:
    """An event delivered again is counted on the stored one, in a later batch or the same."""
    await store.add_events([call_event("e1", "cal_a"), call_event("e1", "cal_a")])
    await store.add_events([call_event("e1", "cal_a"), call_event("e2", "cal_a")])
    events = await store.events_of_call("cal_a")
    assert [(e.id, e.duplicates) for e in events] == [("e1", 2), ("e2", 0)]


async def test_redelivery_adds_nothing_to_the_call(store: Store) -> None:
    """A redelivered event is not counted again on its call."""
    await store.add_events([call_event("e1", "cal_a")])
    await store.add_events([call_event("e1", "cal_a")])
    row = await store.get_call("cal_a")
    assert row is not None and row.events == 1


async def test_events_of_call_in_the_order_received(store: Store) -> None:
    """A call's deliveries come in the order they were stored, with their type and times."""
    await store.add_events([call_event("e2", "cal_a", at=5)])
    await store.add_events([call_event("e1", "cal_a", at=1, type="call.initiated",
                                       routable=False)])
    events = await store.events_of_call("cal_a")
    assert [(e.id, e.type, e.routable) for e in events] == [
        ("e2", "call.completed", True), ("e1", "call.initiated", False)]
    assert events[1].created_at == T0 + timedelta(seconds=1)
    assert events[0].received_at <= events[1].received_at


# filters


async def test_filter_by_number_from_or_to(store: Store) -> None:
    """A number filter finds calls from it and calls to it, each once."""
    await store.add_events([
        call_event("e1", "cal_from", at=1, from_="+442079460001"),
        call_event("e2", "cal_to", at=2, from_=OURS, to="+442079460001"),
        call_event("e3", "cal_both", at=3, from_="+442079460001", to="+442079460001"),
        call_event("e4", "cal_other", at=4, from_="+442079460002"),
    ])
    query = CallQuery(numbers=("+442079460001",))
    assert await calls_listed(store, query) == ["cal_both", "cal_to", "cal_from"]


async def test_filter_by_any_of_several_numbers_pages(store: Store) -> None:
    """Calls of any of several numbers come newest first, page after page."""
    numbers = ("+442079460001", "+442079460002")
    await store.add_events([
        call_event(f"e{n}", f"cal_{n}", at=n, from_=numbers[n % 2]) for n in range(5)
    ] + [call_event("e9", "cal_9", at=9, from_="+442079460003")])
    first = await store.list_calls(CallQuery(numbers=numbers), limit=3)
    cursor = CallCursor(first[-1].started_at, first[-1].call_id)
    rest = await calls_listed(store, CallQuery(numbers=numbers), before=cursor, limit=3)
    assert [row.call_id for row in first] + rest == ["cal_4", "cal_3", "cal_2", "cal_1",
                                                     "cal_0"]


async def test_filter_by_call_id(store: Store) -> None:
    """A call id filter finds that call only."""
    await store.add_events([call_event("e1", "cal_a"), call_event("e2", "cal_b")])
    assert await calls_listed(store, CallQuery(call_id="cal_b")) == ["cal_b"]


async def test_filter_by_bot(store: Store) -> None:
    """A bot filter finds the calls that bot had a job on."""
    await store.add_events([call_event("e1", "cal_a", at=1)])
    await route_all(store, ["triage"])
    await store.add_events([call_event("e2", "cal_b", at=2)])
    await route_all(store, ["summary"])
    assert await calls_listed(store, CallQuery(bot="triage")) == ["cal_a"]
    assert await calls_listed(store, CallQuery(bot="nobody")) == []


async def test_filters_are_and_ed(store: Store) -> None:
    """Filters together find the calls that match every one."""
    await store.add_events([call_event("e1", "cal_a", at=1, from_="+442079460001"),
                            call_event("e2", "cal_b", at=2, from_="+442079460002")])
    await route_all(store, ["triage"])
    query = CallQuery(numbers=("+442079460001",), bot="triage")
    assert await calls_listed(store, query) == ["cal_a"]
    assert await calls_listed(store, CallQuery(numbers=("+442079460001",),
                                               call_id="cal_b")) == []


# Each outcome filter, and the calls it finds among one call per kind of action.
OUTCOMES: dict[CallOutcomeFilter, list[str]] = {
    "reached": ["cal_reached"],
    "unreached": ["cal_refused", "cal_unreached"],
    "cancelled": ["cal_cancelled"],
    "callback": ["cal_cancelled", "cal_escalated", "cal_open", "cal_reached", "cal_refused",
                 "cal_unreached"],
    "escalated": ["cal_escalated", "cal_refused"],
    "note": ["cal_note"],
    "flow": ["cal_flow", "cal_revert"],
    "dead": ["cal_dead"],
}


@pytest.mark.parametrize("outcome", list(OUTCOMES))
async def test_filter_by_outcome(store: Store, outcome: CallOutcomeFilter) -> None:
    """An outcome filter finds the calls whose actions or jobs ended that way."""
    actions = {
        "cal_reached": ("callback", "done", "reached"),
        "cal_unreached": ("callback", "failed", "unreached"),
        "cal_refused": ("escalation", "failed", "refused"),
        "cal_cancelled": ("callback", "done", "cancelled"),
        "cal_open": ("callback", None, None),
        "cal_escalated": ("escalation", "done", "merged"),
        "cal_note": ("notify", "done", "sent"),
        "cal_failed_note": ("notify", "failed", "failed"),
        "cal_flow": ("update_flow", "done", "changed"),
        "cal_revert": ("revert_attach", "done", "reverted"),
    }
    names = [*actions, "cal_dead", "cal_quiet"]
    await store.add_events([call_event(f"e_{name}", name, at=n)
                            for n, name in enumerate(names)])
    await route_all(store, [])
    for name, (kind, state, said) in actions.items():
        await act(store, f"e_{name}", kind, state, said)
    await store.add_jobs([JobSpec("task", "e_cal_dead", bot="triage", name="t")])
    await dead_letter_all(store, "boom")
    assert sorted(await calls_listed(store, CallQuery(outcome=outcome))) == OUTCOMES[outcome]


async def test_outcome_filter_pages(store: Store) -> None:
    """An outcome filter's pages go on after the cursor."""
    await store.add_events([call_event(f"e{n}", f"cal_{n}", at=n) for n in range(4)])
    for n in range(4):
        await act(store, f"e{n}", "escalation")
    first = await store.list_calls(CallQuery(outcome="escalated"), limit=2)
    cursor = CallCursor(first[-1].started_at, first[-1].call_id)
    assert await calls_listed(store, CallQuery(outcome="escalated"), before=cursor) == [
        "cal_1", "cal_0"]


# what happened on a call


async def test_action_recorded_on_its_events_call(store: Store) -> None:
    """An action claimed on an event is found by that event's call."""
    await store.add_events([call_event("e1", "cal_a")])
    key = await act(store, "e1", "callback", "done", "reached")
    activity = await store.call_activity(["cal_a"])
    assert [a.key for a in activity["cal_a"].actions] == [key]


async def test_call_activity(store: Store) -> None:
    """A page's calls each get their actions oldest first, the bots that had jobs on them
    and how many of those died."""
    await store.add_events([call_event("e1", "cal_a", at=1), call_event("e2", "cal_a", at=2),
                            call_event("e3", "cal_b", at=3)])
    await route_all(store, ["triage", "summary"])
    while jobs := await store.lease("worker", 100, 30, kinds="work"):
        for job in jobs:  # a call's later jobs of a bot wait for its earlier ones
            if job.call_id == "cal_a" and job.bot == "triage":
                await store.dead_letter(job, "boom")
            else:
                await store.finish(job)
    first = await act(store, "e2", "callback")
    second = await act(store, "e1", "notify", "done", "sent")
    activity = await store.call_activity(["cal_a", "cal_b", "cal_none"])
    assert [a.key for a in activity["cal_a"].actions] == [first, second]
    assert (activity["cal_a"].bots, activity["cal_a"].dead_jobs) == (["summary", "triage"], 2)
    assert (activity["cal_b"].actions, activity["cal_b"].dead_jobs) == ([], 0)
    assert activity["cal_none"].bots == []


async def test_jobs_of_call(store: Store) -> None:
    """A call's jobs, of every event of it, come by id with the time each last changed."""
    await store.add_events([call_event("e1", "cal_a", at=1), call_event("e2", "cal_b", at=2),
                            call_event("e3", "cal_a", at=3)])
    await route_all(store, ["triage"])
    jobs = await store.jobs_of_call("cal_a")
    assert [(j.event_id, j.kind) for j in jobs] == [
        ("e1", "route"), ("e3", "route"), ("e1", "bot"), ("e3", "bot")]
    assert [j.id for j in jobs] == sorted(j.id for j in jobs)
    assert all(j.updated_at is not None for j in jobs)


async def test_get_job(store: Store) -> None:
    """A job is found by id as it stands; an unknown id gives None."""
    await store.add_events([call_event("e1", "cal_a")])
    (job,) = await store.jobs_for_event("e1")
    found = await store.get_job(job.id)
    assert found is not None and (found.event_id, found.state) == ("e1", "pending")
    assert await store.get_job(job.id + 1000) is None


async def test_bot_runs_of_call(store: Store) -> None:
    """A call's bot runs, of every event of it, come by start time."""
    await store.add_events([call_event("e1", "cal_a"), call_event("e2", "cal_a"),
                            call_event("e3", "cal_b")])
    for n, event_id in ((2, "e1"), (1, "e2"), (0, "e3")):
        start = T0 + timedelta(seconds=n)
        await store.record_bot_run(BotRun(job_id=n, event_id=event_id, bot="triage", attempt=1,
                                          started_at=start, finished_at=start, outcome="ok"))
    assert [r.event_id for r in await store.bot_runs_of_call("cal_a")] == ["e2", "e1"]


async def test_model_answers_of_call(store: Store) -> None:
    """Model answers recorded on a call's events come back oldest first, as recorded."""
    await store.add_events([call_event("e1", "cal_a"), call_event("e2", "cal_b")])
    later = model_answer("e1", at=T0 + timedelta(seconds=5), answer='{"a": 2}')
    await store.record_model_answer(later)
    await store.record_model_answer(model_answer("e1", answer='{"a": 1}'))
    await store.record_model_answer(model_answer("e2"))
    answers = await store.model_answers_of_call("cal_a")
    assert [a.answer for a in answers] == ['{"a": 1}', '{"a": 2}']
    assert answers[1] == later


async def test_open_actions(store: Store) -> None:
    """Open actions of the kinds asked for come oldest first; settled ones and others do not."""
    await store.add_events([call_event("e1", "cal_a")])
    first = await act(store, "e1", "callback", name="1")
    await act(store, "e1", "callback", "done", "reached", name="2")
    await act(store, "e1", "update_flow", name="3")
    second = await act(store, "e1", "escalation", name="4")
    found = await store.open_actions(["callback", "escalation"])
    assert [a.key for a in found] == [first, second]


# dead letters


async def test_dead_letters_grouped_by_bot_and_first_line(store: Store) -> None:
    """Dead letters group by bot and their error's first line, the largest group first."""
    await store.add_events([call_event(f"e{n}", f"cal_{n}") for n in range(3)])
    await route_all(store, ["triage"])
    await store.add_events([call_event("e9", "cal_9")])
    await route_all(store, ["summary"])
    jobs = await store.lease("worker", 100, 30, kinds="work")
    for n, job in enumerate(jobs):
        trace = f"TimeoutError: model\nTraceback {n}" if n < 3 else "KeyError: 'to'"
        await store.dead_letter(job, trace)
    groups = await store.dead_groups()
    assert [(g.bot, g.error, g.count) for g in groups] == [
        ("triage", "TimeoutError: model", 3), ("summary", "KeyError: 'to'", 1)]
    assert groups[0].latest == max(j.updated_at for j in await store.jobs_in_state("dead")
                                   if j.bot == "triage")


@pytest.mark.parametrize("error", [
    "  ValueError: bad \n  at line 3",
    "\u3000\u2003ValueError\u00a0\r\nnext",
    "x" * 300 + "\nmore",
    "é" * 250,
    "\n\n\t",
    "one line only",
])
async def test_dead_group_is_dead_error(store: Store, error: str) -> None:
    """The store groups an error exactly as dead_error() does, and finds the group by it."""
    await store.add_events([call_event("e1", "cal_a")])
    await route_all(store, ["triage"])
    await dead_letter_all(store, error)
    (group,) = await store.dead_groups()
    assert group.error == dead_error(error)
    assert [j.event_id for j in await store.dead_in_group("triage", dead_error(error))] == ["e1"]


async def test_dead_in_group_of_no_bot(store: Store) -> None:
    """The dead letters of a group without a bot (route jobs) are found by None."""
    await store.add_events([call_event("e1", "cal_a")])
    for job in await store.lease("router", 10, 30):
        await store.dead_letter(job, "routing failed")
    await store.add_events([call_event("e2", "cal_b")])
    await route_all(store, ["triage"])
    await dead_letter_all(store, "routing failed")
    found = await store.dead_in_group(None, "routing failed")
    assert [(j.event_id, j.kind) for j in found] == [("e1", "route")]


async def test_discard_dead(store: Store) -> None:
    """A discarded dead letter leaves the dead letters for good, counted as discarded."""
    await store.add_events([call_event("e1", "cal_a")])
    await route_all(store, ["triage"])
    await dead_letter_all(store, "boom")
    (job,) = await store.jobs_in_state("dead")
    assert await store.discard_dead(job.id) is True
    assert await store.discard_dead(job.id) is False
    assert await store.retry_dead(job.id) is False
    assert await store.dead_groups() == []
    counts = await store.job_counts()
    assert (counts["dead"], counts["discarded"]) == (0, 1)


async def test_discard_pending_by_prefix(store: Store) -> None:
    """Discarding an event's pending jobs by name prefix leaves other names and events alone."""
    await store.add_events([call_event("e1", "cal_a"), call_event("e2", "cal_b")])
    later = T0 + timedelta(days=3650)
    await store.add_jobs([
        JobSpec("task", "e1", bot="b", name="callback:k1:1", run_at=later),
        JobSpec("task", "e1", bot="b", name="callback:k1:2~paused1", run_at=later),
        JobSpec("task", "e1", bot="b", name="callback:k2:1", run_at=later),
        JobSpec("task", "e2", bot="b", name="callback:k1:1", run_at=later),
    ])
    assert await store.discard_pending("e1", "callback:k1:") == 2
    left = [(j.event_id, j.name) for j in await store.scheduled("callback:")]
    assert left == [("e1", "callback:k2:1"), ("e2", "callback:k1:1")]


# health


async def test_health_counts_the_queue(store: Store) -> None:
    """Health counts pending jobs (a join timer not yet due left out), running and dead."""
    await store.add_events([call_event(f"e{n}", f"cal_{n}") for n in range(4)])
    await route_all(store, ["triage"])
    await store.add_jobs([JobSpec("task", "e0", bot="triage", name="join-timeout:k",
                                  run_at=datetime.now(UTC) + timedelta(hours=1))])
    jobs = await store.lease("worker", 3, 30, kinds="work")
    await store.dead_letter(jobs[0], "boom")
    await store.finish(jobs[1])
    health = await store.health()
    assert (health.pending, health.running, health.dead) == (1, 1, 1)


async def test_health_counts_jobs_done_in_the_last_minute(store: Store) -> None:
    """Jobs done in the 60 seconds before ``now`` count; earlier ones do not."""
    await store.add_events([call_event("e1", "cal_a"), call_event("e2", "cal_b")])
    await route_all(store, [])
    assert (await store.health()).done_last_minute == 2
    later = datetime.now(UTC) + timedelta(seconds=61)
    assert (await store.health(now=later)).done_last_minute == 0


async def test_health_sums_model_spend_since_midnight_utc(store: Store) -> None:
    """Model spend counts answers since midnight UTC of ``now``, not the day before."""
    await store.add_events([call_event("e1", "cal_a")])
    midnight = datetime(2026, 4, 23, tzinfo=UTC)
    for seconds, cost in ((-1, 1.0), (1, 0.25), (3600, 0.5)):
        await store.record_model_answer(model_answer(
            "e1", at=midnight + timedelta(seconds=seconds), cost=cost))
    health = await store.health(now=midnight + timedelta(hours=10))
    assert health.model_spend_today_usd == pytest.approx(0.75)


async def test_health_counts_dial_claims_of_the_last_day(store: Store) -> None:
    """Calls claimed in the 24 hours before ``now`` count; older ones do not."""
    since = datetime.now(UTC) - timedelta(days=1)
    for attempt in (1, 2):
        await store.claim_dial(DialClaim(action_key="k", attempt=attempt, number=CALLER,
                                         bot="b", number_limit=5, daily_limit=5, since=since))
    assert (await store.health()).dial_claims_24h == 2
    later = datetime.now(UTC) + timedelta(hours=25)
    assert (await store.health(now=later)).dial_claims_24h == 0


# retention and erasure


async def test_purge_deletes_old_model_answers_and_calls(store: Store) -> None:
    """Retention deletes model answers made and calls last heard of before the cutoff."""
    await store.add_events([call_event("e1", "cal_old")])
    mark = datetime.now(UTC)
    await wait_until(lambda: datetime.now(UTC) > mark, message="the clock to move on")
    await store.add_events([call_event("e2", "cal_new")])
    await store.record_model_answer(model_answer("e1", at=mark - timedelta(seconds=1)))
    await store.record_model_answer(model_answer("e2", at=mark + timedelta(seconds=1)))
    counts = await store.purge_older_than(mark)
    assert (counts["calls"], counts["model_answers"]) == (1, 1)
    assert await calls_listed(store) == ["cal_new"]
    assert len(await store.model_answers_of_call("cal_new")) == 1
    assert set(counts) == set(PURGE_COUNTS)


async def test_erase_removes_answers_and_numbers_of_calls(store: Store) -> None:
    """Erasing a number deletes model answers naming it and replaces it in the calls list."""
    await store.add_events([call_event("e1", "cal_a", from_=CALLER, to=OURS),
                            call_event("e2", "cal_b", from_=OURS, to="+442079460002")])
    await store.record_model_answer(model_answer("e1", answer=f'{{"number": "{OURS}"}}'))
    await store.record_model_answer(model_answer("e2", answer='{"urgency": "low"}'))
    counts = await store.erase_number([OURS, OURS.removeprefix("+")])
    assert (counts["calls"], counts["model_answers"]) == (2, 1)
    rows = {row.call_id: row for row in await store.list_calls(CallQuery())}
    assert (rows["cal_a"].from_number, rows["cal_a"].to_number) == (CALLER, ERASED)
    assert (rows["cal_b"].from_number, rows["cal_b"].to_number) == (ERASED, "+442079460002")
    assert [a.event_id for a in await store.model_answers_of_call("cal_b")] == ["e2"]
    assert set(counts) == set(ERASE_COUNTS)


# the migration


def _insert_sql(store: Store, events: list[NewEvent], action_on: str) -> list[str]:
    """Rows as a store of schema 9 held them: events, and an action without its call."""
    sqlite_store = isinstance(store, SqliteStore)
    rows = []
    for e in events:
        created = e.created_at.timestamp() if sqlite_store else f"'{e.created_at.isoformat()}'"
        body = f"X'{e.body.hex()}'" if sqlite_store else f"'\\x{e.body.hex()}'::bytea"
        rows.append(
            "INSERT INTO events (id, type, created_at, received_at, call_id, routable, body) "
            f"VALUES ('{e.id}', '{e.type}', {created}, {created}, '{e.call_id}', "
            f"{'1' if sqlite_store else 'true'}, {body})")
    stamp = "0" if sqlite_store else "now()"
    rows.append("INSERT INTO actions (key, event_id, bot, kind, state, detail, created_at, "
                f"updated_at) VALUES ('k1', '{action_on}', 'b', 'callback', 'started', '{{}}', "
                f"{stamp}, {stamp})")
    return rows


async def _run_sql(store: Store, statements: list[str]) -> None:
    """Run statements on the store's database directly."""
    if isinstance(store, SqliteStore):
        db = sqlite3.connect(store.path)
        with db:
            for statement in statements:
                db.execute(statement)
        db.close()
        return
    assert isinstance(store, PostgresStore)
    conn = await asyncpg.connect(store.url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_migration_fills_calls_and_action_calls(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Migrating a store that holds events builds its calls, with the numbers of the first
    call event naming them, and finds its actions' calls."""
    import agentkit.store.postgres as postgres
    import agentkit.store.sqlite as sqlite

    probe = await make_store()

    def reopen() -> Store:
        if isinstance(probe, SqliteStore):
            return SqliteStore(tmp_path / "schema9.db")
        assert isinstance(probe, PostgresStore)
        return PostgresStore(probe.url, schema=f"{probe.schema}_9")

    old = reopen()
    with monkeypatch.context() as patch:
        patch.setattr(sqlite, "SQLITE_MIGRATIONS", sqlite.SQLITE_MIGRATIONS[:9])
        patch.setattr(postgres, "POSTGRES_MIGRATIONS", postgres.POSTGRES_MIGRATIONS[:9])
        await old.open()
    await old.close()
    prefix = [] if isinstance(old, SqliteStore) else [f"SET search_path TO {old.schema}"]
    events = [call_event("e1", "cal_a", at=4, type="transcript.ready", from_="+442079460009"),
              call_event("e2", "cal_a", at=2), call_event("e3", "cal_b", at=3, from_=None)]
    await _run_sql(old, prefix + _insert_sql(old, events, action_on="e3"))
    migrated = reopen()
    await migrated.open()
    try:
        row = await migrated.get_call("cal_a")
        other = await migrated.get_call("cal_b")
        activity = await migrated.call_activity(["cal_b"])
    finally:
        await migrated.close()
        if isinstance(old, PostgresStore):
            await _run_sql(old, [f"DROP SCHEMA {old.schema} CASCADE"])
    assert row is not None and other is not None
    assert (row.events, row.started_at, row.from_number, row.direction) == (
        2, T0 + timedelta(seconds=2), CALLER, "inbound")
    assert (other.from_number, other.to_number) == (None, OURS)
    assert [a.key for a in activity["cal_b"].actions] == ["k1"]
