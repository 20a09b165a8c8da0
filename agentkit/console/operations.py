"""What an operator may change from the console, each change recorded in the action log.

Every change is an action of the ``console`` bot, of kind ``console.<change>``,
on the event it concerns, holding who made it (and whether by the shared
login, whose name proves nothing) and when: it shows in the call's timeline
and in ``ctx.history``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from agentkit.actions.callbacks import CALLBACK_TASK
from agentkit.actions.flows import FlowChanges
from agentkit.actions.record import ActionLog
from agentkit.console.session import Operator
from agentkit.errors import AgentkitError
from agentkit.logs import get_logger
from agentkit.odygy.client import OdygyClient
from agentkit.store.base import ActionRecord, Store

log = get_logger("agentkit.console")

CONSOLE_BOT = "console"
CALLBACK_KINDS = ("callback", "escalation")
FLOW_KINDS = ("update_flow", "attach_number")
REASON_LIMIT = 500
GROUP_RETRY_LIMIT = 1000


class OperationError(AgentkitError):
    """A console change was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ConsoleOperations:
    """Retry and discard dead letters, cancel callbacks, revert flow changes."""

    def __init__(self, store: Store, *, api: OdygyClient | None = None,
                 wake: Callable[[], None] | None = None) -> None:
        """``wake``: tells this process's workers a job is due (others poll the store)."""
        self._store = store
        self._api = api
        self._wake = wake

    async def retry(self, operator: Operator, job_id: int) -> None:
        """Run a dead letter again through the workers, its attempts counted afresh."""
        job = await self._store.get_job(job_id)
        if job is None or job.state != "dead" or not await self._store.retry_dead(job_id):
            raise OperationError(f"no dead letter {job_id}: it may have been retried or "
                                 "discarded already", status=404)
        await self._record(operator, job.event_id, "retry",
                           {"job_id": job_id, "job_bot": job.bot, "job": job.name or job.kind})
        self._woken()

    async def retry_group(self, operator: Operator, bot: str | None, error: str) -> int:
        """Retry every dead letter of one bot with one error; how many."""
        jobs = await self._store.dead_in_group(bot, error, limit=GROUP_RETRY_LIMIT)
        done = 0
        for job in jobs:
            if await self._store.retry_dead(job.id):
                done += 1
                await self._record(operator, job.event_id, "retry",
                                   {"job_id": job.id, "job_bot": job.bot,
                                    "job": job.name or job.kind, "group": error})
        if not done:
            raise OperationError("no dead letters in that group any more", status=404)
        self._woken()
        return done

    async def discard(self, operator: Operator, job_id: int, reason: str) -> None:
        """Give up on a dead letter for good, saying why."""
        why = _reason(reason)
        job = await self._store.get_job(job_id)
        if job is None or not await self._store.discard_dead(job_id):
            raise OperationError(f"no dead letter {job_id}: it may have been retried or "
                                 "discarded already", status=404)
        await self._record(operator, job.event_id, "discard",
                           {"job_id": job_id, "job_bot": job.bot, "job": job.name or job.kind,
                            "reason": why})

    async def cancel_callback(self, operator: Operator, key: str) -> ActionRecord:
        """Stop a callback scheduled or in progress: no further attempt is placed.

        A call already ringing is not hung up; its outcome no longer counts.
        """
        action = await self._store.get_action(key)
        if action is None or action.kind not in CALLBACK_KINDS:
            raise OperationError(f"no callback {key!r}", status=404)
        if action.state != "started":
            raise OperationError(f"callback {key!r} has ended ({action.state}); there is "
                                 "nothing to cancel", status=409)
        reason = f"cancelled in the console by {operator.name}"
        settled = await self._store.settle_action(key, "failed", {
            "outcome": "cancelled", "state": "cancelled", "reason": reason,
        })
        await self._store.release_callback(str(action.detail.get("to", "")), action.kind, key,
                                           reached=False)
        dropped = await self._store.discard_pending(action.event_id, f"{CALLBACK_TASK}:{key}:")
        await self._record(operator, action.event_id, "cancel",
                           {"callback": key, "was": action.detail.get("state"),
                            "attempts_dropped": dropped})
        log.info("console.callback_cancelled", key=key, by=operator.name)
        return settled

    async def revert_flow(self, operator: Operator, change_key: str, *,
                          force: bool = False) -> None:
        """Undo a recorded flow change, with the revert's own checks (newer change: 409)."""
        if self._api is None:
            raise OperationError("this process has no phone.systems client", status=503)
        change = await self._store.get_action(change_key)
        if change is None or change.kind not in FLOW_KINDS:
            raise OperationError(f"no flow change {change_key!r}", status=404)
        record = ActionLog(self._store, event_id=change.event_id, bot=CONSOLE_BOT,
                           dry_run=False)
        try:
            await FlowChanges(self._api, self._store).revert(record, change_key, force=force)
        except AgentkitError as exc:
            status = getattr(exc, "status", None)
            raise OperationError(str(exc), status=409 if status == 409 else 400) from None
        await self._record(operator, change.event_id, "revert",
                           {"change": change_key, "force": force})

    async def _record(self, operator: Operator, event_id: str, change: str,
                      detail: dict[str, Any]) -> None:
        key = f"{event_id}:{CONSOLE_BOT}:{change}:{uuid.uuid4().hex[:12]}"
        await self._store.claim_action(key, event_id=event_id, bot=CONSOLE_BOT,
                                       kind=f"console.{change}",
                                       detail={**operator.describe(), **detail})
        await self._store.settle_action(key, "done", {"outcome": change})
        log.info("console.change", change=change, event_id=event_id, by=operator.name,
                 role=operator.role)

    def _woken(self) -> None:
        if self._wake is not None:
            self._wake()


def _reason(reason: str) -> str:
    why = " ".join(reason.split())
    if not why:
        raise OperationError("say why the dead letter is discarded (the reason is kept)")
    if len(why) > REASON_LIMIT:
        raise OperationError(f"the reason is longer than {REASON_LIMIT} characters")
    return why
