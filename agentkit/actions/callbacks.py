"""Callbacks: a click-to-call back to a caller, placed once, inside business hours, retried.

The life of one callback, all of it in the action log under one key:

1. requested by a handler: the dial gate vets the number (policy, the
   account's own numbers, the do-not-call list) and gives its E.164 form; a
   caller who already has a callback open gets no second one: the request is
   merged into it; outside business hours it is scheduled (a task at the next
   opening, urgent first); one with a window the caller asked for waits for its
   start, clamped into business hours (``agentkit.actions.window``);
2. placed: the gate vets the number again and claims the call against the
   caps (or, while calls are paused, it waits); an agent of the bot's team
   (round robin) rings first, from the number the caller called, to the caller;
3. followed: the callback's ``call.completed`` says reached (done), or busy /
   no answer / voicemail, retried after ``retry_after`` up to ``max_attempts``
   (sooner where that keeps it inside the caller's window), each retry vetted
   and claimed like the first call;
4. cancelled before any attempt when the caller has been reached meanwhile
   (they called again and were answered, or an agent called them); given up
   when it could not be placed within the bot's ``expire_after``.

The bot's ``after_callback`` handlers hear how it ended.
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog

from agentkit.actions.dialing import DialGate
from agentkit.actions.hours import BusinessHours
from agentkit.actions.record import ActionLog, Claim, Settle, action_key
from agentkit.actions.window import CallbackWindow
from agentkit.approvals.desk import ApprovalDesk
from agentkit.approvals.rules import REQUIRED
from agentkit.bot import Bot, Team, Urgency
from agentkit.errors import AgentkitError, ApiStatusError
from agentkit.events import CallbackOutcome, CallbackOutcomeName, CallCompleted, Event
from agentkit.logs import get_logger
from agentkit.odygy.client import OdygyClient
from agentkit.odygy.models import FINAL_CALL_STATUSES, User
from agentkit.odygy.resources._base import NOT_GIVEN
from agentkit.redact import mask_payment_data
from agentkit.store.base import ActionRecord, Approval, Job, JobSpec, PlacedCall, Store

log = get_logger("agentkit.actions")

CALLBACK_TASK = "callback"
OUTCOME_TASK = "callback-outcome"
AFTER_TASK = "after-callback"
# A team's users are listed once per this many seconds per process, not once per
# callback: a changed team is seen within that time (docs/bots.md).
TEAM_CACHE_SECONDS = 10.0
_PRIORITY_DELAY = {"urgent": 0, "high": 5, "normal": 10, "low": 15}
# While calls are paused, a due callback looks again this often (and at once on resume).
PAUSE_RECHECK = timedelta(seconds=60)
PAUSED_MARK = ":paused"
# A retry moved up to stay inside the caller's window comes no sooner than this.
MIN_RETRY_GAP = timedelta(minutes=5)
_OPEN_STATES = ("scheduled", "placed", "retry_scheduled", "paused", "approved")
AWAITING = "awaiting_approval"

Status = Literal["placed", "scheduled", "refused", "cancelled", "dry_run", "in_progress", "done",
                 "paused", "merged", "awaiting_approval"]
Outcome = CallbackOutcomeName


class ActionError(AgentkitError):
    """An action was asked for in a way that cannot work; the message says why."""


@dataclass(frozen=True)
class CallbackResult:
    """What a callback request led to, right now."""

    status: Status
    key: str
    call_id: str | None = None
    at: datetime | None = None
    reason: str | None = None
    number: str | None = None
    merged_into: str | None = None
    requests: tuple[str, ...] = ()

    def plan(self, zone: str | None = None) -> str:
        """What will happen, in words for a chat note; times in ``zone`` (None: UTC)."""
        tz = zoneinfo.ZoneInfo(zone) if zone else UTC
        at = f"{self.at.astimezone(tz):%a %d %b %H:%M %Z}" if self.at is not None else ""
        if self.status == "placed":
            return "calling back now"
        if self.status == "scheduled" and at:
            return f"callback planned for {at}"
        if self.status == "refused":
            return f"not called back: {self.reason}"
        if self.status == "merged":
            return f"no second callback: {self.reason} ({len(self.requests)} requests)"
        if self.status == "paused":
            return "calls are paused: called back when they resume"
        if self.status == "awaiting_approval" and at:
            return f"waiting for approval until {at} (not called back unless approved)"
        return f"callback {self.status}"


AfterCallback = Callable[[Bot, Job, Event, CallbackOutcome], Awaitable[None]]


def caller_of(event: Event) -> str | None:
    """Who called, for the events that say: the ``from`` of an inbound call or voicemail."""
    data = getattr(event, "data", None)
    if getattr(data, "direction", "inbound") != "inbound":
        return getattr(data, "to", None)
    return getattr(data, "from_", None)


def number_called(event: Event) -> str | None:
    """The account's number involved: what the caller dialled, or what we called from."""
    data = getattr(event, "data", None)
    if getattr(data, "direction", "inbound") != "inbound":
        return getattr(data, "from_", None)
    return getattr(data, "to", None)


class Callbacks:
    """Places and follows every callback of this process's bots."""

    def __init__(
        self,
        api: OdygyClient,
        store: Store,
        bots: Mapping[str, Bot],
        *,
        gate: DialGate,
        default_hours: BusinessHours,
        after_callback: AfterCallback,
        approvals: ApprovalDesk | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``approvals``: where callbacks that must wait for a person are asked (None: no
        callback can wait, and one asked to raises ActionError). ``clock``: what is taken
        for now when placing and scheduling (a test's may be moved by hand)."""
        self._approvals = approvals
        self._clock = clock
        self._api = api
        self._store = store
        self._bots = bots
        self._gate = gate
        self._default_hours = default_hours
        self._after_callback = after_callback
        self._teams: dict[tuple[str | None, tuple[str, ...]], tuple[float, list[User]]] = {}

    # requested by a handler

    async def request(
        self,
        record: ActionLog,
        event: Event,
        bot: Bot,
        *,
        to: str | None,
        from_: str | None,
        urgency: Urgency,
        reason: str,
        team: Team,
        name: str,
        escalation: bool,
        approval: str | None = None,
        quote: str = "",
        window: CallbackWindow | None = None,
    ) -> CallbackResult:
        kind = "escalation" if escalation else "callback"
        if approval not in (None, REQUIRED):
            raise ActionError(f"{kind}: approval= takes {REQUIRED!r} or None, not {approval!r}")
        if approval == REQUIRED and self._approvals is None:
            raise ActionError(f"{kind}: approval='required', but this process has no approvals")
        key = record.key(kind, name)
        caller, called = await self._numbers(event)
        to, from_ = to or caller, from_ or called
        if to is None or from_ is None:
            raise ActionError(
                f"{kind}: event {event.type} has no call with a caller or number; "
                "pass to= and from_="
            )
        refusal = await self._from_our_call(event)
        number: str | None = None
        if refusal is None:
            decision = await self._gate.vet(bot, to, caller=caller)
            number = decision.number if decision.allowed else None
            refusal = None if decision.allowed else decision.reason
        detail: dict[str, Any] = {
            "to": number or to, "from": from_, "urgency": urgency,
            "reason": mask_payment_data(reason), "team": team.describe(),
            "escalation": escalation, "origin_call_id": event.call_id, "caller": caller,
            "attempts": 0, "call_ids": [],
            **(window.detail() if window is not None else {}),
        }
        if refusal is not None or number is None:
            noted = await record.note(key, kind, detail,
                                      Settle("failed", "refused", {"reason": refusal}))
            if noted.how == "noted":
                log.warning("callback.refused", key=key, reason=refusal)
            return CallbackResult("refused", key, reason=refusal)
        wait = None if self._approvals is None else self._approvals.config.waiting_rule(
            bot, kind, required=approval == REQUIRED, to=number, caller=caller)
        why = {"reason": detail["reason"], "quote": mask_payment_data(quote), "rule": wait}
        done = await record.perform(
            key, kind, detail,
            lambda claim: self._open(claim, event, bot, number, wait=wait, why=why),
            settle=None,  # settled when its calls end: see _finish
        )
        if done.how == "dry_run":
            return CallbackResult("dry_run", key, number=number)
        if done.result is not None:
            return done.result
        merged_into = done.record.detail.get("merged_into")
        if merged_into:
            return await self._merged(done.record, str(merged_into))
        return CallbackResult("done", key, reason=done.record.detail.get("outcome"),
                              number=number)

    async def _open(self, claim: Claim, event: Event, bot: Bot, number: str, *,
                    wait: str | None, why: dict[str, Any]) -> CallbackResult:
        """A callback claimed and not finished: joined to one open for the caller, asked
        about (``wait``: the rule that makes it wait for a person), or tried."""
        key, kind = claim.record.key, claim.record.kind
        # When agentkit had the request: a callback that reached the caller after it
        # answers it (phone.systems' created_at has whole seconds only).
        stored = await self._store.get_event(event.id)
        asked_at = stored.received_at if stored is not None else event.created_at
        holder = await self._store.hold_callback(number, kind, key, asked_at=asked_at)
        if holder != key:
            return await self._merge(claim.record, holder)
        state = claim.record.detail.get("state")
        if state == AWAITING:
            return _awaiting(claim.record)
        if wait is not None and state is None:
            return await self._ask(claim.record, bot, why)
        if not claim.fresh and state in _OPEN_STATES:
            return CallbackResult("in_progress", key, number=number)
        return replace(await self._attempt(claim.record, bot, 1), number=number)

    async def _ask(self, record: ActionRecord, bot: Bot, why: dict[str, Any]) -> CallbackResult:
        """Wait for a person: the approval holds exactly what will be dialled."""
        assert self._approvals is not None
        detail = record.detail
        what = {key: detail.get(key) for key in
                ("to", "from", "urgency", "team", "caller", "escalation", "origin_call_id")}
        approval, settled = await self._approvals.ask(
            action_key=record.key, event_id=record.event_id, bot=bot, kind=record.kind,
            what=what, why=why, mark={"state": AWAITING},
        )
        log.info("callback.awaiting_approval", key=record.key, approval=approval.id)
        return _awaiting(settled)

    async def approved(self, approval: Approval) -> str:
        """Carry out an approved callback: exactly the number shown, vetted again, once."""
        record = await self._store.get_action(approval.action_key)
        if record is None:
            raise ActionError(f"approval {approval.id}: no action {approval.action_key!r}")
        if record.state in ("done", "failed"):
            return f"Already ended: {record.detail.get('outcome')}."
        if record.detail.get("state") not in (AWAITING, "approved"):
            return "Already under way."
        if str(approval.what.get("to")) != str(record.detail.get("to")):
            await self._finish_without_bot(record, "refused",
                                           "the number differs from the one approved")
            return "Not placed: the number differs from the one approved."
        bot = self._bots.get(record.bot)
        if bot is None:
            raise ActionError(f"callback {record.key}: its bot {record.bot!r} is not loaded")
        record = await self._store.settle_action(record.key, "started", {
            "state": "approved", "approved_by": approval.decided_by,
        })
        result = await self._attempt(record, bot, 1)
        return _result_words(result)

    async def rejected(self, approval: Approval, reason: str) -> None:
        """A callback nobody approved ends as ``rejected``: no call, the caller's hold freed."""
        record = await self._store.get_action(approval.action_key)
        if record is None or record.state in ("done", "failed"):
            return
        bot = self._bots.get(record.bot)
        if bot is None:
            await self._finish_without_bot(record, "rejected", reason)
            return
        await self._finish(record, bot, "failed", "rejected", reason)

    async def _finish_without_bot(self, record: ActionRecord, outcome: Outcome,
                                  reason: str) -> None:
        await self._store.settle_action(record.key, "failed",
                                        {"outcome": outcome, "reason": reason})
        await self._store.release_callback(str(record.detail["to"]), record.kind, record.key,
                                           reached=False)

    async def _merge(self, record: ActionRecord, holder: str) -> CallbackResult:
        """A caller with a callback open gets no second one: this request joins it."""
        held = await self._store.get_action(holder)
        if held is not None and not any(
            item.get("key") == record.key for item in held.detail.get("merged", [])
        ):
            await self._store.append_to_action(holder, "merged", {
                "key": record.key, "event_id": record.event_id, "bot": record.bot,
                "reason": record.detail.get("reason", ""),
                "urgency": record.detail.get("urgency", "normal"),
                "at": self._clock().isoformat(),
            })
        await self._store.settle_action(record.key, "done", {
            "state": "merged", "outcome": "merged", "merged_into": holder,
        })
        log.info("callback.merged", key=record.key, into=holder)
        return await self._merged(record, holder)

    async def _merged(self, record: ActionRecord, holder: str) -> CallbackResult:
        held = await self._store.get_action(holder)
        requests: tuple[str, ...] = ()
        reason = "this caller already has a callback open; this request was added to it"
        if held is not None:
            state = str(held.detail.get("state", "open"))
            requests = (str(held.detail.get("reason", "")),
                        *(str(item.get("reason", "")) for item in held.detail.get("merged", [])))
            if held.state == "done" and held.detail.get("outcome") == "reached":
                reason = "the caller was reached by a callback after this request"
            else:
                reason = (f"this caller already has a callback {_STATE_WORDS.get(state, state)};"
                          " this request was added to it")
        return CallbackResult("merged", record.key, number=str(record.detail["to"]),
                              merged_into=holder, requests=requests, reason=reason)

    async def _numbers(self, event: Event) -> tuple[str | None, str | None]:
        """The caller and the account's number: from the event, or from its call's record."""
        caller, called = caller_of(event), number_called(event)
        if (caller is None or called is None) and event.call_id is not None:
            call = await self._api.calls.retrieve(event.call_id)
            outbound = call.direction == "outbound"
            caller = caller or (call.to if outbound else call.from_)
            called = called or (call.from_ if outbound else call.to)
        return caller, called

    async def _from_our_call(self, event: Event) -> str | None:
        if event.call_id and await self._store.placed_call(event.call_id) is not None:
            return "the event comes from a call agentkit placed; it never starts another"
        return None

    # one attempt: place now, or schedule

    async def _attempt(self, record: ActionRecord, bot: Bot, attempt: int, *,
                       due: bool = False) -> CallbackResult:
        """Place attempt ``attempt`` now, or schedule it. ``due``: run by its scheduled task,
        which was set for the caller's window (or moved earlier by an operator): not held back
        for the window again."""
        key, detail = record.key, record.detail
        now = self._clock()
        window = CallbackWindow.from_detail(detail)
        # A callback asked for days ahead expires counting from when it was wanted.
        wanted = max(record.created_at, window.start) if window else record.created_at
        if now - wanted > bot.callbacks.expire_after:
            reason = (f"not placed within {_duration(bot.callbacks.expire_after)} of the "
                      "request (calls paused, or closed hours); given up")
            await self._finish(record, bot, "failed", "expired", reason)
            return CallbackResult("refused", key, reason=reason)
        if attempt > 1 or detail.get("state") in ("scheduled", "retry_scheduled", "paused",
                                                  "approved"):
            reached = await self._reached_since(detail, record.created_at)
            if reached:
                await self._finish(record, bot, "done", "cancelled",
                                   f"the caller was reached meanwhile ({reached})")
                return CallbackResult("cancelled", key, reason=reached)
        hours = bot.business_hours or self._default_hours
        if window is not None and not due and now < window.start:
            return await self._schedule(record, bot, attempt, hours.next_opening(window.start))
        if not hours.is_open(now):
            return await self._schedule(record, bot, attempt, hours.next_opening(now))
        return await self._place(record, bot, attempt)

    async def _schedule(
        self, record: ActionRecord, bot: Bot, attempt: int, opening: datetime
    ) -> CallbackResult:
        at = opening + timedelta(seconds=_PRIORITY_DELAY[str(record.detail["urgency"])])
        await self._store.add_jobs([
            JobSpec("task", record.event_id, bot=bot.name,
                    name=f"{CALLBACK_TASK}:{record.key}:{attempt}",
                    payload={"key": record.key, "attempt": attempt}, run_at=at)
        ])
        state = "scheduled" if attempt == 1 else "retry_scheduled"
        await self._store.settle_action(record.key, "started",
                                        {"state": state, "next_at": at.isoformat()})
        log.info("callback.scheduled", key=record.key, attempt=attempt, at=at.isoformat())
        return CallbackResult("scheduled", record.key, at=at)

    async def _place(self, record: ActionRecord, bot: Bot, attempt: int) -> CallbackResult:
        key, detail = record.key, record.detail
        from_ = str(detail["from"])
        known = list(detail.get("call_ids", []))
        if detail.get("placing_attempt") == attempt and len(known) < attempt:
            # A run died between placing and recording: look before placing again.
            found = await self._api.calls.find_placed(
                from_=from_, to=str(detail["to"]), since=record.updated_at - timedelta(minutes=1),
                exclude=set(known),
            )
            if found is not None:
                return await self._placed(record, attempt, found.id, found.user_id)
        # Judged again at each attempt: the list, the numbers and the policy may have changed.
        decision = await self._gate.vet(bot, str(detail["to"]), caller=detail.get("caller"),
                                        stored=False)
        if not decision.allowed or decision.number is None:
            return await self._refuse(record, bot, attempt, decision.reason)
        to = decision.number
        grant = await self._gate.claim(bot, key=key, attempt=attempt, number=to)
        if grant.refusal == "paused":
            return await self._pause(record, bot, attempt)
        if not grant.granted:
            return await self._refuse(record, bot, attempt,
                                      self._gate.refusal_reason(grant, to, bot))
        team = Team(**detail["team"])
        agent = await self._pick(bot, team)
        await self._store.settle_action(key, "started", {"placing_attempt": attempt})
        try:
            call = await self._api.calls.create(
                from_=from_, to=to, user_id=agent.id if agent else NOT_GIVEN
            )
        except ApiStatusError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                await self._finish(record, bot, "failed", "failed",
                                   f"phone.systems refused the call: {exc.message}")
                return CallbackResult("refused", key, reason=exc.message)
            raise
        return await self._placed(record, attempt, call.id, agent.id if agent else None)

    async def _refuse(
        self, record: ActionRecord, bot: Bot, attempt: int, reason: str
    ) -> CallbackResult:
        log.warning("callback.refused", key=record.key, attempt=attempt, reason=reason)
        await self._finish(record, bot, "failed", "refused", reason)
        return CallbackResult("refused", record.key, reason=reason)

    async def _pause(self, record: ActionRecord, bot: Bot, attempt: int) -> CallbackResult:
        """Calls are paused: look again later, and at once when they resume."""
        pauses = int(record.detail.get("pauses", 0)) + 1
        at = self._clock() + PAUSE_RECHECK
        await self._store.add_jobs([
            JobSpec("task", record.event_id, bot=bot.name,
                    name=f"{CALLBACK_TASK}:{record.key}:{attempt}{PAUSED_MARK}{pauses}",
                    payload={"key": record.key, "attempt": attempt}, run_at=at)
        ])
        await self._store.settle_action(record.key, "started", {
            "state": "paused", "pauses": pauses, "next_at": at.isoformat(),
        })
        log.info("callback.paused", key=record.key, attempt=attempt)
        return CallbackResult("paused", record.key, at=at, number=str(record.detail["to"]),
                              reason="outbound calls are paused")

    async def _placed(
        self, record: ActionRecord, attempt: int, call_id: str, agent_id: str | None
    ) -> CallbackResult:
        await self._store.record_placed_call(
            PlacedCall(call_id, record.key, str(record.detail["to"]), attempt, self._clock())
        )
        # The call may have ended before this record existed (its answer was lost and
        # found again, or a run died before recording it): its call.completed then found
        # nothing to follow. Looked for only now that the record is committed, so that
        # one of the two always sees the other.
        ended = await self._store.call_completed_event(call_id)
        if ended is not None:
            await self._store.add_jobs([
                JobSpec("task", ended, bot=record.bot, name=OUTCOME_TASK)
            ])
        call_ids = [*record.detail.get("call_ids", []), call_id]
        await self._store.settle_action(
            record.key, "started",
            {"state": "placed", "attempts": attempt, "call_ids": call_ids, "agent": agent_id},
        )
        log.info("callback.placed", key=record.key, attempt=attempt, call_id=call_id,
                 agent=agent_id)
        return CallbackResult("placed", record.key, call_id=call_id)

    async def _pick(self, bot: Bot, team: Team) -> User | None:
        members = await self._members(team)
        if not members:
            log.warning("callback.team_empty", bot=bot.name, team=team.role or list(team.users))
            return None
        members.sort(key=lambda user: user.id)
        turn = await self._store.next_in_rotation(f"{bot.name}:{team.role or ','.join(team.users)}")
        return members[turn % len(members)]

    async def _members(self, team: Team) -> list[User]:
        """The team's users, listed at most once per TEAM_CACHE_SECONDS in this process."""
        key = (team.role, tuple(team.users))
        cached = self._teams.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < TEAM_CACHE_SECONDS:
            return list(cached[1])
        members = [
            user async for user in self._api.users.list(limit=100)
            if (team.role is not None and user.role == team.role)
            or user.id in team.users or user.email in team.users or user.extension in team.users
        ]
        self._teams[key] = (now, members)
        return list(members)

    async def _reached_since(self, detail: dict[str, Any], since: datetime) -> str | None:
        """Why the caller counts as reached since ``since``, or None."""
        caller = str(detail["to"])
        ours = set(detail.get("call_ids", []))
        async for call in self._api.calls.list(from_=caller, status="completed",
                                               started_after=since, limit=20):
            return f"they called again and were answered ({call.id})"
        async for call in self._api.calls.list(to=caller, direction="outbound",
                                               status="completed", started_after=since, limit=20):
            if call.id not in ours:
                return f"an agent called them ({call.id})"
        return None

    # tasks

    def route_hook(self, event: Event) -> list[JobSpec]:
        """Every outbound call.completed gets a look: it may end one of our callbacks."""
        if isinstance(event, CallCompleted) and event.data.direction == "outbound":
            return [JobSpec("task", event.id, name=OUTCOME_TASK)]
        return []

    async def run_scheduled(self, job: Job, event: Event) -> list[JobSpec]:
        """The ``callback:`` task: a scheduled or retried attempt comes due."""
        record = await self._store.get_action(str(job.payload["key"]))
        if record is None or record.state in ("done", "failed"):
            return []
        bot = self._bots.get(record.bot)
        if bot is None:
            raise ActionError(f"callback {record.key}: its bot {record.bot!r} is not loaded")
        attempt = int(job.payload["attempt"])
        if record.detail.get("attempts", 0) >= attempt:
            return []  # this attempt was placed already
        await self._attempt(record, bot, attempt, due=True)
        return []

    async def follow(self, job: Job, event: Event) -> list[JobSpec]:
        """The ``callback-outcome`` task: a callback's call ended; done, retry or give up.

        Runs for every outbound call.completed, and again for a call.completed
        that came before its call was recorded as placed. Whichever runs second
        finds the callback settled or adds only jobs that already exist. Jobs
        with ``payload["call_id"]`` (stores from before schema 6) look at the call.
        """
        if "call_id" in job.payload:
            call = await self._api.calls.retrieve(str(job.payload["call_id"]))
            if call.status not in FINAL_CALL_STATUSES:
                return []  # still going: its call.completed will come
            call_id, status, duration = call.id, call.status, call.duration
        elif isinstance(event, CallCompleted):
            call_id, status, duration = event.data.id, event.data.status, event.data.duration
        else:
            return []
        placed = await self._store.placed_call(call_id)
        if placed is None:
            return []
        record = await self._store.get_action(placed.action_key)
        if record is None or record.state in ("done", "failed"):
            return []
        # A call.completed's task belongs to no bot until its callback is found.
        structlog.contextvars.bind_contextvars(bot=record.bot)
        bot = self._bots.get(record.bot)
        if bot is None:
            raise ActionError(f"callback {record.key}: its bot {record.bot!r} is not loaded")
        await self._note_attempt(record, placed, status, duration)
        if status == "completed":
            await self._finish(record, bot, "done", "reached",
                               f"answered, talked {duration} s")
            return []
        policy = bot.callbacks
        if status in policy.retry_on and placed.attempt < policy.max_attempts:
            hours = bot.business_hours or self._default_hours
            at = _retry_at(self._clock(), policy.retry_after, hours,
                           CallbackWindow.from_detail(record.detail))
            await self._schedule(record, bot, placed.attempt + 1, at)
            log.info("callback.unanswered", key=record.key, status=status,
                     attempt=placed.attempt)
            return []
        await self._finish(record, bot, "failed", "unreached",
                           f"{status} on attempt {placed.attempt} of {policy.max_attempts}")
        return []

    async def _note_attempt(self, record: ActionRecord, placed: PlacedCall, status: str,
                            duration: int | None) -> None:
        """Keep how each attempt's call ended, for the console (once per call)."""
        if any(item.get("call_id") == placed.call_id
               for item in record.detail.get("attempt_log", [])):
            return
        await self._store.append_to_action(record.key, "attempt_log", {
            "attempt": placed.attempt, "call_id": placed.call_id, "status": status,
            "duration": duration, "at": self._clock().isoformat(),
        })

    async def _finish(
        self,
        record: ActionRecord,
        bot: Bot,
        state: Literal["done", "failed"],
        outcome: Outcome,
        reason: str,
    ) -> None:
        reached = outcome == "reached"
        if reached:
            # Marked reached before the action is done, so that a request made before now
            # never finds the hold done and not yet reached, and starts a second call.
            await self._store.release_callback(str(record.detail["to"]), record.kind,
                                               record.key, reached=True)
        settled = await self._store.settle_action(record.key, state,
                                                  {"outcome": outcome, "reason": reason})
        detail = settled.detail
        if not reached:
            await self._store.release_callback(str(detail["to"]), record.kind, record.key,
                                               reached=False)
        result = CallbackOutcome(
            key=record.key, outcome=outcome, to=str(detail["to"]),
            attempts=int(detail.get("attempts", 0)),
            call_ids=tuple(detail.get("call_ids", [])), reason=reason,
            origin_event_id=record.event_id, escalation=bool(detail.get("escalation")),
            merged=tuple(str(item.get("reason", "")) for item in detail.get("merged", [])),
        )
        log.info("callback.finished", key=record.key, outcome=outcome, reason=reason)
        if bot.callback_listeners:
            # Its own job, so that a failing after_callback handler is retried alone.
            await self._store.add_jobs([
                JobSpec("task", record.event_id, bot=bot.name,
                        name=f"{AFTER_TASK}:{record.key}", payload=result.model_dump(mode="json"))
            ])

    async def run_after_callback(self, job: Job, event: Event) -> list[JobSpec]:
        """The ``after-callback`` task: tell the bot how its callback ended."""
        bot = self._bots.get(job.bot or "")
        if bot is None:
            raise ActionError(f"{job.name}: its bot {job.bot!r} is not loaded")
        outcome = CallbackOutcome.model_validate(job.payload)
        await self._after_callback(bot, job, event, outcome)
        return []


def _retry_at(now: datetime, wait: timedelta, hours: BusinessHours,
              window: CallbackWindow | None) -> datetime:
    """When to try again: after ``wait`` in business hours, or sooner (never under
    MIN_RETRY_GAP) where only that keeps the retry inside the caller's window."""
    at = hours.next_opening(now + wait)
    if window is None or window.end is None or at <= window.end:
        return at
    sooner = hours.next_opening(now + max(MIN_RETRY_GAP, (window.end - now) / 2))
    return sooner if sooner < window.end else at


def _awaiting(record: ActionRecord) -> CallbackResult:
    deadline = record.detail.get("approval_deadline")
    return CallbackResult(
        "awaiting_approval", record.key, number=str(record.detail["to"]),
        at=datetime.fromisoformat(deadline) if deadline else None,
        reason=f"waiting for a person to approve it ({record.detail.get('approval_id')})",
    )


def _result_words(result: CallbackResult) -> str:
    if result.status == "placed":
        return f"Callback placed ({result.call_id})."
    if result.status == "scheduled" and result.at is not None:
        return f"Callback planned for {result.at:%Y-%m-%d %H:%M} UTC (business hours)."
    if result.status == "paused":
        return "Callback waiting: outbound calls are paused."
    if result.status == "cancelled":
        return f"Not placed: {result.reason}."
    return f"Not placed: {result.reason or result.status}."


_STATE_WORDS = {"awaiting_approval": "waiting for approval", "scheduled": "planned",
                "retry_scheduled": "planned for another try", "placed": "ringing",
                "paused": "waiting (calls are paused)"}


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"


def callback_key(event_id: str, bot: str, name: str = "") -> str:
    """The action-log key of a bot's callback for an event."""
    return action_key(event_id, bot, "callback", name)
