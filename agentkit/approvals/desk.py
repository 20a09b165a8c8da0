"""Asking for and deciding approvals: what every channel (Slack, console, CLI) goes through.

An action that must wait is recorded as an approval (what will be done, why,
who may approve, until when) with two durable jobs: one to post the request,
one at the deadline. A decision is taken once, atomically, in the store; the
person's decision then gets a job of its own that carries it out. So a
decision survives a restart, and whatever process takes it, one worker acts.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentkit.approvals.rules import waiting_rule
from agentkit.bot import Bot
from agentkit.errors import AgentkitError
from agentkit.logs import get_logger
from agentkit.settings import Settings
from agentkit.store.base import (
    ActionRecord,
    Approval,
    ApprovalDecision,
    JobSpec,
    NewApproval,
    Store,
)

log = get_logger("agentkit.approvals")

APPROVAL_TASK = "approval"
# The steps of an approval's life, each a job named approval:<id>:<step>.
ASK, DECIDED, DEADLINE = "ask", "decided", "deadline"


class ApprovalError(AgentkitError):
    """An approval cannot be decided as asked (unknown id, not allowed); the message says why."""


@dataclass(frozen=True)
class ApprovalConfig:
    """The deployment's approval settings: default rules, timeout and Slack approvers."""

    rules: tuple[str, ...] = ()
    timeout: float = 1800.0
    approvers: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApprovalConfig:
        return cls(rules=settings.approvals, timeout=float(settings.approval_timeout),
                   approvers=settings.approvers)

    def rules_for(self, bot: Bot) -> tuple[str, ...]:
        """A bot's own Approvals replace the deployment's rules."""
        return bot.approvals.rules if bot.approvals is not None else self.rules

    def timeout_for(self, bot: Bot) -> float:
        own = bot.approvals.timeout if bot.approvals is not None else None
        return own if own is not None else self.timeout

    def waiting_rule(self, bot: Bot, kind: str, *, required: bool = False,
                     to: str | None = None, caller: str | None = None) -> str | None:
        """The rule that makes this action of ``bot`` wait, or None: see ``rules.waiting_rule``."""
        return waiting_rule(kind, self.rules_for(bot), required=required, to=to, caller=caller)


@dataclass(frozen=True)
class Verdict:
    """What a decision came to: ``decided`` when this one counted, else why it did not."""

    approval: Approval
    decided: bool

    def explain(self) -> str:
        """A sentence for whoever clicked: what happened, or why nothing did."""
        approval = self.approval
        if self.decided:
            return f"{approval.state} by {who(approval.decided_by)}"
        if approval.state == "expired":
            return (f"too late: nobody decided before the deadline "
                    f"({approval.deadline:%Y-%m-%d %H:%M} UTC), so it was rejected")
        when = f" at {approval.decided_at:%H:%M} UTC" if approval.decided_at else ""
        return f"already {approval.state} by {who(approval.decided_by)}{when}"


def who(decided_by: str | None) -> str:
    """A decider as people read it: ``slack:U1`` is Slack user U1, ``console:ana`` is ana."""
    if not decided_by:
        return "nobody"
    channel, _, name = decided_by.partition(":")
    if channel == "slack":
        return f"Slack user {name}"
    if channel in ("console", "cli"):
        return f"{name} ({channel})"
    return decided_by


class ApprovalDesk:
    """Records approvals, and takes decisions on them; ``wake`` nudges this process's workers."""

    def __init__(self, store: Store, config: ApprovalConfig,
                 *, wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.config = config
        self._wake = wake

    async def ask(
        self,
        *,
        action_key: str,
        event_id: str,
        bot: Bot,
        kind: str,
        what: dict[str, Any],
        why: dict[str, Any],
        mark: dict[str, Any] | None = None,
    ) -> tuple[Approval, ActionRecord]:
        """Record that action ``action_key`` waits for a person; once per action.

        Asked again (a handler run again) it returns the first approval. Its jobs
        are added every time, and exist once: a run that died between recording
        the approval and adding them is made whole by the next. The action, still
        started, gets ``approval_id``, ``approval_deadline`` and ``mark`` in its
        detail; it is returned as it now stands.
        """
        deadline = datetime.now(UTC) + timedelta(seconds=self.config.timeout_for(bot))
        new = NewApproval(
            id=f"apr_{secrets.token_hex(8)}", action_key=action_key, event_id=event_id,
            bot=bot.name, kind=kind, what=what,
            why={**why, "approvers": {"slack": list(self.config.approvers),
                                      "console_role": "approver"}},
            deadline=deadline.replace(microsecond=0) + timedelta(seconds=1),
        )
        approval, created = await self.store.add_approval(new)
        await self.store.add_jobs([
            _job(approval, ASK),
            _job(approval, DEADLINE, run_at=approval.deadline),
        ])
        record = await self.store.settle_action(action_key, "started", {
            **(mark or {}), "approval_id": approval.id,
            "approval_deadline": approval.deadline.isoformat(),
        })
        if created:
            log.info("approval.asked", approval=approval.id, action=kind, key=action_key,
                     deadline=approval.deadline.isoformat())
        if self._wake is not None:
            self._wake()
        return approval, record

    async def decide(self, approval_id: str, decision: ApprovalDecision, *, by: str,
                     reason: str = "") -> Verdict:
        """Approve or reject, once; ApprovalError for an unknown id.

        Whoever calls has checked that ``by`` may decide. A decision that counts
        gets its job, which carries it out; one after another, or after the
        deadline, changes nothing.
        """
        if await self.store.get_approval(approval_id) is None:
            raise ApprovalError(f"no approval {approval_id!r}: list them with agentkit "
                                "approvals list")
        approval, decided = await self.store.decide_approval(approval_id, decision, by=by,
                                                             reason=reason)
        if decided:
            await self.store.add_jobs([_job(approval, DECIDED)])
            log.info("approval.decided", approval=approval.id, decision=decision, by=by)
            if self._wake is not None:
                self._wake()
        else:
            log.info("approval.not_decided", approval=approval.id, state=approval.state,
                     decision=decision, by=by)
        return Verdict(approval, decided)

    def wake_with(self, wake: Callable[[], None]) -> None:
        """Nudge these workers when an approval adds a job (they start after the desk)."""
        self._wake = wake

    async def pending(self, *, limit: int = 100) -> list[Approval]:
        """Approvals still waiting and not yet past their deadline, oldest first."""
        now = datetime.now(UTC)
        return [a for a in await self.store.pending_approvals(limit=limit) if a.deadline > now]


def _job(approval: Approval, step: str, *, run_at: datetime | None = None) -> JobSpec:
    return JobSpec("task", approval.event_id, bot=approval.bot,
                   name=f"{APPROVAL_TASK}:{approval.id}:{step}",
                   payload={"id": approval.id, "step": step}, run_at=run_at)
