"""Operator commands on the store: do-not-call, the calls switch, erasure, dead letters, approvals.

Each works on the store every process of the deployment shares, so a change
holds for all of its workers at once; the calls switch tells the chat channel.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from agentkit.actions.callbacks import CALLBACK_TASK, PAUSED_MARK
from agentkit.actions.notify import ChatMessage, Notifier
from agentkit.actions.policy import to_e164
from agentkit.approvals.desk import ApprovalConfig, ApprovalDesk
from agentkit.approvals.slack import describe, facts
from agentkit.errors import ConfigError
from agentkit.redact import mask_payment_data
from agentkit.settings import Settings
from agentkit.store import Store, store_for_url
from agentkit.store.base import CALLS_PAUSED, Approval, ApprovalDecision


def operator_settings() -> Settings:
    """The settings an operator command needs: the store and the chat channels.

    Read as in sandbox mode, so that a command needs no API key; it calls no API.
    """
    return Settings.from_env(sandbox=True)


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[Store]:
    store = store_for_url(settings.database_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _number(args: argparse.Namespace, settings: Settings) -> str:
    region = args.country.upper() if args.country else None
    if region is None and settings.dial_countries and len(settings.dial_countries) == 1:
        region = next(iter(settings.dial_countries))
    return to_e164(args.number, region=region)


async def dnc_command(args: argparse.Namespace) -> int:
    """``agentkit dnc add|remove|list``."""
    settings = operator_settings()
    async with opened_store(settings) as store:
        if args.action == "list":
            entries = await store.do_not_call_list()
            if args.json:
                print(json.dumps([{"number": e.number, "reason": e.reason,
                                   "added_by": e.added_by, "added_at": e.created_at.isoformat()}
                                  for e in entries]))
            elif not entries:
                print("the do-not-call list is empty")
            for entry in [] if args.json else entries:
                why = f"  {entry.reason}" if entry.reason else ""
                print(f"{entry.number}  added {entry.created_at:%Y-%m-%d %H:%M} UTC by "
                      f"{entry.added_by or 'unknown'}{why}")
            return 0
        number = _number(args, settings)
        if args.action == "add":
            changed = await store.add_do_not_call(number, reason=args.reason,
                                                  added_by=getpass.getuser())
        else:
            changed = await store.remove_do_not_call(number)
    print(json.dumps({"number": number, "action": args.action, "changed": changed}))
    return 0


async def calls_command(args: argparse.Namespace) -> int:
    """``agentkit calls pause|resume|status``: every outbound call of the deployment."""
    settings = operator_settings()
    who = getpass.getuser()
    async with opened_store(settings) as store:
        if args.action == "status":
            paused = await store.switch(CALLS_PAUSED)
            print(json.dumps({"paused": paused or settings.calls_paused,
                              "switch": paused, "environment": settings.calls_paused}))
            return 0
        pause = args.action == "pause"
        changed = await store.set_switch(CALLS_PAUSED, pause, changed_by=who)
        woken = 0 if pause else await _wake_paused_callbacks(store)
    if changed:
        await Notifier.from_settings(settings).send(ChatMessage(
            title="Outbound calls paused" if pause else "Outbound calls resumed",
            text=(f"{who} paused every outbound call: callbacks wait, and are placed on "
                  "'agentkit calls resume' if still within their window and the policy."
                  if pause else
                  f"{who} resumed outbound calls; callbacks that waited are placed now."),
            urgency="high",
            reference=f"calls-{args.action}",
        ))
    result = {"paused": pause, "changed": changed, "callbacks_woken": woken}
    if not pause and settings.calls_paused:
        result["note"] = "AGENTKIT_CALLS_PAUSED=1 is set: calls stay paused until it is removed"
    print(json.dumps(result))
    return 0


async def _wake_paused_callbacks(store: Store) -> int:
    """Make every callback waiting on the pause due now."""
    now = datetime.now(UTC)
    woken = 0
    for job in await store.scheduled(f"{CALLBACK_TASK}:"):
        if PAUSED_MARK in job.name and await store.reschedule(job.id, now):
            woken += 1
    return woken


async def erase_command(args: argparse.Namespace) -> int:
    """``agentkit erase NUMBER``."""
    from agentkit.erasure import erase

    settings = operator_settings()
    number = _number(args, settings)
    async with opened_store(settings) as store:
        removed = await erase(store, number, requested_by=getpass.getuser())
    print(json.dumps({"number": number, "removed": removed}))
    return 0


async def dead_command(args: argparse.Namespace) -> int:
    """``agentkit dead [--bot B] [--json]``, ``--retry ID ...`` or ``--retry-all BOT``."""
    settings = operator_settings()
    async with opened_store(settings) as store:
        dead = await store.jobs_in_state("dead", limit=max(args.limit, 1) if not (
            args.retry or args.retry_all) else 10_000)
        if args.retry or args.retry_all:
            wanted = set(args.retry or ()) if args.retry else {
                job.id for job in dead if job.bot == args.retry_all}
            if not wanted:
                print(f"no dead jobs of bot {args.retry_all!r}" if args.retry_all
                      else "no job ids given")
                return 1 if args.retry else 0
            missing = [job_id for job_id in sorted(wanted) if not await store.retry_dead(job_id)]
            for job_id in sorted(wanted - set(missing)):
                print(f"job {job_id}: queued again")
            for job_id in missing:
                print(f"job {job_id}: not a dead job (it may have been retried already)")
            return 1 if missing else 0
        shown = [job for job in dead if args.bot is None or job.bot == args.bot][: args.limit]
        if args.json:
            print(json.dumps([{"id": j.id, "kind": j.kind, "bot": j.bot, "name": j.name,
                               "event_id": j.event_id, "attempts": j.attempts,
                               "error": j.last_error} for j in shown]))
        elif not shown:
            print("no dead letters")
        else:
            for j in shown:
                print(f"job {j.id}  {j.bot or j.kind}  event {j.event_id}  "
                      f"after {j.attempts} attempt(s): {(j.last_error or '')[:200]}")
    return 0


async def console_command(args: argparse.Namespace) -> int:
    """``agentkit console add-user NAME --role ROLE``: prints the new token, once."""
    from agentkit.console import UsersFile

    path = args.users_file or operator_settings().console_users
    if not path:
        raise ConfigError("no users file: set AGENTKIT_CONSOLE_USERS to its path (for "
                          "example /var/lib/agentkit/console-users.json), or give --users-file")
    token = UsersFile(path).add(args.name, args.role)
    print(f"added {args.name} ({args.role}) to {path}. Their token, shown this once:")
    print(token)
    return 0


async def approvals_command(args: argparse.Namespace) -> int:
    """``agentkit approvals list|approve ID|reject ID [--reason TEXT]``.

    Whoever runs it, with access to the store, is trusted as an approver. The
    decision is recorded, once, with its job; the running service's workers
    carry it out. 1 when the approval was not decided (already, or too late).
    """
    settings = operator_settings()
    async with opened_store(settings) as store:
        desk = ApprovalDesk(store, ApprovalConfig.from_settings(settings))
        if args.action == "list":
            waiting = await desk.pending(limit=max(args.limit, 1))
            if args.json:
                print(json.dumps([_approval_json(a) for a in waiting], ensure_ascii=False))
            elif not waiting:
                print("no approvals waiting")
            else:
                print("\n\n".join(_approval_block(a) for a in waiting))
            return 0
        decision: ApprovalDecision = "approved" if args.action == "approve" else "rejected"
        verdict = await desk.decide(args.id, decision, by=f"cli:{getpass.getuser()}",
                                    reason=args.reason)
    approval = verdict.approval
    if not verdict.decided:
        print(f"agentkit: {approval.id}: {verdict.explain()}", file=sys.stderr)
        return 1
    after = ("the running agentkit's workers carry it out" if decision == "approved"
             else "it will not be done")
    print(f"{approval.id}: {verdict.explain()}: {mask_payment_data(describe(approval))}; {after}")
    return 0


def _approval_block(approval: Approval) -> str:
    """An approval as ``approvals list`` prints it: id, kind and action, then its facts."""
    lines = [f"{approval.id}  {approval.kind}: {mask_payment_data(describe(approval))}"]
    lines += [f"  {label}: {text}" for label, text in facts(approval) if label != "Action"]
    diff = approval.what.get("diff")
    if diff:
        lines += ["  Change:", *(f"    {line}" for line in
                                 mask_payment_data(str(diff)).splitlines())]
    return "\n".join(lines)


def _approval_json(approval: Approval) -> dict[str, object]:
    why = approval.why
    return {"id": approval.id, "kind": approval.kind,
            "action": mask_payment_data(describe(approval)), "bot": approval.bot,
            "call_id": approval.call_id, "deadline": approval.deadline.isoformat(),
            "reason": mask_payment_data(str(why.get("reason") or "")),
            "quote": mask_payment_data(str(why.get("quote") or "")),
            "rule": why.get("rule"), "asked_at": approval.created_at.isoformat()}
