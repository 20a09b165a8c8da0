"""Approvals on every engine: asked once, decided once, never after the deadline."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from agentkit.store import Approval, ApprovalDecision, NewApproval, NewEvent, Store, StoreError
from agentkit.store.base import DEADLINE_PASSED
from agentkit.store.privacy import ERASED, ERASED_BY, ERASED_REASON
from tests.stores import StoreFactory

NUMBER = "+442079460999"


def deadline(seconds: float = 3600) -> datetime:
    """A deadline in whole seconds (exact on every engine), ``seconds`` from now."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)


def asking(name: str, *, due: datetime | None = None, to: str = NUMBER) -> NewApproval:
    return NewApproval(
        id=f"apr_{name}", action_key=f"callback:{name}", event_id="evt_1", bot="voicemail",
        kind="callback", what={"to": to, "urgency": "high"},
        why={"reason": "wants a call back", "quote": f"call me on {to}"},
        deadline=due or deadline(),
    )


def voicemail() -> NewEvent:
    body = {"id": "evt_1", "type": "voicemail.received", "created_at": "2026-04-23T10:12:45Z",
            "data": {"from": NUMBER, "to": "+40264000111"}}
    return NewEvent(id="evt_1", type="voicemail.received", created_at=datetime.now(UTC),
                    call_id="cal_1", body=json.dumps(body).encode(), routable=False)


def ids(approvals: list[Approval]) -> list[str]:
    return [a.id for a in approvals]


# asking


async def test_add_records_a_pending_approval(store: Store) -> None:
    """A new approval is pending, with what, why, deadline and its event's call."""
    await store.add_events([voicemail()])
    new = asking("a")
    approval, created = await store.add_approval(new)
    assert created
    assert (approval.state, approval.call_id, approval.deadline) == ("pending", "cal_1",
                                                                     new.deadline)
    assert (approval.what, approval.why, approval.message) == (new.what, new.why, {})
    assert (approval.decided_by, approval.decided_at, approval.reason) == (None, None, None)
    assert await store.get_approval("apr_a") == approval


async def test_asking_again_for_an_action_returns_the_first_approval(store: Store) -> None:
    """A second approval for the same action key is not added: the first comes back, False."""
    first, _ = await store.add_approval(asking("a"))
    again, created = await store.add_approval(
        NewApproval(**{**asking("a").__dict__, "id": "apr_retry"}))
    assert not created
    assert again == first
    assert await store.get_approval("apr_retry") is None


async def test_unknown_approval_is_none(store: Store) -> None:
    """Looking up an id never added gives None."""
    assert await store.get_approval("apr_nope") is None


# deciding


async def test_approve_decides_once(store: Store) -> None:
    """The first approve wins; a second says who decided and changes nothing."""
    await store.add_approval(asking("a"))
    approved, decided = await store.decide_approval("apr_a", "approved", by="U1")
    assert decided
    assert (approved.state, approved.decided_by) == ("approved", "U1")
    assert approved.decided_at is not None
    again, decided = await store.decide_approval("apr_a", "rejected", by="U2", reason="no")
    assert not decided
    assert again == approved


async def test_reject_records_who_and_why(store: Store) -> None:
    """A rejection keeps who rejected it and the reason they gave."""
    await store.add_approval(asking("a"))
    rejected, decided = await store.decide_approval("apr_a", "rejected", by="U1",
                                                    reason="wrong number")
    assert decided
    assert (rejected.state, rejected.decided_by, rejected.reason) == ("rejected", "U1",
                                                                      "wrong number")


async def test_decide_after_the_deadline_expires_it(store: Store) -> None:
    """A decision after the deadline changes nothing but moves the approval to expired."""
    new = asking("a")
    await store.add_approval(new)
    late = new.deadline + timedelta(seconds=1)
    expired, decided = await store.decide_approval("apr_a", "approved", by="U1", now=late)
    assert not decided
    assert (expired.state, expired.decided_by, expired.reason) == ("expired", None,
                                                                   DEADLINE_PASSED)
    assert expired.decided_at == late
    assert await store.expire_approvals(late) == []


async def test_decide_at_the_deadline_is_too_late(store: Store) -> None:
    """The deadline itself is past: only a decision before it counts."""
    new = asking("a")
    await store.add_approval(new)
    expired, decided = await store.decide_approval("apr_a", "approved", by="U1",
                                                   now=new.deadline)
    assert (expired.state, decided) == ("expired", False)


async def test_decide_unknown_approval_raises(store: Store) -> None:
    """Deciding an id never added raises StoreError."""
    with pytest.raises(StoreError, match="apr_nope"):
        await store.decide_approval("apr_nope", "approved", by="U1")


@pytest.mark.parametrize("decisions", [("approved", "rejected"), ("approved", "approved")])
async def test_racing_decides_have_one_winner(
    make_store: StoreFactory, decisions: tuple[ApprovalDecision, ApprovalDecision]
) -> None:
    """Two processes deciding the same approvals at once: exactly one decides each."""
    first, second = await make_store(), await make_store()
    names = [f"r{n}" for n in range(5)]
    for name in names:
        await first.add_approval(asking(name))
    results = await asyncio.gather(*(
        store.decide_approval(f"apr_{name}", decision, by=by)
        for name in names
        for store, decision, by in ((first, decisions[0], "U1"), (second, decisions[1], "U2"))
    ))
    for name in names:
        outcomes = [(a, won) for a, won in results if a.id == f"apr_{name}"]
        assert [won for _, won in outcomes].count(True) == 1
        winner = next(a for a, won in outcomes if won)
        assert await first.get_approval(winner.id) == winner


async def test_approval_racing_the_deadline_is_settled_once(make_store: StoreFactory) -> None:
    """An approve just before the deadline racing the expiry just after it: one of them wins."""
    first, second = await make_store(), await make_store()
    due = deadline()
    names = [f"d{n}" for n in range(5)]
    for name in names:
        await first.add_approval(asking(name, due=due))
    before, after = due - timedelta(milliseconds=1), due + timedelta(milliseconds=1)
    decides, expired = await asyncio.gather(
        asyncio.gather(*(first.decide_approval(f"apr_{name}", "approved", by="U1", now=before)
                         for name in names)),
        second.expire_approvals(after),
    )
    approved = {a.id for a, won in decides if won}
    assert approved.isdisjoint(ids(expired))
    assert approved | set(ids(expired)) == {f"apr_{name}" for name in names}
    for approval_id in approved:
        approval = await second.get_approval(approval_id)
        assert approval is not None and approval.state == "approved"


# expiry and listing


async def test_expire_moves_each_overdue_approval_once(make_store: StoreFactory) -> None:
    """Racing expiries return every overdue approval exactly once and leave the rest pending."""
    first, second = await make_store(), await make_store()
    now = datetime.now(UTC)
    for n in range(6):
        await first.add_approval(asking(f"o{n}", due=deadline(-60)))
    await first.add_approval(asking("later"))
    moved = await asyncio.gather(*(s.expire_approvals(now) for s in (first, second) * 2))
    taken = [a.id for batch in moved for a in batch]
    assert sorted(taken) == [f"apr_o{n}" for n in range(6)]
    assert all(a.state == "expired" and a.reason == DEADLINE_PASSED
               for batch in moved for a in batch)
    assert ids(await first.pending_approvals()) == ["apr_later"]


async def test_pending_approvals_are_listed_oldest_first(store: Store) -> None:
    """Pending approvals come oldest first, decided ones left out, up to the limit."""
    for name in ("c", "a", "b", "d"):
        await store.add_approval(asking(name))
    await store.decide_approval("apr_a", "rejected", by="U1")
    assert ids(await store.pending_approvals()) == ["apr_c", "apr_b", "apr_d"]
    assert ids(await store.pending_approvals(limit=2)) == ["apr_c", "apr_b"]


async def test_message_is_recorded(store: Store) -> None:
    """Where the chat message about an approval lives is kept with it."""
    await store.add_approval(asking("a"))
    await store.set_approval_message("apr_a", {"channel": "C1", "ts": "1714.0001"})
    approval = await store.get_approval("apr_a")
    assert approval is not None and approval.message == {"channel": "C1", "ts": "1714.0001"}


async def test_message_for_unknown_approval_raises(store: Store) -> None:
    """Recording a message for an id never added raises StoreError."""
    with pytest.raises(StoreError, match="apr_nope"):
        await store.set_approval_message("apr_nope", {"channel": "C1"})


async def test_approval_survives_reopening_the_store(make_store: StoreFactory) -> None:
    """A pending approval is found, and decided, by a store opened after the first closed."""
    first = await make_store()
    await first.add_approval(asking("a"))
    await first.close()
    second = await make_store()
    assert ids(await second.pending_approvals()) == ["apr_a"]
    approval, decided = await second.decide_approval("apr_a", "approved", by="U1")
    assert decided and approval.state == "approved"


# retention and erasure


async def test_purge_deletes_approvals_decided_before_the_cutoff(store: Store) -> None:
    """Retention deletes approvals decided before the cutoff; pending and later ones stay."""
    cutoff = datetime.now(UTC)
    for name in ("old", "new", "open"):
        await store.add_approval(asking(name))
    await store.decide_approval("apr_old", "approved", by="U1",
                                now=cutoff - timedelta(days=1))
    await store.decide_approval("apr_new", "rejected", by="U1",
                                now=cutoff + timedelta(seconds=1))
    counts = await store.purge_older_than(cutoff)
    assert counts["approvals"] == 1
    assert await store.get_approval("apr_old") is None
    assert await store.get_approval("apr_new") is not None
    assert ids(await store.pending_approvals()) == ["apr_open"]


async def test_erase_removes_the_number_and_rejects_pending(store: Store) -> None:
    """Erasing a number replaces it in what and why, and rejects a pending approval naming it."""
    await store.add_approval(asking("named"))
    await store.add_approval(asking("other", to="+40264000111"))
    counts = await store.erase_number([NUMBER, NUMBER.removeprefix("+")])
    assert counts["approvals"] == 1
    erased = await store.get_approval("apr_named")
    assert erased is not None
    assert erased.what == {"to": ERASED, "urgency": "high"}
    assert NUMBER not in json.dumps(erased.why)
    assert (erased.state, erased.decided_by, erased.reason) == ("rejected", ERASED_BY,
                                                                ERASED_REASON)
    other = await store.get_approval("apr_other")
    assert other is not None and other.state == "pending"
    assert other.what["to"] == "+40264000111"
