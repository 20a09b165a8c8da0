"""The store: where deliveries are kept, and the jobs, bot runs and actions they lead to.

One interface, two engines (SQLite for one machine, PostgreSQL for several).
Every method is one transaction; nothing here knows of HTTP or of bots' code.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agentkit.errors import AgentkitError

JobState = Literal["pending", "running", "done", "dead", "discarded"]
JobKind = Literal["route", "bot", "task"]
LeaseKinds = Literal["all", "route", "work"]
ActionState = Literal["started", "done", "failed"]
DialRefusal = Literal["paused", "do_not_call", "number_cap", "daily_max"]
ApprovalState = Literal["pending", "approved", "rejected", "expired"]
ApprovalDecision = Literal["approved", "rejected"]
# The reason an approval nobody decided in time gives: it counts as a rejection.
DEADLINE_PASSED = "no decision before the deadline"
CALLS_PAUSED = "calls_paused"
# How the dispatcher names a join's timer task (runtime/dispatch.py, JOIN_TIMEOUT).
JOIN_TIMER_PREFIX = "join-timeout:"


class StoreError(AgentkitError):
    """The store failed; the operation did not happen."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or cannot write right now; try again later."""


@dataclass(frozen=True)
class NewEvent:
    """A verified delivery, ready to be stored.

    ``from_number``, ``to_number`` and ``direction`` are the call's, where the
    event says them: the console lists calls by them.
    """

    id: str
    type: str
    created_at: datetime
    call_id: str | None
    body: bytes
    routable: bool
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    id: str
    seq: int
    type: str
    created_at: datetime
    received_at: datetime
    call_id: str | None
    body: bytes
    routable: bool


@dataclass(frozen=True)
class JobSpec:
    """A job to add: a bot's handling of an event, or a task to run at ``run_at``."""

    kind: JobKind
    event_id: str
    bot: str | None = None
    name: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    run_at: datetime | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class Job:
    """A leased job: hold on to it to finish, retry, dead-letter or hand it back."""

    id: int
    kind: JobKind
    event_id: str
    seq: int
    call_id: str | None
    bot: str | None
    name: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    lease_owner: str
    last_error: str | None
    event_body: bytes

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts


@dataclass(frozen=True)
class JobRecord:
    """A job as it stands, for inspection."""

    id: int
    kind: JobKind
    event_id: str
    bot: str | None
    name: str
    state: JobState
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ActionRecord:
    """One entry of the action log, keyed for idempotency."""

    key: str
    event_id: str
    bot: str
    kind: str
    state: ActionState
    detail: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class BotRun:
    """One run of one bot on one event, as recorded after it ends."""

    job_id: int
    event_id: str
    bot: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    outcome: Literal["ok", "error"]
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class CachedAnswer:
    """A model's answer kept for reuse: same model, prompt and input, no new tokens."""

    key: str
    model: str
    answer: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class JoinState:
    """The events of one call a join has seen so far (type to event id), and if it fired."""

    key: str
    events: dict[str, str]
    fired: bool


@dataclass(frozen=True)
class PlacedCall:
    """An outbound call agentkit placed, and the action that placed it."""

    call_id: str
    action_key: str
    number: str
    attempt: int
    created_at: datetime


@dataclass(frozen=True)
class DialClaim:
    """One call about to be placed, to be counted against the caps first.

    ``number_limit`` calls to ``number`` and ``daily_limit`` calls in all may
    have been claimed since ``since``; a claim for the same ``action_key`` and
    ``attempt`` is the same call (a run that died after claiming).
    """

    action_key: str
    attempt: int
    number: str
    bot: str
    number_limit: int
    daily_limit: int
    since: datetime


@dataclass(frozen=True)
class DialGrant:
    """Whether a claimed call may be placed; ``refusal`` says why not."""

    granted: bool
    refusal: DialRefusal | None = None
    number_count: int = 0
    daily_count: int = 0


@dataclass(frozen=True)
class DoNotCallEntry:
    """A number agentkit never calls, who added it and why."""

    number: str
    reason: str
    added_by: str
    created_at: datetime


@dataclass(frozen=True)
class NewApproval:
    """An action waiting for a person: exactly what will be done, why, and until when.

    ``action_key`` is the action's key in the action log: one approval per action.
    """

    id: str
    action_key: str
    event_id: str
    bot: str
    kind: str
    what: dict[str, Any]
    why: dict[str, Any]
    deadline: datetime


@dataclass(frozen=True)
class Approval:
    """An approval as it stands: pending, or decided once (``expired`` when nobody did in time).

    ``message`` says where a chat message about it lives (``{"channel": ..., "ts": ...}``).
    """

    id: str
    action_key: str
    event_id: str
    call_id: str | None
    bot: str
    kind: str
    what: dict[str, Any]
    why: dict[str, Any]
    deadline: datetime
    state: ApprovalState
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    created_at: datetime
    message: dict[str, Any] = field(default_factory=dict)


DEAD_ERROR_CHARS = 200


def dead_error(last_error: str | None) -> str:
    """The group a dead letter's error puts it in: its first line, cut to 200 characters."""
    return (last_error or "").strip().split("\n", 1)[0][:DEAD_ERROR_CHARS]


CallOutcomeFilter = Literal[
    "reached", "unreached", "callback", "escalated", "note", "flow", "dead", "cancelled"
]


@dataclass(frozen=True)
class CallQuery:
    """What the console's call list is filtered by; every field empty: all calls.

    ``numbers``: E.164 numbers, calls from or to any of them; ``bot``: calls that
    bot had a job on; ``outcome``: calls with a callback or escalation reached (or
    given up: ``unreached``, or ``cancelled``), any callback or escalation, an
    escalation, a note posted, a flow change (or its revert), or a dead job. The
    fields given are AND-ed.
    """

    numbers: tuple[str, ...] = ()
    call_id: str | None = None
    bot: str | None = None
    outcome: CallOutcomeFilter | None = None


@dataclass(frozen=True)
class CallCursor:
    """A position in the call list: the last call of the page before."""

    started_at: datetime
    call_id: str


@dataclass(frozen=True)
class CallRow:
    """One call as the store knows it from its deliveries."""

    call_id: str
    started_at: datetime
    last_at: datetime
    from_number: str | None
    to_number: str | None
    direction: str | None
    events: int


@dataclass(frozen=True)
class CallActivity:
    """What agentkit did on one call: its actions (oldest first), the bots that had jobs on
    it (by name), and how many of its jobs are dead."""

    call_id: str
    actions: list[ActionRecord]
    bots: list[str]
    dead_jobs: int


@dataclass(frozen=True)
class EventRecord:
    """One delivery of a call, with how many times it came again."""

    id: str
    type: str
    created_at: datetime
    received_at: datetime
    duplicates: int
    routable: bool


@dataclass(frozen=True)
class ModelAnswer:
    """One model task's answer, as a call's timeline shows it (masked JSON)."""

    event_id: str
    bot: str
    task: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool
    answer: str
    created_at: datetime


@dataclass(frozen=True)
class ApiRead:
    """One phone.systems API read (a GET) as agentkit got it, kept so that a replay reads the same.

    ``path`` is the request path with its query (``/v1/calls/cal_1/transcript``), one
    kept per path; ``call_id`` the call it is about, when the path names one.
    """

    path: str
    call_id: str | None
    body: bytes
    read_at: datetime


@dataclass(frozen=True)
class DeadGroup:
    """Dead letters of one bot with one error."""

    bot: str | None
    error: str
    count: int
    latest: datetime


@dataclass(frozen=True)
class StoreHealth:
    """The figures the console's health panel and /metrics show.

    ``pending`` leaves out join timers not yet due (as ``job_counts`` does);
    ``done_last_minute`` counts jobs done in the 60 seconds before the moment asked
    about, ``dial_claims_24h`` calls claimed in the 24 hours before it.
    """

    pending: int
    running: int
    dead: int
    done_last_minute: int
    model_spend_today_usd: float
    dial_claims_24h: int


@dataclass(frozen=True)
class DayFigures:
    """What happened in one window of time, ``[start, end)``, for a daily digest.

    ``calls_in``, ``calls_out``: ``call.completed`` events created in it, by
    ``data.direction``; ``missed``: the inbound ones whose ``data.status`` is
    ``missed``, ``no_answer`` or ``busy``; ``voicemails``: ``voicemail.received``
    events. ``calls_placed``: the calls agentkit placed in it. ``outcomes``:
    callbacks and escalations that ended (done or failed) in it, by
    ``detail.outcome``; ``refusals``: the refused ones among them by
    ``detail.reason``. ``escalations``: escalations asked for in it;
    ``dead_letters``: jobs given up on in it. The model figures sum the model
    answers made in it; ``topics`` counts the lower-cased, stripped strings of
    their ``topics`` lists, once per answer. ``approvals_pending`` and
    ``callbacks_open`` (callbacks and escalations still started) are as they
    stand now, whatever the window.
    """

    calls_in: int = 0
    calls_out: int = 0
    missed: int = 0
    voicemails: int = 0
    calls_placed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    escalations: int = 0
    dead_letters: int = 0
    model_answers: int = 0
    cached_answers: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    topics: dict[str, int] = field(default_factory=dict)
    approvals_pending: int = 0
    callbacks_open: int = 0


class Store(abc.ABC):
    """What agentkit keeps, behind one interface for every engine."""

    default_max_attempts: int = 5

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and bring the schema to the current version (safe when racing)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store can be read and written now."""

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    # events

    @abc.abstractmethod
    async def add_events(self, events: Sequence[NewEvent]) -> list[bool]:
        """Store events, each with a route job if it is routable, in one transaction.

        Returns, per event, True if it was new and False if its id was stored
        before (a redelivery: nothing is added). Durable when it returns.
        """

    @abc.abstractmethod
    async def get_event(self, event_id: str) -> StoredEvent | None: ...

    @abc.abstractmethod
    async def count_events(self) -> int: ...

    # jobs

    @abc.abstractmethod
    async def lease(self, owner: str, limit: int, lease_seconds: float, *,
                    kinds: LeaseKinds = "all") -> list[Job]:
        """Take up to ``limit`` jobs that are due, for ``lease_seconds``.

        Due: pending with ``run_at`` passed, or running with an expired lease
        (its worker died). A bot job waits while an earlier event of the same
        call still has an unfinished route job or a job of the same bot.
        Each lease counts as an attempt. ``kinds`` takes only route jobs
        (``"route"``) or only the others (``"work"``).
        """

    @abc.abstractmethod
    async def extend(self, job: Job, lease_seconds: float) -> bool:
        """Extend a held lease; False if it was lost (expired and taken)."""

    @abc.abstractmethod
    async def finish(self, job: Job, *, follow_ups: Sequence[JobSpec] = ()) -> bool:
        """Mark a job done and add its follow-up jobs atomically; False if the lease was lost."""

    @abc.abstractmethod
    async def finish_many(self, done: Sequence[tuple[Job, Sequence[JobSpec]]]) -> list[bool]:
        """``finish`` for many jobs in one transaction; one result per job, in order."""

    @abc.abstractmethod
    async def retry(self, job: Job, error: str, run_at: datetime) -> bool:
        """Put a failed job back to run again at ``run_at``."""

    @abc.abstractmethod
    async def dead_letter(self, job: Job, error: str) -> bool:
        """Give up on a job, keeping its last error."""

    @abc.abstractmethod
    async def hand_back(self, job: Job) -> bool:
        """Return an unfinished job (shutdown), not counting the interrupted attempt."""

    @abc.abstractmethod
    async def retry_dead(self, job_id: int) -> bool:
        """Put a dead job back in the queue, due now, its attempts counted afresh; False if
        no dead job has that id."""

    @abc.abstractmethod
    async def add_jobs(self, jobs: Sequence[JobSpec]) -> list[int]:
        """Add jobs outside any lease (delayed tasks); returns their ids."""

    @abc.abstractmethod
    async def job_counts(self) -> dict[str, int]:
        """How many jobs are in each state; a join timer not yet due is no job to do, and
        is left out of ``pending``."""

    @abc.abstractmethod
    async def jobs_for_event(self, event_id: str) -> list[JobRecord]: ...

    @abc.abstractmethod
    async def get_job(self, job_id: int) -> JobRecord | None: ...

    @abc.abstractmethod
    async def jobs_in_state(self, state: JobState, limit: int = 100) -> list[JobRecord]:
        """Jobs in one state (say, the dead letters), most recently changed first."""

    @abc.abstractmethod
    async def count_due(self, within: float = 0.0) -> int:
        """Jobs running, or pending and due within ``within`` seconds from now."""

    @abc.abstractmethod
    async def scheduled(self, name_prefix: str = "") -> list[JobRecord]:
        """Pending jobs due later whose name starts with ``name_prefix``, soonest first."""

    @abc.abstractmethod
    async def reschedule(self, job_id: int, run_at: datetime) -> bool:
        """Move a pending job to ``run_at`` (say, to run a scheduled callback now)."""

    # bot runs and actions

    @abc.abstractmethod
    async def record_bot_run(self, run: BotRun) -> None: ...

    @abc.abstractmethod
    async def bot_runs(self, event_id: str) -> list[BotRun]: ...

    @abc.abstractmethod
    async def claim_action(
        self, key: str, *, event_id: str, bot: str, kind: str, detail: dict[str, Any]
    ) -> tuple[ActionRecord, bool]:
        """Record an action as started, unless ``key`` is known.

        Returns the record and True if this call created it; for a known key,
        the existing record and False, so a retry never repeats a done action.
        """

    @abc.abstractmethod
    async def settle_action(
        self, key: str, state: ActionState, detail: dict[str, Any]
    ) -> ActionRecord:
        """Record how an action stands, merging ``detail`` into what it holds.

        A finished action (done or failed) is never moved back to started: such a
        settle leaves it as it is and returns it.
        """

    @abc.abstractmethod
    async def get_action(self, key: str) -> ActionRecord | None: ...

    @abc.abstractmethod
    async def actions_for_event(self, event_id: str) -> list[ActionRecord]: ...

    @abc.abstractmethod
    async def actions_for_call(self, call_id: str) -> list[ActionRecord]:
        """The actions taken on any event of a call, oldest first."""

    @abc.abstractmethod
    async def actions_of_kind(
        self, kind: str, *, bot: str | None = None, limit: int = 100
    ) -> list[ActionRecord]:
        """The latest actions of one kind (and bot), newest first."""

    @abc.abstractmethod
    async def open_actions(self, kinds: Sequence[str], *, limit: int = 100) -> list[ActionRecord]:
        """Actions of these kinds still started (callbacks scheduled or ringing), oldest first."""

    # the console's reads: calls, their timelines, dead letters, health

    @abc.abstractmethod
    async def list_calls(
        self, query: CallQuery, *, limit: int = 50, before: CallCursor | None = None
    ) -> list[CallRow]:
        """Calls matching ``query``, newest first (by ``started_at``, then ``call_id``).

        ``before``: only calls after that position in this order (the next page).
        """

    @abc.abstractmethod
    async def get_call(self, call_id: str) -> CallRow | None: ...

    @abc.abstractmethod
    async def call_activity(self, call_ids: Sequence[str]) -> dict[str, CallActivity]:
        """What happened on each call: its actions, bots and dead jobs (every id has an entry)."""

    @abc.abstractmethod
    async def events_of_call(self, call_id: str) -> list[EventRecord]:
        """The deliveries of a call, in the order they were received."""

    @abc.abstractmethod
    async def jobs_of_call(self, call_id: str) -> list[JobRecord]:
        """Every job on any event of a call, by id."""

    @abc.abstractmethod
    async def bot_runs_of_call(self, call_id: str) -> list[BotRun]:
        """Every bot run on any event of a call, by start time."""

    @abc.abstractmethod
    async def record_model_answer(self, answer: ModelAnswer) -> None:
        """Keep one model task's answer for its call's timeline."""

    @abc.abstractmethod
    async def model_answers_of_call(self, call_id: str) -> list[ModelAnswer]:
        """The model answers recorded for any event of a call, oldest first."""

    @abc.abstractmethod
    async def dead_groups(self, *, limit: int = 100) -> list[DeadGroup]:
        """Dead letters grouped by bot and error (the first line of ``last_error``),
        largest group first."""

    @abc.abstractmethod
    async def dead_in_group(self, bot: str | None, error: str, *,
                            limit: int = 100) -> list[JobRecord]:
        """The dead jobs of one group, most recently changed first."""

    @abc.abstractmethod
    async def discard_dead(self, job_id: int) -> bool:
        """Give up on a dead job for good (state ``discarded``); False if no dead job has
        that id."""

    @abc.abstractmethod
    async def discard_pending(self, event_id: str, name_prefix: str) -> int:
        """Discard the pending jobs of an event whose name starts with ``name_prefix``
        (a cancelled callback's scheduled attempts); how many."""

    @abc.abstractmethod
    async def health(self, *, now: datetime | None = None) -> StoreHealth:
        """Queue depth, jobs done in the last minute, dead letters, model spend since
        midnight UTC and calls claimed in the last 24 hours, read cheaply from indexes."""

    @abc.abstractmethod
    async def day_figures(self, start: datetime, end: datetime) -> DayFigures:
        """What happened from ``start`` (included) to ``end`` (left out), both aware: see
        DayFigures. Read only; a few statements, for a report made once a day."""

    # replay: the calls in time order, their events, the API reads they made

    @abc.abstractmethod
    async def replay_calls(
        self, *, since: datetime | None = None, until: datetime | None = None,
        after: CallCursor | None = None, limit: int = 500,
    ) -> list[CallRow]:
        """Calls started at or after ``since`` and before ``until``, oldest first (by
        ``started_at``, then ``call_id``).

        ``after``: only calls after that position in this order (the next page).
        """

    @abc.abstractmethod
    async def call_events(self, call_id: str) -> list[StoredEvent]:
        """Every stored event of a call, with its body, in the order received."""

    @abc.abstractmethod
    async def record_api_reads(self, reads: Sequence[ApiRead]) -> None:
        """Keep API reads for replays, in one transaction; each replaces its path's read kept
        before, unless that one was read later."""

    @abc.abstractmethod
    async def api_read(self, path: str) -> ApiRead | None:
        """The read kept for ``path`` (its query included), or None."""

    # model answers, joins, placed calls

    @abc.abstractmethod
    async def cached_answer(self, key: str) -> CachedAnswer | None: ...

    @abc.abstractmethod
    async def cache_answer(self, answer: CachedAnswer) -> None:
        """Keep an answer; the first one kept for a key stays."""

    @abc.abstractmethod
    async def join_arrive(self, key: str, event_type: str, event_id: str) -> JoinState:
        """Record that ``event_type`` (as ``event_id``) reached the join ``key``."""

    @abc.abstractmethod
    async def join_fire(self, key: str, claimant: str) -> bool:
        """Mark the join fired by ``claimant``; True for it (again, on its retries), else False."""

    @abc.abstractmethod
    async def join_state(self, key: str) -> JoinState | None: ...

    @abc.abstractmethod
    async def record_placed_call(self, call: PlacedCall) -> None: ...

    @abc.abstractmethod
    async def placed_call(self, call_id: str) -> PlacedCall | None: ...

    @abc.abstractmethod
    async def call_completed_event(self, call_id: str) -> str | None:
        """The id of the routable ``call.completed`` stored for a call, or None if none came."""

    @abc.abstractmethod
    async def next_in_rotation(self, name: str) -> int:
        """0, 1, 2, ... on successive calls for one ``name``, shared by every process."""

    @abc.abstractmethod
    async def count_placed_calls(self, number: str, since: datetime) -> int:
        """How many calls agentkit placed to ``number`` since ``since``."""

    # dialling

    @abc.abstractmethod
    async def claim_dial(self, claim: DialClaim) -> DialGrant:
        """Count a call against the caps and record it, atomically across processes.

        Refused while calls are paused (the ``calls_paused`` switch), for a number
        on the do-not-call list, and when ``number_limit`` or ``daily_limit``
        calls have been claimed since ``claim.since``. A claim already recorded
        for the same action and attempt is granted again without counting twice.
        """

    @abc.abstractmethod
    async def count_dial_claims(self, number: str, since: datetime,
                                until: datetime | None = None) -> int:
        """Calls claimed to ``number`` since ``since`` (and before ``until``, when given)."""

    @abc.abstractmethod
    async def add_do_not_call(self, number: str, *, reason: str, added_by: str) -> bool:
        """Put an E.164 number on the do-not-call list; False if it was already there."""

    @abc.abstractmethod
    async def remove_do_not_call(self, number: str) -> bool:
        """Take a number off the do-not-call list; False if it was not there."""

    @abc.abstractmethod
    async def do_not_call(self, number: str) -> DoNotCallEntry | None:
        """The number's do-not-call entry, or None."""

    @abc.abstractmethod
    async def do_not_call_list(self) -> list[DoNotCallEntry]:
        """Every do-not-call entry, by number."""

    @abc.abstractmethod
    async def set_switch(self, name: str, on: bool, *, changed_by: str) -> bool:
        """Turn a deployment-wide switch on or off; True if that changed it."""

    @abc.abstractmethod
    async def switch(self, name: str) -> bool:
        """Whether a switch is on (never set: off)."""

    @abc.abstractmethod
    async def hold_callback(
        self, number: str, kind: str, action_key: str, *, asked_at: datetime
    ) -> str:
        """Make ``action_key`` the open callback of ``kind`` to ``number``, unless one holds it.

        Returns the key of the callback that answers a request made at
        ``asked_at``: ``action_key`` if it now holds the number (or already did);
        else one still open, or one that reached the caller after ``asked_at``.
        """

    @abc.abstractmethod
    async def release_callback(
        self, number: str, kind: str, action_key: str, *, reached: bool
    ) -> None:
        """``action_key``'s callback ended; when it ``reached`` the caller, that is kept."""

    @abc.abstractmethod
    async def append_to_action(self, key: str, field: str, item: dict[str, Any]) -> ActionRecord:
        """Add ``item`` to the list ``detail[field]`` of an action, atomically."""

    # approvals

    @abc.abstractmethod
    async def add_approval(self, new: NewApproval) -> tuple[Approval, bool]:
        """Record an approval as pending; True if this call created it.

        For an ``action_key`` already asked about, the existing approval and False
        (a retried handler asks once).
        """

    @abc.abstractmethod
    async def get_approval(self, approval_id: str) -> Approval | None: ...

    @abc.abstractmethod
    async def decide_approval(
        self, approval_id: str, decision: ApprovalDecision, *, by: str,
        now: datetime | None = None, reason: str = "",
    ) -> tuple[Approval, bool]:
        """Approve or reject a pending approval whose deadline is after ``now``, atomically.

        True if this call decided it. Otherwise the approval as it stands and False:
        decided before (``decided_by`` says by whom), or past its deadline, in which
        case this call moves it to ``expired`` (an approval nobody gave in time is
        not one). ``now`` defaults to the store's clock. Raises StoreError for an
        unknown id.
        """

    @abc.abstractmethod
    async def pending_approvals(self, *, limit: int = 100) -> list[Approval]:
        """Pending approvals, oldest first (those past their deadline too, until expired)."""

    @abc.abstractmethod
    async def expire_approvals(self, now: datetime | None = None) -> list[Approval]:
        """Move every pending approval whose deadline has passed to ``expired``.

        Returns those this call moved: each exactly once, across racing callers.
        """

    @abc.abstractmethod
    async def set_approval_message(self, approval_id: str, message: dict[str, Any]) -> None:
        """Record where the chat message about an approval lives; StoreError for an unknown id."""

    # retention and erasure

    @abc.abstractmethod
    async def claim_once(self, name: str) -> bool:
        """True for the first caller ever to claim ``name`` in this store, False for all after.

        One winner across every process of a deployment: the daily purge claims
        ``retention:YYYY-MM-DD`` so that one process runs it each day.
        """

    @abc.abstractmethod
    async def purge_older_than(self, cutoff: datetime, *,
                               batch_size: int = 1000) -> dict[str, int]:
        """Delete what is older than ``cutoff``, a batch of rows per transaction.

        Events received before it go with their jobs and bot runs, unless the
        event still has a pending or running job; cached and recorded model
        answers, joins last changed, calls last heard of and API reads read
        before it go; the action log's rows stay, their details masked
        (``agentkit.store.privacy.mask_detail``) once; approvals decided before
        it go. Returns counts by ``events``, ``jobs``, ``bot_runs``,
        ``llm_cache``, ``model_answers``, ``joins``, ``calls``, ``actions_masked``,
        ``dial_claims``, ``approvals`` and ``api_reads``.
        """

    @abc.abstractmethod
    async def erase_number(self, forms: Sequence[str], *,
                           batch_size: int = 1000) -> dict[str, int]:
        """Remove what the store holds about one phone number, given its textual ``forms``.

        Events whose body mentions a form go, with all their jobs (open ones too)
        and bot runs; cached and recorded model answers that mention one go, and
        API reads that do, or are of a call whose events went or whose number it
        was (a transcript may say the number in words); in
        action details the number becomes ``[erased]`` (and the caller's words are
        cut, as retention does), and in placed calls, call claims and the calls'
        from and to numbers too; an open callback to it is released. In an
        approval's ``what`` and ``why`` it becomes ``[erased]`` as in action
        details, and a pending one is rejected
        (``agentkit.store.privacy.ERASED_REASON``): what it
        would do can no longer be shown. Returns counts by ``events``, ``jobs``,
        ``bot_runs``, ``llm_cache``, ``model_answers``, ``actions``,
        ``placed_calls``, ``dial_claims``, ``open_callbacks``, ``calls``,
        ``approvals`` and ``api_reads``.
        """
