"""Call-flow changes: validated before sending, recorded with before and after, revertible."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from agentkit.actions.record import ActionLog, Settle
from agentkit.approvals.desk import ApprovalDesk
from agentkit.approvals.rules import REQUIRED
from agentkit.bot import Bot
from agentkit.errors import ConflictError, RequestValidationError
from agentkit.logs import get_logger
from agentkit.odygy.client import OdygyClient
from agentkit.odygy.models import CallFlow, CallFlowUpdate, flow_problems, validate_request
from agentkit.odygy.resources._base import NOT_GIVEN
from agentkit.store.base import ActionState, Approval, Store

log = get_logger("agentkit.actions")

AWAITING = "awaiting_approval"
# A number the account no longer has: never equal to a flow id.
_GONE = object()


class FlowChangeError(RequestValidationError):
    """A flow change was refused before it was sent; the message says why."""


def flow_diff(before: Any, after: Any) -> str:
    """A unified diff of two JSON shapes: a flow before and after, or a number's flow id."""
    old = json.dumps(before, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    new = json.dumps(after, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return "\n".join(difflib.unified_diff(old, new, "before", "after", lineterm="", n=2))


def _shape(flow: CallFlow) -> dict[str, Any]:
    dumped = flow.model_dump(mode="json", exclude_none=True)
    return {"name": dumped["name"], "entry": dumped["entry"], "blocks": dumped["blocks"]}


class FlowChanges:
    """Changes to call flows and number routing, through the action log.

    A change that must wait for a person (``approvals``) is recorded with the
    flow as it was and as it will be; once approved, exactly that change is
    made, and only if the flow is still as it was shown.
    """

    def __init__(self, api: OdygyClient, store: Store,
                 approvals: ApprovalDesk | None = None) -> None:
        self._api = api
        self._store = store
        self._approvals = approvals

    async def update(
        self,
        record: ActionLog,
        flow_id: str,
        *,
        name: str | None = None,
        entry: str | None = None,
        blocks: Mapping[str, Any] | None = None,
        key_name: str = "",
        bot: Bot | None = None,
        approval: str | None = None,
        reason: str = "",
    ) -> dict[str, Any]:
        """Change a flow once per event; returns the recorded ``{"before", "after"}`` (with
        ``approval_id`` while it waits for a person)."""
        key = record.key("update_flow", key_name or flow_id)
        before = await self._api.call_flows.retrieve(flow_id)
        after = self._merged(before, name=name, entry=entry, blocks=blocks)
        detail = {"flow_id": flow_id, "before": _shape(before), "after": after}
        wait = self._waiting_rule(bot, "update_flow", approval)
        if wait is not None and bot is not None and not record.dry_run:
            return await self._ask(record, key, "update_flow", detail, bot,
                                   {"reason": reason, "rule": wait},
                                   flow_diff(detail["before"], after))
        done = await record.perform(
            key, "update_flow", detail,
            lambda _: self._api.call_flows.update(
                flow_id, name=after["name"], entry=after["entry"], blocks=after["blocks"]
            ),
            settle=Settle("done", "changed"),
        )
        return detail if done.how == "dry_run" else dict(done.claimed.detail)

    async def revert(self, record: ActionLog, change_key: str, *, force: bool = False) -> None:
        """Undo the recorded change ``change_key``: a flow change or a number's attachment.

        Refused (ConflictError) when the flow, or the number's routing, changed
        again since, unless ``force``.
        """
        change = await self._store.get_action(change_key)
        if change is None or change.kind not in ("update_flow", "attach_number") \
                or change.state != "done" or change.detail.get("outcome") == "dry_run":
            raise FlowChangeError(f"no completed flow change {change_key!r} to revert")
        if change.kind == "attach_number":
            await self._revert_attach(record, change_key, change.detail, force=force)
            return
        flow_id = str(change.detail["flow_id"])
        current = _shape(await self._api.call_flows.retrieve(flow_id))
        if current != change.detail["after"] and not force:
            raise ConflictError(
                f"call flow {flow_id} changed after {change_key}; revert with force=True to "
                "overwrite the newer change",
                status=409, code="conflict",
            )
        before = change.detail["before"]
        key = record.key("revert_flow", change_key)
        detail = {"flow_id": flow_id, "before": current, "after": before, "reverts": change_key}
        await record.perform(
            key, "revert_flow", detail,
            lambda _: self._api.call_flows.update(
                flow_id, name=before["name"], entry=before["entry"], blocks=before["blocks"]
            ),
            settle=Settle("done", "reverted"),
        )

    async def _revert_attach(
        self, record: ActionLog, change_key: str, change: dict[str, Any], *, force: bool
    ) -> None:
        number_id, before = str(change["number_id"]), change.get("before")
        numbers = {n.id: n async for n in self._api.numbers.list(limit=100)}
        number = numbers.get(number_id)
        if number is None:
            raise FlowChangeError(f"the account no longer has number {number_id!r}")
        if number.call_flow_id != change["after"] and not force:
            raise ConflictError(
                f"number {number.number} was routed elsewhere after {change_key}; revert with "
                "force=True to overwrite the newer change",
                status=409, code="conflict",
            )
        if before is None:
            raise FlowChangeError(
                f"number {number.number} had no call flow before {change_key}; the API cannot "
                "detach one, so attach the flow you want instead"
            )
        key = record.key("revert_attach", change_key)
        detail = {"number_id": number_id, "before": number.call_flow_id, "after": before,
                  "reverts": change_key}
        await record.perform(
            key, "revert_attach", detail,
            lambda _: self._api.numbers.attach(number_id, call_flow_id=str(before)),
            settle=Settle("done", "reverted"),
        )

    async def attach_number(
        self, record: ActionLog, number_id: str, call_flow_id: str, *, key_name: str = "",
        bot: Bot | None = None, approval: str | None = None, reason: str = "",
    ) -> dict[str, Any]:
        """Route a number into another flow, recording the flow it had before."""
        key = record.key("attach_number", key_name or f"{number_id}:{call_flow_id}")
        numbers = {n.id: n async for n in self._api.numbers.list(limit=100)}
        number = numbers.get(number_id)
        if number is None:
            raise FlowChangeError(f"the account has no number {number_id!r}")
        detail = {"number_id": number_id, "before": number.call_flow_id, "after": call_flow_id}
        wait = self._waiting_rule(bot, "attach_number", approval)
        if wait is not None and bot is not None and not record.dry_run:
            return await self._ask(
                record, key, "attach_number", {**detail, "number": number.number}, bot,
                {"reason": reason, "rule": wait}, flow_diff(number.call_flow_id, call_flow_id))
        done = await record.perform(
            key, "attach_number", detail,
            lambda _: self._api.numbers.attach(number_id, call_flow_id=call_flow_id),
            settle=Settle("done", "attached"),
        )
        return detail if done.how == "dry_run" else dict(done.claimed.detail)

    def _waiting_rule(self, bot: Bot | None, kind: str, approval: str | None) -> str | None:
        if approval not in (None, REQUIRED):
            raise FlowChangeError(f"{kind}: approval= takes {REQUIRED!r} or None, "
                                  f"not {approval!r}")
        if self._approvals is None or bot is None:
            if approval == REQUIRED:
                raise FlowChangeError(f"{kind}: approval='required', but this process has no "
                                      "approvals")
            return None
        return self._approvals.config.waiting_rule(bot, kind, required=approval == REQUIRED)

    async def _ask(self, record: ActionLog, key: str, kind: str, detail: dict[str, Any],
                   bot: Bot, why: dict[str, Any], diff: str) -> dict[str, Any]:
        """Record the change as waiting, and ask once; the change as recorded."""
        assert self._approvals is not None
        claim = await record.claim(key, kind, {**detail, "state": AWAITING})
        if claim.finished or claim.record.detail.get("approval_id"):
            return dict(claim.record.detail)
        approval, settled = await self._approvals.ask(
            action_key=key, event_id=record.event_id, bot=bot, kind=kind,
            what={**detail, "diff": diff}, why=why,
        )
        log.info("flow.awaiting_approval", key=key, approval=approval.id)
        return dict(settled.detail)

    async def approved(self, approval: Approval) -> str:
        """Make an approved change, exactly as shown, if the flow is still as it was shown."""
        record = await self._store.get_action(approval.action_key)
        if record is None:
            raise FlowChangeError(f"approval {approval.id}: no action {approval.action_key!r}")
        if record.state in ("done", "failed"):
            return f"Already ended: {record.detail.get('outcome')}."
        detail = record.detail
        if approval.kind == "attach_number":
            numbers = {n.id: n async for n in self._api.numbers.list(limit=100)}
            number = numbers.get(str(detail["number_id"]))
            current = number.call_flow_id if number is not None else _GONE
        else:
            current = _shape(await self._api.call_flows.retrieve(str(detail["flow_id"])))
        if current == detail["after"]:
            await self._settle_approved(record.key, approval, "done", "changed")
            return "Changed."
        if current != detail["before"]:
            await self._settle_approved(
                record.key, approval, "failed", "conflict",
                "it changed after the approval was asked, so the change shown no longer "
                "applies; nothing was changed")
            return "Not changed: it changed after the approval was asked."
        if approval.kind == "attach_number":
            await self._api.numbers.attach(str(detail["number_id"]),
                                           call_flow_id=str(detail["after"]))
        else:
            after = detail["after"]
            await self._api.call_flows.update(str(detail["flow_id"]), name=after["name"],
                                              entry=after["entry"], blocks=after["blocks"])
        await self._settle_approved(record.key, approval, "done", "changed")
        return "Changed."

    async def rejected(self, approval: Approval, reason: str) -> None:
        """A change nobody approved is never made."""
        record = await self._store.get_action(approval.action_key)
        if record is None or record.state in ("done", "failed"):
            return
        await self._store.settle_action(record.key, "failed",
                                        {"outcome": "rejected", "reason": reason})
        log.info("flow.rejected", key=record.key, approval=approval.id)

    async def _settle_approved(self, key: str, approval: Approval, state: ActionState,
                               outcome: str, reason: str = "") -> None:
        await self._store.settle_action(key, state, {
            "outcome": outcome, "approved_by": approval.decided_by,
            **({"reason": reason} if reason else {}),
        })
        log.info("flow.approved", key=key, approval=approval.id, outcome=outcome)

    @staticmethod
    def _merged(
        flow: CallFlow,
        *,
        name: str | None,
        entry: str | None,
        blocks: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        current = _shape(flow)
        change = {
            "name": name if name is not None else NOT_GIVEN,
            "entry": entry if entry is not None else NOT_GIVEN,
            "blocks": dict(blocks) if blocks is not None else NOT_GIVEN,
        }
        given = {k: v for k, v in change.items() if v is not NOT_GIVEN}
        if not given:
            raise FlowChangeError("update_flow needs at least one of name, entry or blocks")
        try:
            checked = validate_request(CallFlowUpdate, given)
        except Exception as exc:
            raise FlowChangeError(f"the flow change is invalid: {exc}") from None
        merged_blocks = checked.blocks if checked.blocks is not None else flow.blocks
        merged_entry = checked.entry or flow.entry
        problems = flow_problems(merged_entry, dict(merged_blocks))
        if problems:
            raise FlowChangeError(f"the changed flow would be broken: {'; '.join(problems)}")
        return {
            "name": checked.name or current["name"],
            "entry": merged_entry,
            "blocks": {
                k: v.model_dump(mode="json", exclude_none=True) for k, v in merged_blocks.items()
            },
        }
