"""The ``approval:`` tasks: post the request, carry out a decision, reject at the deadline.

Each approval has three jobs, named ``approval:<id>:ask``, ``:decided`` and
``:deadline``. Only the decided job acts on a person's decision and only the
deadline job on an expiry, and a decision is taken once in the store, so an
action runs once or never, whichever process and however many restarts.
Every step can run again after a crash: what it already did is found, not
repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from agentkit.actions.notify import ChatMessage, Notifier, delivered
from agentkit.actions.record import ActionLog
from agentkit.approvals.desk import ASK, DEADLINE, DECIDED, ApprovalError, who
from agentkit.approvals.slack import SlackWebApi, describe, facts
from agentkit.events import Event
from agentkit.logs import get_logger
from agentkit.store.base import DEADLINE_PASSED, Approval, Job, JobSpec, Store

log = get_logger("agentkit.approvals")


class ApprovedAction(Protocol):
    """What carries out one kind of action once it is decided."""

    async def approved(self, approval: Approval) -> str:
        """Do exactly what was approved (once); a sentence on what came of it."""

    async def rejected(self, approval: Approval, reason: str) -> None:
        """Record that it will never be done."""


class ApprovalTasks:
    """Runs the approval jobs of this process: ``actions`` carry out each kind."""

    def __init__(
        self,
        store: Store,
        actions: Mapping[str, ApprovedAction],
        *,
        notifier: Notifier,
        slack: SlackWebApi | None = None,
        console_url: str | None = None,
    ) -> None:
        self._store = store
        self._actions = dict(actions)
        self._notifier = notifier
        self._slack = slack
        self._console_url = console_url.rstrip("/") if console_url else None

    async def run(self, job: Job, event: Event) -> list[JobSpec]:
        approval = await self._store.get_approval(str(job.payload.get("id")))
        if approval is None:
            raise ApprovalError(f"{job.name}: no such approval in the store")
        step = job.payload.get("step")
        if step == ASK:
            await self._ask(approval)
        elif step == DECIDED:
            await self._decided(approval)
        elif step == DEADLINE:
            await self._deadline(approval)
        else:
            raise ApprovalError(f"{job.name}: unknown step {step!r}")
        return []

    async def _ask(self, approval: Approval) -> None:
        if approval.state != "pending":
            return
        await self._note(approval, "asked", ChatMessage(
            title=f"Approval needed: {describe(approval)}",
            text=self._where_to_decide(approval),
            fields=dict(facts(approval)), urgency="high", reference=approval.id,
            links=self._links(),
        ), skip_slack=True)
        if self._slack is None or approval.message:
            return
        where = await self._slack.post_request(approval, console_url=self._console_url)
        await self._store.set_approval_message(approval.id, where)
        log.info("approval.posted", approval=approval.id, channel=where["channel"])
        now = await self._store.get_approval(approval.id)
        if now is not None and now.state != "pending":
            # Decided while it was being posted: its decision found no message to update.
            await self._slack.show_decision(now, "")

    async def _decided(self, approval: Approval) -> None:
        if approval.state not in ("approved", "rejected"):
            return
        action = self._action(approval)
        if approval.state == "approved":
            outcome = await action.approved(approval)
        else:
            reason = approval.reason or f"rejected by {who(approval.decided_by)}"
            await action.rejected(approval, reason)
            outcome = "Nothing was done."
        log.info("approval.carried_out", approval=approval.id, state=approval.state,
                 outcome=outcome)
        await self._note(approval, approval.state, ChatMessage(
            title=f"{approval.state.capitalize()} by {who(approval.decided_by)}: "
                  f"{describe(approval)}",
            text=outcome, reference=approval.id, links=self._links(),
        ), skip_slack=True)
        await self._show(approval, outcome)

    async def _deadline(self, approval: Approval) -> None:
        if approval.state == "pending":
            # At its own deadline, whatever this worker's clock says: never a moment early.
            await self._store.expire_approvals(now=approval.deadline)
            approval = await self._store.get_approval(approval.id) or approval
        if approval.state == "rejected":
            # Rejected without a person's decision job (an erasure rejects what names the
            # number): the action must still end. Harmless after the decided job did it.
            await self._action(approval).rejected(approval, approval.reason or "rejected")
            return
        if approval.state != "expired":
            return
        await self._action(approval).rejected(approval, DEADLINE_PASSED)
        log.info("approval.expired", approval=approval.id)
        await self._note(approval, "expired", ChatMessage(
            title=f"Approval expired: {describe(approval)}",
            text=(f"Nobody approved it by {approval.deadline:%Y-%m-%d %H:%M} UTC, so it was "
                  "rejected: nothing was done."),
            fields=dict(facts(approval)), urgency="high", reference=approval.id,
        ), skip_slack=False)
        await self._show(approval, "Nothing was done.")

    def _action(self, approval: Approval) -> ApprovedAction:
        action = self._actions.get(approval.kind)
        if action is None:
            raise ApprovalError(f"approval {approval.id}: nothing here carries out a "
                                f"{approval.kind!r} action")
        return action

    async def _show(self, approval: Approval, outcome: str) -> None:
        if self._slack is not None and approval.message:
            await self._slack.show_decision(approval, outcome)

    async def _note(self, approval: Approval, step: str, message: ChatMessage, *,
                    skip_slack: bool) -> None:
        """One chat note per step of an approval, recorded in the action log like any note.

        With the Slack app set up, Slack has its own message, which is updated, so
        the note skips the Slack webhook (but an expiry is announced everywhere).
        """
        record = ActionLog(self._store, event_id=approval.event_id, bot=approval.bot,
                           dry_run=False)
        skip = ("slack",) if skip_slack and self._slack is not None else ()
        await record.perform(
            record.key("notify", f"approval:{approval.id}:{step}"), "notify",
            {"title": message.title, "text": message.text},
            lambda _: self._notifier.send(message, skip=skip), settle=delivered,
        )

    def _links(self) -> dict[str, str]:
        if self._console_url is None:
            return {}
        return {"Approve or reject in the console": f"{self._console_url}/console/approvals"}

    def _where_to_decide(self, approval: Approval) -> str:
        places = ["the console's Approvals page",
                  f"`agentkit approvals approve|reject {approval.id}`"]
        if self._slack is not None:
            places.insert(0, "the Slack approval channel")
        return (f"Waits for a person until {approval.deadline:%Y-%m-%d %H:%M} UTC, then it is "
                f"rejected. Decide in {', or '.join(places)}.")

