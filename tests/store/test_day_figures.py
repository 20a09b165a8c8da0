"""A day's figures on every engine: what each counts, and the window ``[start, end)``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentkit.store import DayFigures, JobSpec, ModelAnswer, NewApproval, NewEvent, Store
from agentkit.store.base import PlacedCall
from agentkit.testing import wait_until

START = datetime(2026, 4, 23, tzinfo=UTC)
END = START + timedelta(days=1)
# Apart enough for every engine to keep them apart (SQLite keeps epoch seconds as REAL).
TICK = timedelta(milliseconds=1)
CALLER = "+442079460000"
OURS = "+40264000111"


def event(name: str, type: str = "call.completed", *, at: datetime = START + timedelta(hours=1),
          **data: Any) -> NewEvent:
    """An event ``name`` of its own call, created ``at``, its body's data holding ``data``."""
    body = {"id": name, "type": type, "created_at": at.isoformat(),
            "data": {"id": f"cal_{name}", "from": CALLER, "to": OURS, **data}}
    return NewEvent(id=name, type=type, created_at=at, call_id=f"cal_{name}",
                    body=json.dumps(body).encode(), routable=False)


def completed(name: str, direction: str = "inbound", status: str = "completed", *,
              at: datetime = START + timedelta(hours=1)) -> NewEvent:
    return event(name, direction=direction, status=status, at=at)


def answer(*, at: datetime = START + timedelta(hours=1), cached: bool = False,
           prompt: int = 100, completion: int = 20, cost: float = 0.01,
           text: str = '{"urgency": "high"}') -> ModelAnswer:
    return ModelAnswer(event_id="e1", bot="triage", task="extract", model="gpt-4o-mini",
                       prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost,
                       cached=cached, answer=text, created_at=at)


def placed(call_id: str, at: datetime) -> PlacedCall:
    return PlacedCall(call_id=call_id, action_key="e1:bot:callback", number=CALLER, attempt=1,
                      created_at=at)


async def act(store: Store, name: str, kind: str = "callback", state: str | None = "done",
              **detail: Any) -> str:
    """An action claimed now, then settled as ``state`` with ``detail`` (None: left started)."""
    key = f"e1:bot:{kind}:{name}"
    await store.claim_action(key, event_id="e1", bot="bot", kind=kind,
                             detail={"to": CALLER, "reason": "wants a call back"})
    if state is not None:
        await store.settle_action(key, state, detail)  # type: ignore[arg-type]
    return key


def around_now() -> tuple[datetime, datetime]:
    """A window holding what the store records now (actions and jobs take its clock)."""
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)


# calls and voicemails


async def test_nothing_stored_is_all_zero(store: Store) -> None:
    """An empty store gives zero for every figure and no outcomes, refusals or topics."""
    assert await store.day_figures(START, END) == DayFigures()


async def test_completed_calls_counted_by_direction(store: Store) -> None:
    """Completed calls count in or out by their direction; other call events do not count."""
    await store.add_events([
        completed("e1"), completed("e2", status="missed"), completed("e3", "outbound"),
        event("e4", "call.initiated", direction="inbound"),
        event("e5", "call.answered", direction="outbound"),
    ])
    figures = await store.day_figures(START, END)
    assert (figures.calls_in, figures.calls_out) == (2, 1)


async def test_missed_are_inbound_calls_missed_unanswered_or_busy(store: Store) -> None:
    """Missed counts inbound calls that ended missed, no_answer or busy, not outbound ones."""
    await store.add_events([
        completed("e1", status="missed"), completed("e2", status="no_answer"),
        completed("e3", status="busy"), completed("e4", status="completed"),
        completed("e5", status="voicemail"), completed("e6", "outbound", status="no_answer"),
    ])
    assert (await store.day_figures(START, END)).missed == 3


async def test_voicemails_counted(store: Store) -> None:
    """Each voicemail received counts once."""
    await store.add_events([event("e1", "voicemail.received"), event("e2", "voicemail.received"),
                            completed("e3", status="voicemail")])
    assert (await store.day_figures(START, END)).voicemails == 2


async def test_event_at_start_counts_and_at_end_does_not(store: Store) -> None:
    """Events created at ``start`` and just before ``end`` count; at ``end`` or just before
    ``start`` they do not."""
    await store.add_events([
        completed("e1", at=START), completed("e2", at=END - TICK),
        completed("e3", at=END), completed("e4", at=START - TICK),
        event("e5", "voicemail.received", at=START), event("e6", "voicemail.received", at=END),
    ])
    figures = await store.day_figures(START, END)
    assert (figures.calls_in, figures.voicemails) == (2, 1)


async def test_a_body_with_a_nul_escape_is_read(store: Store) -> None:
    """A call whose body holds an escaped NUL character still counts."""
    await store.add_events([event("e1", direction="inbound", status="missed",
                                  caller_name="Ana\x00Pop")])
    figures = await store.day_figures(START, END)
    assert (figures.calls_in, figures.missed) == (1, 1)


# calls placed, callbacks, escalations, dead letters


async def test_placed_call_at_start_counts_and_at_end_does_not(store: Store) -> None:
    """Calls agentkit placed count from ``start`` up to, and not at, ``end``."""
    for call_id, at in (("c1", START), ("c2", END - TICK), ("c3", END), ("c4", START - TICK)):
        await store.record_placed_call(placed(call_id, at))
    assert (await store.day_figures(START, END)).calls_placed == 2


async def test_ended_callbacks_counted_by_outcome(store: Store) -> None:
    """Callbacks and escalations done or failed count by outcome; started ones and other
    kinds of action do not."""
    await act(store, "a", outcome="reached")
    await act(store, "b", outcome="reached")
    await act(store, "c", "escalation", "failed", outcome="unreached")
    await act(store, "d", state="failed", outcome="refused", reason="on the do-not-call list")
    await act(store, "e", "callback", None)
    await act(store, "f", "notify", outcome="reached")
    figures = await store.day_figures(*around_now())
    assert figures.outcomes == {"reached": 2, "unreached": 1, "refused": 1}


async def test_refusals_counted_by_reason(store: Store) -> None:
    """Refused callbacks count by the reason given; other outcomes' reasons do not count."""
    for name in ("a", "b"):
        await act(store, name, state="failed", outcome="refused", reason="outside the hours")
    await act(store, "c", "escalation", "failed", outcome="refused", reason="calls paused")
    await act(store, "d", state="failed", outcome="expired", reason="not placed in time")
    figures = await store.day_figures(*around_now())
    assert figures.refusals == {"outside the hours": 2, "calls paused": 1}


async def test_callbacks_count_by_when_they_ended(store: Store) -> None:
    """A callback asked for before the window and ended in it counts in it, as ended."""
    key = await act(store, "a", state=None)
    claimed = await store.get_action(key)
    assert claimed is not None
    await wait_until(lambda: datetime.now(UTC) > claimed.created_at, message="time to pass")
    start = datetime.now(UTC)
    await store.settle_action(key, "done", {"outcome": "reached"})
    figures = await store.day_figures(start, start + timedelta(hours=1))
    assert figures.outcomes == {"reached": 1}


async def test_callbacks_ended_outside_the_window_not_counted(store: Store) -> None:
    """A callback that ended before the window does not count in it."""
    await act(store, "a", outcome="reached")
    later = datetime.now(UTC) + timedelta(hours=1)
    figures = await store.day_figures(later, later + timedelta(hours=1))
    assert (figures.outcomes, figures.refusals) == ({}, {})


async def test_escalations_counted_by_when_they_were_asked_for(store: Store) -> None:
    """Escalations asked for in the window count, ended or not; callbacks do not."""
    await act(store, "a", "escalation", None)
    await act(store, "b", "escalation", "done", outcome="reached")
    await act(store, "c", "callback", None)
    assert (await store.day_figures(*around_now())).escalations == 2
    assert (await store.day_figures(START, END)).escalations == 0


async def test_dead_letters_counted_when_given_up(store: Store) -> None:
    """Jobs dead-lettered in the window count; done ones, and dead ones outside, do not."""
    await store.add_events([completed("e1"), completed("e2"), completed("e3")])
    await store.add_jobs([JobSpec("task", eid, bot="b", name="t") for eid in ("e1", "e2", "e3")])
    jobs = await store.lease("worker", 10, 30, kinds="work")
    assert len(jobs) == 3
    await store.dead_letter(jobs[0], "boom")
    await store.dead_letter(jobs[1], "boom")
    await store.finish(jobs[2])
    assert (await store.day_figures(*around_now())).dead_letters == 2
    assert (await store.day_figures(START, END)).dead_letters == 0


# model answers


async def test_model_answers_summed(store: Store) -> None:
    """Model answers count, cached ones apart, with their tokens and cost summed."""
    await store.record_model_answer(answer(prompt=100, completion=20, cost=0.25))
    await store.record_model_answer(answer(prompt=50, completion=10, cost=0.5, cached=True))
    await store.record_model_answer(answer(prompt=7, completion=3, cost=1.0, at=END))
    figures = await store.day_figures(START, END)
    assert (figures.model_answers, figures.cached_answers) == (2, 1)
    assert (figures.prompt_tokens, figures.completion_tokens) == (150, 30)
    assert figures.cost_usd == pytest.approx(0.75)


async def test_model_answer_at_start_counts_and_at_end_does_not(store: Store) -> None:
    """Model answers made at ``start`` count; those made at ``end`` or before ``start`` do not."""
    for at in (START, END - TICK, END, START - TICK):
        await store.record_model_answer(answer(at=at))
    assert (await store.day_figures(START, END)).model_answers == 2


async def test_topics_counted_case_insensitively_once_per_answer(store: Store) -> None:
    """Topics count lower-cased and stripped, once per answer, from answers in the window;
    answers with no topics list, or not JSON, are passed over."""
    for text in (
        json.dumps({"topics": ["Billing", " billing ", "Refund"]}),
        json.dumps({"topics": ["BILLING", "", 7]}),
        json.dumps({"topics": "billing"}),
        json.dumps({"summary": "no topics here"}),
        'not JSON, though it says "topics"',
    ):
        await store.record_model_answer(answer(text=text))
    await store.record_model_answer(answer(text=json.dumps({"topics": ["refund"]}), at=END))
    assert (await store.day_figures(START, END)).topics == {"billing": 2, "refund": 1}


# as things stand now


async def test_pending_approvals_counted_whatever_the_window(store: Store) -> None:
    """Approvals still pending count, whenever they were asked; decided ones do not."""
    for name in ("a", "b", "c"):
        await store.add_approval(NewApproval(
            id=f"apr_{name}", action_key=f"e1:bot:callback:{name}", event_id="e1", bot="bot",
            kind="callback", what={"to": CALLER}, why={"reason": "call me"},
            deadline=datetime.now(UTC) + timedelta(hours=1)))
    await store.decide_approval("apr_c", "approved", by="U1")
    assert (await store.day_figures(START, END)).approvals_pending == 2


async def test_open_callbacks_counted_whatever_the_window(store: Store) -> None:
    """Callbacks and escalations still started count, whenever they were asked for."""
    await act(store, "a", "callback", None)
    await act(store, "b", "escalation", None)
    await act(store, "c", "callback", "done", outcome="reached")
    await act(store, "d", "notify", None)
    assert (await store.day_figures(START, END)).callbacks_open == 2
