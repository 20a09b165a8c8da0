"""What happened on a call, in words: a one-line outcome for the call list, and the timeline.

Everything here is data for the templates, which escape it: nothing from a
call is trusted, and payment data is masked before it is shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agentkit.actions.flows import flow_diff
from agentkit.redact import mask_json_answer, mask_payment_data
from agentkit.store.base import (
    JOIN_TIMER_PREFIX,
    ActionRecord,
    BotRun,
    CallActivity,
    EventRecord,
    JobRecord,
    ModelAnswer,
)

ItemKind = Literal["delivery", "run", "model", "action", "job"]
FLOW_KINDS = ("update_flow", "attach_number", "revert_flow", "revert_attach")
_TEXT_LIMIT = 4000


def call_outcome(activity: CallActivity | None) -> str:
    """What happened, in a few words: "callback reached after 2 attempts, note posted"."""
    if activity is None:
        return ""
    parts: list[str] = []
    for action in activity.actions:
        said = _action_outcome(action)
        if said and said not in parts:
            parts.append(said)
    if activity.dead_jobs:
        parts.append("dead letter" if activity.dead_jobs == 1
                     else f"{activity.dead_jobs} dead letters")
    if not parts:
        return "no action" if activity.bots else "received"
    return ", ".join(parts)


def _action_outcome(action: ActionRecord) -> str:
    detail, kind = action.detail, action.kind
    if kind in ("callback", "escalation"):
        noun = "callback" if kind == "callback" else "escalation"
        attempts = int(detail.get("attempts", 0) or 0)
        tries = f"{attempts} attempt" + ("" if attempts == 1 else "s")
        outcome = detail.get("outcome")
        if action.state == "started":
            state = str(detail.get("state", "open"))
            return f"{noun} {_OPEN_WORDS.get(state, state)}"
        if outcome == "reached":
            return f"{noun} reached after {tries}"
        if outcome == "unreached":
            return f"{noun} not reached after {tries}"
        if outcome == "merged":
            return f"{noun} joined to one already open"
        return f"{noun} {outcome or action.state}"
    if kind == "notify":
        return "note posted" if action.state == "done" else "note not delivered"
    if kind in ("update_flow", "attach_number"):
        return "flow changed" if action.state == "done" else "flow change failed"
    if kind in ("revert_flow", "revert_attach"):
        return "flow change reverted"
    return ""


_OPEN_WORDS = {"scheduled": "scheduled", "retry_scheduled": "to be retried",
               "placed": "ringing", "paused": "waiting (calls paused)", "open": "open"}


@dataclass(frozen=True)
class Item:
    """One line of a call's timeline."""

    at: datetime
    kind: ItemKind
    title: str
    status: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    code: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    job_id: int | None = None
    cancel_key: str | None = None
    revert_key: str | None = None
    link_calls: list[str] = field(default_factory=list)


def timeline(
    *,
    events: list[EventRecord],
    runs: list[BotRun],
    answers: list[ModelAnswer],
    actions: list[ActionRecord],
    jobs: list[JobRecord],
) -> list[Item]:
    """Everything agentkit did on a call, in time order."""
    items = [_delivery(e) for e in events]
    items += [_run(r) for r in runs]
    items += [_answer(a) for a in answers]
    items += [_action(a) for a in actions]
    # A join's timer stays pending until its timeout even after the join completed: it is
    # bookkeeping, not work the operator needs to see.
    items += [_job(j) for j in jobs if j.state in ("dead", "pending", "discarded")
              and not j.name.startswith(JOIN_TIMER_PREFIX)]
    return sorted(items, key=lambda item: item.at)


def _delivery(event: EventRecord) -> Item:
    fields = [("event", event.id), ("sent", _time(event.created_at))]
    if event.duplicates:
        fields.append(("delivered again", f"{event.duplicates} time"
                       + ("" if event.duplicates == 1 else "s")))
    if not event.routable:
        fields.append(("routed", "no (unknown type, or unreadable)"))
    return Item(event.received_at, "delivery", event.type, "received", fields)


def _run(run: BotRun) -> Item:
    ms = (run.finished_at - run.started_at).total_seconds() * 1000
    fields = [("attempt", str(run.attempt)), ("took", f"{ms:.0f} ms"), ("job", str(run.job_id))]
    if run.prompt_tokens or run.completion_tokens:
        fields.append(("tokens", f"{run.prompt_tokens} in, {run.completion_tokens} out"))
        fields.append(("cost", f"${run.cost_usd:.6f}"))
    return Item(run.started_at, "run", f"{run.bot} ran", run.outcome, fields,
                text=mask_payment_data(run.error or "")[:_TEXT_LIMIT])


def _answer(answer: ModelAnswer) -> Item:
    fields = [("bot", answer.bot), ("model", answer.model),
              ("tokens", f"{answer.prompt_tokens} in, {answer.completion_tokens} out"),
              ("cost", f"${answer.cost_usd:.6f}"),
              ("from the cache", "yes" if answer.cached else "no")]
    return Item(answer.created_at, "model", f"model: {answer.task}", "answered", fields,
                code=_pretty(mask_json_answer(answer.answer))[:_TEXT_LIMIT])


def _action(action: ActionRecord) -> Item:
    detail, kind = action.detail, action.kind
    fields = [("bot", action.bot), ("key", action.key)]
    status = str(detail.get("outcome") or action.state)
    if kind in ("callback", "escalation"):
        return _callback(action, fields, status)
    if kind == "notify":
        return Item(action.created_at, "action", f"note: {_words(detail.get('title'))}",
                    status, fields, text=_words(detail.get("text")))
    if kind in FLOW_KINDS:
        before, after = detail.get("before"), detail.get("after")
        for name in ("flow_id", "number_id", "reverts"):
            if name in detail:
                fields.append((name.replace("_", " "), str(detail[name])))
        revertible = kind in ("update_flow", "attach_number") and action.state == "done" \
            and status != "dry_run"
        return Item(action.created_at, "action", _FLOW_TITLES[kind], status, fields,
                    code=diff(before, after), revert_key=action.key if revertible else None)
    if kind.startswith("console."):
        by = str(detail.get("by", "?")) + (" (shared login)" if detail.get("shared_login") else "")
        fields = [("by", by), ("role", str(detail.get("role", "")))]
        for name in ("job_id", "callback", "change", "reason", "group"):
            if name in detail:
                fields.append((name.replace("_", " "), _words(detail[name])))
        return Item(action.created_at, "action", f"console: {kind.split('.', 1)[1]}",
                    action.state, fields)
    for name, value in detail.items():
        if isinstance(value, str | int | float) and name not in ("outcome",):
            fields.append((name, _words(value)))
    return Item(action.created_at, "action", kind, status, fields)


_FLOW_TITLES = {"update_flow": "flow changed", "attach_number": "number routed to a flow",
                "revert_flow": "flow change reverted", "revert_attach": "number routing reverted"}


def _callback(action: ActionRecord, fields: list[tuple[str, str]], status: str) -> Item:
    detail = action.detail
    # "state" and "next_at" say how an open callback stands; once ended, the outcome does.
    shown = ("to", "from", "urgency", "state", "next_at", "agent") if action.state == "started" \
        else ("to", "from", "urgency", "agent")
    for name in shown:
        if detail.get(name):
            fields.append((name.replace("_", " "), str(detail[name])))
    fields.append(("attempts", str(detail.get("attempts", 0))))
    attempts = [
        {"attempt": item.get("attempt"), "call_id": item.get("call_id"),
         "status": item.get("status"), "duration": item.get("duration"), "at": item.get("at")}
        for item in detail.get("attempt_log", [])
    ]
    logged = {a["call_id"] for a in attempts}
    for number, call_id in enumerate(detail.get("call_ids", []), start=1):
        if call_id not in logged:
            attempts.append({"attempt": number, "call_id": call_id, "status": "in progress",
                             "duration": None, "at": None})
    title = "callback" if action.kind == "callback" else "escalation"
    return Item(
        action.created_at, "action", title, status, fields,
        text=_words(detail.get("reason")), attempts=attempts,
        cancel_key=action.key if action.state == "started" else None,
        link_calls=[str(c) for c in detail.get("call_ids", [])],
    )


def _job(job: JobRecord) -> Item:
    title = f"job {job.id}: " + (job.bot or "") + (f" {job.name}" if job.name else f" {job.kind}")
    fields = [("attempts", f"{job.attempts} of {job.max_attempts}"),
              ("due" if job.state == "pending" else "changed",
               _time(job.run_at if job.state == "pending" else (job.updated_at or job.run_at)))]
    return Item(job.updated_at or job.run_at, "job", title, job.state, fields,
                text=mask_payment_data(job.last_error or "")[:_TEXT_LIMIT],
                job_id=job.id if job.state == "dead" else None)


def diff(before: Any, after: Any) -> str:
    """A unified diff of two JSON shapes: a flow before and after, or a number's flow id."""
    return flow_diff(before, after)[:_TEXT_LIMIT]


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _words(value: Any) -> str:
    return mask_payment_data(str(value if value is not None else ""))[:_TEXT_LIMIT]


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")
