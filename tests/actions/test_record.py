"""The action log's one sequence: dry run, claim, act, settle; and decisions noted once."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from agentkit.actions.record import ActionLog, Claim, Settle
from agentkit.errors import InternalServerError
from agentkit.store import Store

DETAIL = {"flow_id": "cf_1", "after": {"entry": "closed"}}


def action_log(store: Store, *, dry_run: bool = False) -> ActionLog:
    return ActionLog(store, event_id="evt_1", bot="operator", dry_run=dry_run)


class Act:
    """An action that counts its runs, answers ``answer``, or raises ``error``."""

    def __init__(self, answer: Any = "ok", error: Exception | None = None) -> None:
        self.claims: list[Claim] = []
        self.answer = answer
        self.error = error

    async def __call__(self, claim: Claim) -> Any:
        self.claims.append(claim)
        if self.error is not None:
            raise self.error
        return self.answer


async def test_acts_and_records_the_settlement(store: Store) -> None:
    """A first run acts once and records the state, outcome and detail it settles with."""
    act = Act()
    log = action_log(store)
    done = await log.perform(log.key("update_flow"), "update_flow", DETAIL, act,
                             settle=Settle("done", "changed", {"version": 2}))
    assert len(act.claims) == 1 and act.claims[0].fresh
    assert (done.how, done.result) == ("acted", "ok")
    assert done.record.state == "done"
    assert done.record.detail == {**DETAIL, "outcome": "changed", "version": 2}
    assert done.claimed.detail == DETAIL


async def test_finished_action_is_not_repeated(store: Store) -> None:
    """A run after one that finished the action does not act, and sees what was recorded."""
    act = Act()
    log = action_log(store)
    await log.perform("k", "notify", DETAIL, act, settle=Settle("done", "sent"))
    again = await log.perform("k", "notify", DETAIL, act, settle=Settle("done", "sent"))
    assert len(act.claims) == 1
    assert (again.how, again.result) == ("seen", None)
    assert again.record.detail["outcome"] == "sent"


async def test_failed_action_is_not_repeated(store: Store) -> None:
    """An action recorded as failed counts as finished: the next run does not act either."""
    act = Act()
    log = action_log(store)
    await log.perform("k", "notify", DETAIL, act, settle=Settle("failed", "failed"))
    again = await log.perform("k", "notify", DETAIL, act, settle=Settle("done", "sent"))
    assert len(act.claims) == 1
    assert (again.how, again.record.state) == ("seen", "failed")


async def test_error_leaves_the_action_started_and_raises(store: Store) -> None:
    """An error from act is raised and the action stays started, unsettled."""
    act = Act(error=InternalServerError("phone.systems failed", status=503))
    with pytest.raises(InternalServerError):
        await action_log(store).perform("k", "update_flow", DETAIL, act,
                                        settle=Settle("done", "changed"))
    record = await store.get_action("k")
    assert record is not None and record.state == "started"
    assert "outcome" not in record.detail


async def test_next_run_acts_again_after_an_error(store: Store) -> None:
    """A run after one that failed mid-act acts again, on the claim the first run made."""
    log = action_log(store)
    with pytest.raises(InternalServerError):
        await log.perform("k", "update_flow", DETAIL,
                          Act(error=InternalServerError("down", status=502)),
                          settle=Settle("done", "changed"))
    act = Act()
    done = await log.perform("k", "update_flow", {"flow_id": "other"}, act,
                             settle=Settle("done", "changed"))
    assert len(act.claims) == 1 and not act.claims[0].fresh
    assert done.how == "acted" and done.claimed.detail == DETAIL


async def test_settle_function_gets_what_act_returned(store: Store) -> None:
    """A settle function turns act's answer into the recorded outcome."""
    def settle(answer: list[str]) -> Settle:
        return Settle("failed", "failed", {"channels": answer})

    done = await action_log(store).perform("k", "notify", DETAIL, Act(answer=["slack"]),
                                           settle=settle)
    assert done.record.state == "failed"
    assert done.record.detail["channels"] == ["slack"]


async def test_without_settle_the_action_stays_open(store: Store) -> None:
    """With settle=None the action stays started for its own life cycle to settle."""
    done = await action_log(store).perform("k", "callback", DETAIL, Act(answer="placed"),
                                           settle=None)
    assert (done.how, done.result, done.record.state) == ("acted", "placed", "started")
    stored = await store.get_action("k")
    assert stored is not None and stored.state == "started"


async def test_dry_run_records_and_does_nothing(store: Store) -> None:
    """In a dry run act never runs; the action is recorded done, marked dry_run."""
    act = Act()
    done = await action_log(store, dry_run=True).perform(
        "k", "update_flow", DETAIL, act, settle=Settle("done", "changed")
    )
    assert act.claims == []
    assert (done.how, done.record.state) == ("dry_run", "done")
    assert done.record.detail == {**DETAIL, "dry_run": True, "outcome": "dry_run"}


async def test_dry_run_logs_what_would_be_done(store: Store) -> None:
    """A dry run logs the action with the plain values of its detail."""
    with capture_logs() as logs:
        await action_log(store, dry_run=True).perform(
            "k", "update_flow", DETAIL, Act(), settle=Settle("done", "changed")
        )
    (line,) = [entry for entry in logs if entry["event"] == "action.dry_run"]
    assert (line["action"], line["key"], line["flow_id"]) == ("update_flow", "k", "cf_1")
    assert "after" not in line


async def test_settling_is_logged_with_its_outcome(store: Store) -> None:
    """Each settlement logs action.settled with the state and the outcome."""
    with capture_logs() as logs:
        await action_log(store).perform("k", "notify", DETAIL, Act(),
                                        settle=Settle("done", "sent"))
    (line,) = [entry for entry in logs if entry["event"] == "action.settled"]
    assert (line["action"], line["state"], line["outcome"]) == ("notify", "done", "sent")


async def test_seen_action_is_logged(store: Store) -> None:
    """A run that finds the action claimed before logs action.seen_before with its state."""
    log = action_log(store)
    await log.perform("k", "notify", DETAIL, Act(), settle=Settle("done", "sent"))
    with capture_logs() as logs:
        await log.perform("k", "notify", DETAIL, Act(), settle=Settle("done", "sent"))
    assert [(e["event"], e["state"]) for e in logs] == [("action.seen_before", "done")]


async def test_note_records_a_decision_once_even_in_a_dry_run(store: Store) -> None:
    """A decision not to act is recorded as settled in a dry run too, and only once."""
    log = action_log(store, dry_run=True)
    refused = Settle("failed", "refused", {"reason": "on the do-not-call list"})
    first = await log.note("k", "callback", DETAIL, refused)
    second = await log.note("k", "callback", DETAIL, refused)
    assert (first.how, second.how) == ("noted", "seen")
    assert first.record.state == "failed"
    assert first.record.detail == {**DETAIL, "outcome": "refused",
                                   "reason": "on the do-not-call list"}
