"""The operator console over a full store: every page's latency with 100,000 calls in PostgreSQL.

The requirement: the console reads through the store's interface, with cursor
pagination and indexes, and with 100,000 calls and 1,000,000 events in
PostgreSQL every page answers in under 150 ms at p95.

**The fill.** A PostgreSQL schema of its own (``PostgresStore(url, schema=...)``,
dropped at the end unless ``--keep``) is filled with ``--calls`` calls over the
last 30 days, ``--events-per-call`` events each on average, as the shipped bots
(voicemail-callback, call-summary, escalation, after-hours) would have left them:

- the deliveries go through ``store.add_events`` in batches of 10,000, with bodies
  shaped as phone.systems sends them (``agentkit/events.py``) and the numbers and
  direction the receiver reads from them, so ``events``, the ``calls`` rows and
  the route jobs are the store's own (``received_at`` and ``calls.last_at`` are
  the fill's own moment, as ``add_events`` stamps them; ``created_at`` spans the 30
  days); the route jobs are then marked done as a worker leaves them (one attempt,
  its times a second after the event's);
- inbound calls: 60 % answered (initiated, answered, completed, recording.ready,
  transcript.ready, and for transfers between agents one more call.answered and
  recording.ready per leg, as many as it takes to reach the average), 25 % to
  voicemail (initiated, completed, voicemail.received, recording.ready,
  transcript.ready), 15 % missed (initiated, completed); callers from a pool of
  repeat callers (a few call hundreds of times) and, for 55 % of calls, numbers
  never seen before; the account's three numbers, the main one taking most calls;
- the work, written in bulk with asyncpg (``INSERT ... SELECT FROM unnest`` joined
  to the events, as the store's ``_INSERT_JOBS`` does, and ``COPY``) in the columns
  and shapes the store's methods write (``actions.call_id``, ``model_answers.call_id``
  and ``jobs.seq``/``call_id`` from the event, ``detail`` as the actions write it):
  bot jobs for each bot's events and join timers, done, with their bot runs;
  model answers (triage, escalation check, summary); callbacks for 80 % of
  voicemails and escalations for 2 % of answered calls, with their outbound calls
  (reached on the first or second attempt, unreached after three, refused,
  cancelled, expired; those asked for in the last 12 hours still open), each
  attempt's placed call, dial claim, task and attempt log; chat notes; the
  after-hours switches twice a day (flow changes on schedule events); and about
  ``--dead-letters`` dead letters in five groups, each after five failed runs.

The fill prints its progress (rows a second) and ends with ``VACUUM (ANALYZE)``
of every table, standing in for the autovacuum a month of traffic would have run.

**The measure.** The console blueprint is built as ``agentkit/service.py`` builds
it (a shared token, ``ConsoleConfig`` with the bots and regions GB and RO,
``ConsoleOperations``) on a Quart app served by ``EmbeddedServer`` on a free
loopback port, in this process on uvloop as ``agentkit run`` has it (after
``gc.freeze()``, as it does). httpx signs in through the login form and then
GETs each page ``--requests`` times, one request at a time, the pages taken in
turn, after ``--warmup`` rounds; each time is from the request sent to the body
read. Pages (the JSON's keys):

``calls`` the call list; ``calls_page2`` the page its "Older calls" link leads to;
``fragment`` the list's live part (``?fragment=1``), as the page polls it;
``search_number`` a repeat caller typed with spaces (a different one each time);
``search_busy_number`` the account's main number (in most calls);
``search_bot`` / ``search_bot_idle`` a bot's name: voicemail-callback, and
after-hours, which works on no call; ``search_reached``, ``search_unreached``
("not reached"), ``search_dead``, ``search_escalated`` outcome words;
``search_call_id`` a call's id; ``call`` a call's timeline (random calls); ``dead``
the dead letters; ``dead_group`` the largest group; ``callbacks``; ``flows``;
``health``.

The last line is one JSON object: ``calls``, ``events``, ``p50_ms`` and ``p95_ms``
per page, ``p95_ms_max`` and its page, ``fill_seconds``, the rows per table, and
``goal_met`` (every page under ``--goal-ms``, 150, at p95).

    .venv/bin/python benchmarks/console.py
    .venv/bin/python benchmarks/console.py --calls 2000 --requests 50
    .venv/bin/python benchmarks/console.py --keep --schema bench_console_full
    .venv/bin/python benchmarks/console.py --reuse --schema bench_console_full  # measure again

With ``--keep`` the schema stays for EXPLAIN; ``--reuse`` measures it again without
filling (its regulars are then the callers with more than one call).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import html
import json
import math
import os
import platform
import random
import re
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from quart import Quart

from agentkit.console.app import ConsoleConfig, console_blueprint
from agentkit.console.operations import ConsoleOperations
from agentkit.console.search import read_search
from agentkit.console.session import ConsoleAccess, session_key
from agentkit.events import call_parties, is_routable, parse_event
from agentkit.logs import configure_logging
from agentkit.serving import EmbeddedServer, event_loop_factory
from agentkit.store.base import NewEvent
from agentkit.store.postgres import PostgresStore

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TOKEN = "console-bench-" + secrets.token_hex(8)
WINDOW = timedelta(days=30)
OPEN_WINDOW = timedelta(hours=12)  # callbacks asked for this recently are still open
EVENT_BATCH = 10_000
GROUP_BATCH_CALLS = 2_000
MAX_ATTEMPTS = 5

# The account: its numbers (the main one first), users, flows, mailbox.
OUR_NUMBERS = ("+40264000111", "+442079460000", "+40213000222")
OUR_WEIGHTS = (0.6, 0.25, 0.15)
AGENTS = tuple(f"usr_agent{n:02d}" for n in range(24))
SUPERVISORS = ("usr_super01", "usr_super02", "usr_super03")
DAY_FLOW, NIGHT_FLOW, MAIN_NUMBER_ID = "cf_day_main", "cf_after_hours", "num_main"

# The shipped bots, their handlers (join timers are named after them) and model tasks.
VOICEMAIL, SUMMARY, ESCALATION, AFTER_HOURS = (
    "voicemail-callback", "call-summary", "escalation", "after-hours")
BOTS = (VOICEMAIL, SUMMARY, ESCALATION, AFTER_HOURS)
JOIN_TIMEOUT = timedelta(minutes=15)
MODEL = "gpt-4o-mini"

# Dead letters: (bot, error as the worker records it, share of the dead letters).
DEAD_ERRORS = (
    (SUMMARY, "LlmError: the model's answer did not fit FollowUps twice (follow_ups.0.quote: "
              "field required)", 0.38),
    (VOICEMAIL, "ApiError: phone.systems answered 503 service_unavailable to GET "
                "/v1/calls/{id}/transcript; retry later\n(request id req_7Q2 attempt 5)", 0.27),
    (ESCALATION, "TimeoutError: the model did not answer within 30.0 s", 0.18),
    (VOICEMAIL, "ActionError: callback: the dial policy has no region for this number; set "
                "AGENTKIT_DIAL_COUNTRIES", 0.11),
    (None, "UnknownJobError: no handler for task 'callback-outcome' in this process", 0.06),
)

_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def log(message: str) -> None:
    print(message, flush=True)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- what the fill writes

@dataclass
class Run:
    attempt: int
    started_at: datetime
    finished_at: datetime
    outcome: str
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class JobRow:
    kind: str
    event_id: str
    bot: str | None
    name: str
    payload: dict[str, Any]
    state: str
    attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    last_error: str | None = None
    runs: list[Run] = field(default_factory=list)


@dataclass
class Batch:
    """One batch of calls and everything agentkit did on them, ready to write."""

    events: list[NewEvent] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    answers: list[tuple[Any, ...]] = field(default_factory=list)
    placed: list[tuple[Any, ...]] = field(default_factory=list)
    claims: list[tuple[Any, ...]] = field(default_factory=list)
    calls: int = 0


@dataclass
class Call:
    """One call being made up: its id, parties, and its events' ids by type (the last of each)."""

    id: str
    direction: str
    from_: str
    to: str
    started_at: datetime
    events: dict[str, str] = field(default_factory=dict)
    times: dict[str, datetime] = field(default_factory=dict)


class World:
    """Makes up calls, group by group (an inbound call and the callbacks it leads to)."""

    def __init__(self, *, calls: int, events_per_call: float, dead_letters: int, seed: int,
                 now: datetime) -> None:
        self.rng = random.Random(seed)
        self.target_calls = calls
        self.target_events = round(calls * events_per_call)
        self.now = now
        self.start = now - WINDOW
        self.calls_made = 0
        self.events_made = 0
        self.answered_made = 0
        self.leg_events = 0  # the transfers' events, beyond each call's own
        self.other_events = 0  # events of no call (schedules)
        self.call_ids: list[str] = []
        # About 1.8 jobs a call may fail (bot jobs that do the work, callback-outcome tasks).
        self.dead_rate = min(0.05, dead_letters / max(1.0, calls * 1.8))
        # 2 % of answered calls, but enough to be searched in a small run.
        self.escalation_rate = max(0.02, 20 / calls)
        self._fresh = 0
        pool = max(50, calls // 12)
        self.repeat_callers = [self._new_number() for _ in range(pool)]
        # Zipf-like: the first callers call hundreds of times, most a few times.
        self._caller_weights = list(_cumulative([1 / (rank + 30) ** 1.2 for rank in range(pool)]))
        self.batch = Batch()

    # numbers and ids

    def _new_number(self) -> str:
        self._fresh += 1
        n = (self._fresh * 7_919_317) % 10_000_000  # distinct, not in order
        if self._fresh % 3:
            return f"+4474{n:08d}"
        return f"+4072{n:07d}"

    def caller(self) -> str:
        if self.rng.random() < 0.45:
            return self.rng.choices(self.repeat_callers, cum_weights=self._caller_weights)[0]
        return self._new_number()

    def ulid(self, prefix: str, at: datetime) -> str:
        """An id as ``agentkit/sim/ids.py`` makes them: 26 characters, in time order."""
        value = (int(at.timestamp() * 1000) << 80) | self.rng.getrandbits(80)
        # 130 bits, two of them leading zeros: the value shifted into 17 bytes, read 26 by 5.
        text = base64.b32encode((value << 6).to_bytes(17, "big")).decode()[:26]
        return f"{prefix}_{text.translate(_CROCKFORD)}"

    # events

    def _event(self, call: Call, event_type: str, at: datetime, data: dict[str, Any], *,
               parties: bool) -> str:
        event_id = self.ulid("evt", at)
        body = json.dumps({"id": event_id, "type": event_type, "created_at": stamp(at),
                           "data": data}, separators=(",", ":")).encode()
        said = (data.get("from"), data.get("to"), data.get("direction")) if parties else (
            None, None, None)
        self.batch.events.append(NewEvent(
            id=event_id, type=event_type, created_at=at.replace(microsecond=0), call_id=call.id,
            body=body, routable=True, from_number=said[0], to_number=said[1], direction=said[2]))
        call.events[event_type] = event_id
        call.times[event_type] = at
        self.events_made += 1
        return event_id

    def _call_event(self, call: Call, event_type: str, at: datetime, *, status: str,
                    answered_at: datetime | None = None, ended_at: datetime | None = None,
                    user_id: str | None = None) -> str:
        data = {
            "id": call.id, "direction": call.direction, "from": call.from_, "to": call.to,
            "user_id": user_id, "call_flow_id": DAY_FLOW if call.direction == "inbound" else None,
            "status": status, "started_at": stamp(call.started_at),
            "answered_at": stamp(answered_at) if answered_at else None,
            "ended_at": stamp(ended_at) if ended_at else None,
            "duration": int((ended_at - (answered_at or call.started_at)).total_seconds())
            if ended_at else 0,
            "recording": True, "ai_features": ["transcript", "sentiment"], "ai": None,
        }
        return self._event(call, event_type, at, data, parties=True)

    def _new_call(self, direction: str, from_: str, to: str, at: datetime) -> Call:
        call = Call(self.ulid("cal", at), direction, from_, to, at)
        self.calls_made += 1
        self.batch.calls += 1
        self.call_ids.append(call.id)
        return call

    def _legs(self, call: Call) -> int:
        """Transfers of one answered call: as many, on average, as the events still owed need.

        None for calls of the last three hours, so that no event is after the fill's now.
        """
        if call.started_at > self.now - timedelta(hours=3):
            return 0
        calls_left = self.target_calls - self.calls_made + 1
        # Of those, the ones that may have transfers: not those of the last three hours.
        with_legs = max(1.0, calls_left - self.target_calls * (timedelta(hours=3) / WINDOW))
        made = max(1, self.calls_made)
        own = (self.events_made - self.leg_events - self.other_events) / made
        answered_share = self.answered_made / made
        if self.calls_made < 50:
            own, answered_share = 4.2, 0.7
        owed = self.target_events - self.events_made - own * calls_left
        mean = max(0.0, owed / max(1.0, answered_share * with_legs) / 2)
        if mean == 0:
            return 0
        return min(40, int(self.rng.expovariate(1 / mean) + 0.5))

    def _talk(self, call: Call, answered: datetime, *, agent: str) -> datetime:
        """An answered call: call.answered, transfers, call.completed, recording, transcript."""
        self._call_event(call, "call.answered", answered, status="in_progress",
                         answered_at=answered, user_id=agent)
        at = answered
        legs = self._legs(call)
        self.leg_events += 2 * legs
        for _ in range(legs):
            at += timedelta(seconds=self.rng.randint(20, 180))
            self._event(call, "recording.ready", at + timedelta(seconds=5),
                        {"call_id": call.id, "duration": self.rng.randint(30, 240)}, parties=False)
            self._call_event(call, "call.answered", at, status="in_progress",
                             answered_at=answered, user_id=self.rng.choice(AGENTS))
        ended = at + timedelta(seconds=self.rng.randint(40, 600))
        self._call_event(call, "call.completed", ended, status="completed", answered_at=answered,
                         ended_at=ended, user_id=agent)
        self._after_hangup(call, ended)
        self.answered_made += 1
        return ended

    def _after_hangup(self, call: Call, ended: datetime) -> None:
        self._event(call, "recording.ready", ended + timedelta(seconds=20),
                    {"call_id": call.id, "duration": int((ended - call.started_at).seconds)},
                    parties=False)
        self._event(call, "transcript.ready", ended + timedelta(seconds=45),
                    {"call_id": call.id, "language": "ro-RO" if call.from_.startswith("+40")
                     else "en-GB"}, parties=False)

    # jobs, runs, answers, actions

    def _job(self, kind: str, event_id: str, at: datetime, *, bot: str | None = None,
             name: str = "", payload: dict[str, Any] | None = None, run_at: datetime | None = None,
             may_die: bool = True, tokens: tuple[int, int] = (0, 0)) -> bool:
        """A job as the workers leave it; True if it was done, False if it is dead (or open)."""
        created = at + timedelta(seconds=1 + self.rng.random())
        due = run_at or created
        if due > self.now:
            self.batch.jobs.append(JobRow(kind, event_id, bot, name, payload or {}, "pending", 0,
                                          due, created, created))
            return False
        took = timedelta(milliseconds=self.rng.randint(40, 2500))
        if may_die and self.rng.random() < self.dead_rate:
            error = self._dead_error(bot)
            runs, t = [], due
            for attempt in range(1, MAX_ATTEMPTS + 1):
                runs.append(Run(attempt, t, t + took, "error", error))
                t += took + timedelta(seconds=2 ** attempt)
            self.batch.jobs.append(JobRow(kind, event_id, bot, name, payload or {}, "dead",
                                          MAX_ATTEMPTS, t, created, t, error,
                                          runs if kind == "bot" else []))
            return False
        runs = []
        if kind == "bot":
            cost = (tokens[0] * 0.15 + tokens[1] * 0.6) / 1e6
            runs = [Run(1, due, due + took, "ok", None, tokens[0], tokens[1], cost)]
        self.batch.jobs.append(JobRow(kind, event_id, bot, name, payload or {}, "done", 1, due,
                                      created, due + took, None, runs))
        return True

    def _dead_error(self, bot: str | None) -> str:
        # Pick among the groups of this bot (or any, for a job of no bot).
        groups = [(b, e, w) for b, e, w in DEAD_ERRORS if b == bot] or list(DEAD_ERRORS)
        return self.rng.choices([e for _, e, _ in groups], weights=[w for _, _, w in groups])[0]

    def _timer(self, bot: str, handler: str, call: Call, event_id: str, at: datetime) -> None:
        key = f"{bot}|{handler}|{call.id}"
        self._job("task", event_id, at, bot=bot, name=f"join-timeout:{handler}",
                  payload={"key": key}, run_at=at + JOIN_TIMEOUT, may_die=False)

    def _answer(self, call: Call, event_id: str, bot: str, task: str, answer: dict[str, Any],
                at: datetime, tokens: tuple[int, int]) -> None:
        cost = (tokens[0] * 0.15 + tokens[1] * 0.6) / 1e6
        self.batch.answers.append((event_id, call.id, bot, task, MODEL, tokens[0], tokens[1], cost,
                                   self.rng.random() < 0.03, json.dumps(answer), at))

    def _action(self, key: str, event_id: str, call: Call | None, bot: str, kind: str,
                state: str, detail: dict[str, Any], created: datetime, updated: datetime) -> None:
        self.batch.actions.append((key, event_id, bot, kind, state, json.dumps(detail), created,
                                   updated, False, call.id if call else None))

    def _note(self, call: Call | None, event_id: str, bot: str, at: datetime, title: str,
              text: str, name: str = "") -> None:
        key = ":".join(p for p in (event_id, bot, "notify", name) if p)
        self._action(key, event_id, call, bot, "notify", "done",
                     {"title": title, "text": text, "outcome": "sent",
                      "channels": {"slack": "ok"}}, at, at + timedelta(milliseconds=300))

    # one group: an inbound call, and the callbacks it leads to

    def group(self, at: datetime) -> None:
        caller = self.caller()
        ours = self.rng.choices(OUR_NUMBERS, weights=OUR_WEIGHTS)[0]
        call = self._new_call("inbound", caller, ours, at)
        self._call_event(call, "call.initiated", at, status="ringing")
        roll = self.rng.random()
        if roll < 0.60:
            answered = at + timedelta(seconds=self.rng.randint(3, 25))
            self._talk(call, answered, agent=self.rng.choice(AGENTS))
            self._inbound_bots(call, "completed")
        elif roll < 0.85:
            ended = at + timedelta(seconds=self.rng.randint(40, 180))
            self._call_event(call, "call.completed", ended, status="voicemail", ended_at=ended)
            self._event(call, "voicemail.received", ended + timedelta(seconds=2), {
                "id": self.ulid("vmm", ended), "call_id": call.id, "mailbox_id": "vm_main",
                "from": caller, "to": ours, "duration": int((ended - at).seconds),
                "received_at": stamp(ended)}, parties=True)
            self._after_hangup(call, ended)
            self._inbound_bots(call, "voicemail")
        else:
            ended = at + timedelta(seconds=self.rng.randint(15, 40))
            self._call_event(call, "call.completed", ended, status="missed", ended_at=ended)

    def _inbound_bots(self, call: Call, status: str) -> None:
        completed = call.events["call.completed"]
        transcript = call.events["transcript.ready"]
        t_done, t_text = call.times["call.completed"], call.times["transcript.ready"]
        # escalation: call.completed joined with transcript.ready (inbound, completed/voicemail)
        self._job("bot", completed, t_done, bot=ESCALATION, may_die=False)
        self._timer(ESCALATION, "maybe_escalate", call, completed, t_done)
        if self._job("bot", transcript, t_text, bot=ESCALATION, tokens=(900, 60)):
            answer_at = t_text + timedelta(seconds=3)
            escalate = status == "completed" and self.rng.random() < self.escalation_rate
            self._answer(call, completed, ESCALATION, "escalation_check", {
                "escalate": escalate, "reasons": ["complaint"] if escalate else [],
                "explanation": "the caller asks for a manager twice" if escalate else "",
                "quote": None}, answer_at, (900, 60))
            if escalate:
                self._callback(call, completed, ESCALATION, answer_at, escalation=True)
        # voicemail-callback: voicemail.received joined with transcript.ready
        if status == "voicemail":
            voicemail = call.events["voicemail.received"]
            t_vm = call.times["voicemail.received"]
            self._job("bot", voicemail, t_vm, bot=VOICEMAIL, may_die=False)
            self._timer(VOICEMAIL, "call_back", call, voicemail, t_vm)
            if self._job("bot", transcript, t_text, bot=VOICEMAIL, tokens=(700, 90)):
                self._voicemail(call, voicemail, t_text + timedelta(seconds=2))
        else:
            self._job("bot", transcript, t_text, bot=VOICEMAIL, may_die=False)
            self._timer(VOICEMAIL, "call_back", call, transcript, t_text)
        self._summary(call, status == "completed")

    def _summary(self, call: Call, answered: bool) -> None:
        transcript, t_text = call.events["transcript.ready"], call.times["transcript.ready"]
        if self._job("bot", transcript, t_text, bot=SUMMARY,
                     tokens=(1400, 220) if answered else (0, 0)) and answered:
            at = t_text + timedelta(seconds=4)
            self._answer(call, transcript, SUMMARY, "call_summary", {
                "summary": "The caller asked about their last invoice; the agent explained the "
                           "charges and promised a corrected copy.",
                "sentiment": self.rng.choice(["positive", "neutral", "negative"]),
                "topics": ["billing"], "follow_ups": [
                    {"item": "send a corrected invoice", "quote": "I'll email it today",
                     "t": 81.5}]}, at, (1400, 220))
            self._note(call, transcript, SUMMARY, at + timedelta(seconds=1),
                       f"Call {call.from_} -> {call.to}", "Billing question; corrected invoice "
                       "to be sent today.")

    def _voicemail(self, call: Call, voicemail: str, at: datetime) -> None:
        wants = self.rng.random() < 0.8
        self._answer(call, voicemail, VOICEMAIL, "voicemail_triage", {
            "caller_name": None, "reason": "their line is down since this morning",
            "urgency": "normal", "wants_callback": wants, "callback_window": None,
            "callback_number": None, "spam": False, "language": "en"}, at, (700, 90))
        if wants:
            self._callback(call, voicemail, VOICEMAIL, at, escalation=False)
        self._note(call, voicemail, VOICEMAIL, at + timedelta(seconds=1),
                   f"Voicemail from {call.from_}",
                   "calling back now" if wants else "no callback asked for")

    def _callback(self, origin: Call, event_id: str, bot: str, at: datetime, *,
                  escalation: bool) -> None:
        kind = "escalation" if escalation else "callback"
        key = f"{event_id}:{bot}:{kind}"
        caller, ours = origin.from_, origin.to
        detail: dict[str, Any] = {
            "to": caller, "from": ours, "urgency": "high" if escalation else "normal",
            "reason": "the caller asks for a manager" if escalation
            else "their line is down since this morning",
            "team": {"role": "supervisor" if escalation else "agent"}, "escalation": escalation,
            "origin_call_id": origin.id, "caller": caller, "attempts": 0, "call_ids": [],
        }
        if self.now - at < OPEN_WINDOW:
            # Asked for lately: still open, its next attempt scheduled.
            tries = 1 if self.rng.random() < 0.2 else 0
            last = self._attempts(origin, event_id, key, bot, detail, at, tries, reached_on=None)
            tries = detail["attempts"]
            next_at = max(self.now, last) + timedelta(minutes=self.rng.randint(5, 600))
            detail.update(state="retry_scheduled" if tries else "scheduled",
                          next_at=next_at.isoformat())
            self._job("task", event_id, at, bot=bot, name=f"callback:{key}:{tries + 1}",
                      payload={"key": key, "attempt": tries + 1}, run_at=next_at, may_die=False)
            self._action(key, event_id, origin, bot, kind, "started", detail, at, last)
            return
        roll = self.rng.random()
        if roll < 0.60:
            state, outcome, tries, reached = "done", "reached", 1, 1
        elif roll < 0.72:
            state, outcome, tries, reached = "done", "reached", 2, 2
        elif roll < 0.92:
            state, outcome, tries, reached = "failed", "unreached", 3, None
        elif roll < 0.95:
            state, outcome, tries, reached = "failed", "refused", 0, None
        elif roll < 0.98:
            state, outcome, tries, reached = "done", "cancelled", 1, None
        else:
            state, outcome, tries, reached = "failed", "expired", 0, None
        last = self._attempts(origin, event_id, key, bot, detail, at, tries, reached_on=reached)
        reason = {"reached": f"answered, talked {self.rng.randint(30, 400)} s",
                  "unreached": "no_answer on attempt 3 of 3",
                  "refused": "number_cap", "cancelled": "the caller was reached meanwhile",
                  "expired": "not placed within 1 day of the request; given up"}[outcome]
        detail.update(outcome=outcome, reason=reason)
        ended = last + timedelta(seconds=2)
        self._action(key, event_id, origin, bot, kind, state, detail, at, ended)
        if outcome != "refused" and not escalation:
            payload = {"key": key, "outcome": outcome, "to": caller, "attempts": tries,
                       "call_ids": detail["call_ids"], "reason": reason,
                       "origin_event_id": event_id, "escalation": False, "merged": []}
            self._job("task", event_id, ended, bot=bot, name=f"after-callback:{key}",
                      payload=payload, may_die=False)
            self._note(origin, event_id, bot, ended + timedelta(seconds=2),
                       f"Callback to {caller}: {outcome}", reason, name="outcome")
        if escalation:
            self._note(origin, event_id, bot, at + timedelta(seconds=1), f"Escalated by {bot}",
                       detail["reason"], name="escalation")

    def _attempts(self, origin: Call, event_id: str, key: str, bot: str,
                  detail: dict[str, Any], at: datetime, tries: int, *,
                  reached_on: int | None) -> datetime:
        """Place ``tries`` outbound calls for one callback; when the last one ended."""
        last = at
        for attempt in range(1, tries + 1):
            if self.calls_made >= self.target_calls:
                break
            placed = last + (timedelta(seconds=8) if attempt == 1
                             else timedelta(hours=1, seconds=self.rng.randint(0, 600)))
            if placed > self.now - timedelta(minutes=30):
                break
            if attempt > 1:
                self._job("task", event_id, placed - timedelta(seconds=1),
                          bot=bot, name=f"callback:{key}:{attempt}",
                          payload={"key": key, "attempt": attempt}, run_at=placed, may_die=False)
            agent = self.rng.choice(SUPERVISORS if detail["escalation"] else AGENTS)
            out = self._new_call("outbound", origin.to, origin.from_, placed)
            self._call_event(out, "call.initiated", placed, status="ringing", user_id=agent)
            if attempt == reached_on:
                ended = self._talk(out, placed + timedelta(seconds=self.rng.randint(5, 20)),
                                   agent=agent)
                status, duration = "completed", int((ended - placed).seconds)
                self._summary(out, True)
                self._job("bot", out.events["transcript.ready"], out.times["transcript.ready"],
                          bot=VOICEMAIL, may_die=False)
                self._timer(VOICEMAIL, "call_back", out, out.events["transcript.ready"],
                            out.times["transcript.ready"])
            else:
                ended = placed + timedelta(seconds=30)
                status, duration = "no_answer", 0
                self._call_event(out, "call.completed", ended, status=status, ended_at=ended,
                                 user_id=agent)
            self._job("task", out.events["call.completed"], ended, name="callback-outcome",
                      may_die=True)
            self.batch.placed.append((out.id, key, origin.from_, attempt, placed))
            self.batch.claims.append((key, attempt, origin.from_, bot, placed))
            detail["attempts"] = attempt
            detail["call_ids"] = [*detail["call_ids"], out.id]
            detail["placing_attempt"] = attempt
            detail["state"] = "placed"
            detail["agent"] = agent
            detail.setdefault("attempt_log", []).append({
                "attempt": attempt, "call_id": out.id, "status": status, "duration": duration,
                "at": (ended + timedelta(seconds=1)).isoformat()})
            last = ended
        return last

    # the after-hours bot: schedule events twice a day, each a flow change and a note

    def schedules(self) -> None:
        day = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < self.now:
            for hour, state in ((8, "open"), (18, "closed")):
                at = day + timedelta(hours=hour)
                if self.start <= at <= self.now:
                    self._schedule(at, state)
            day += timedelta(days=1)

    def _schedule(self, at: datetime, state: str) -> None:
        event_id = f"evt_schedule_{AFTER_HOURS}_follow_the_hours_{int(at.timestamp())}"
        data = {"bot": AFTER_HOURS, "handler": "follow_the_hours", "state": state,
                "at": stamp(at)}
        body = json.dumps({"id": event_id, "type": "agentkit.schedule", "created_at": stamp(at),
                           "data": data}).encode()
        self.batch.events.append(NewEvent(id=event_id, type="agentkit.schedule", created_at=at,
                                          call_id=None, body=body, routable=True))
        self.events_made += 1
        self.other_events += 1
        self._job("bot", event_id, at, bot=AFTER_HOURS, may_die=False)
        closed = state == "closed"
        name = "close" if closed else "open"
        key = f"{event_id}:{AFTER_HOURS}:attach_number:{name}"
        done = at + timedelta(seconds=2)
        self._action(key, event_id, None, AFTER_HOURS, "attach_number", "done", {
            "number_id": MAIN_NUMBER_ID, "before": DAY_FLOW if closed else NIGHT_FLOW,
            "after": NIGHT_FLOW if closed else DAY_FLOW, "outcome": "attached"}, at, done)
        self._note(None, event_id, AFTER_HOURS, done, f"{OUR_NUMBERS[0]} now routes to "
                   f"{'After hours' if closed else 'Day'}", f"{'After hours' if closed else 'Open'}"
                   ": business hours.")

    def fill(self) -> Any:
        """Yield batches of about GROUP_BATCH_CALLS calls until ``target_calls`` are made."""
        self.schedules()
        # Calls start up to 15 minutes ago: their join timers are still pending.
        span = (WINDOW - timedelta(minutes=15)).total_seconds()
        while self.calls_made < self.target_calls:
            share = (self.calls_made + self.rng.random()) / self.target_calls
            self.group(self.start + timedelta(seconds=span * min(share, 0.9999)))
            if self.batch.calls >= GROUP_BATCH_CALLS:
                yield self.take()
        if self.batch.events:
            yield self.take()

    def take(self) -> Batch:
        batch, self.batch = self.batch, Batch()
        return batch


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


# ---------------------------------------------------------------- writing it

_INSERT_JOBS = """
    INSERT INTO jobs (kind, event_id, seq, call_id, bot, name, payload, state, attempts,
                      max_attempts, run_at, last_error, created_at, updated_at)
    SELECT s.kind, e.id, e.seq, e.call_id, s.bot, s.name, s.payload::jsonb, s.state, s.attempts,
           $12, s.run_at, s.last_error, s.created_at, s.updated_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::int[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
                $11::text[]) WITH ORDINALITY
         AS s(kind, event_id, bot, name, payload, state, attempts, run_at, created_at,
              updated_at, last_error, n)
    JOIN events e ON e.id = s.event_id
    ORDER BY s.n
    RETURNING id, event_id, kind, COALESCE(bot, ''), name
"""

# What a worker leaves on a route job it finished: one attempt, no lease, its times.
_ROUTES_DONE = """
    UPDATE jobs j SET state = 'done', attempts = 1, lease_owner = NULL, lease_expires_at = NULL,
        created_at = e.created_at + interval '1 second',
        run_at = e.created_at + interval '1 second',
        updated_at = e.created_at + interval '1 second' + random() * interval '400 ms'
    FROM events e
    WHERE j.kind = 'route' AND j.state = 'pending' AND e.id = j.event_id AND e.seq > $1
"""

_TABLES = ("events", "jobs", "bot_runs", "actions", "model_answers", "calls", "placed_calls",
           "dial_claims")


class Filler:
    def __init__(self, store: PostgresStore, conn: asyncpg.Connection, schema: str) -> None:
        self.store = store
        self.conn = conn
        self.schema = schema
        self.rows: dict[str, int] = dict.fromkeys(_TABLES, 0)
        self.last_seq = 0

    async def write(self, batch: Batch, *, check: bool) -> None:
        if check:
            _check_events(batch.events)
        for start in range(0, len(batch.events), EVENT_BATCH):
            fresh = await self.store.add_events(batch.events[start:start + EVENT_BATCH])
            if not all(fresh):
                raise RuntimeError("an event id was made twice: the fill is broken")
        await self.conn.execute(_ROUTES_DONE, self.last_seq)
        self.last_seq = int(await self.conn.fetchval("SELECT max(seq) FROM events"))
        self.rows["events"] += len(batch.events)
        self.rows["jobs"] += len(batch.events)  # their route jobs
        self.rows["calls"] += batch.calls
        ids = await self._jobs(batch.jobs)
        runs = [(ids[(j.event_id, j.kind, j.bot or "", j.name)], j.event_id, j.bot, r.attempt,
                 r.started_at, r.finished_at, r.outcome, r.error, r.prompt_tokens,
                 r.completion_tokens, r.cost_usd)
                for j in batch.jobs for r in j.runs]
        await self._copy("bot_runs", runs, ["job_id", "event_id", "bot", "attempt", "started_at",
                                            "finished_at", "outcome", "error", "prompt_tokens",
                                            "completion_tokens", "cost_usd"])
        await self._copy("actions", batch.actions, ["key", "event_id", "bot", "kind", "state",
                                                    "detail", "created_at", "updated_at",
                                                    "masked", "call_id"])
        await self._copy("model_answers", batch.answers,
                         ["event_id", "call_id", "bot", "task", "model", "prompt_tokens",
                          "completion_tokens", "cost_usd", "cached", "answer", "created_at"])
        await self._copy("placed_calls", batch.placed,
                         ["call_id", "action_key", "number", "attempt", "created_at"])
        await self._copy("dial_claims", batch.claims,
                         ["action_key", "attempt", "number", "bot", "created_at"])

    async def _jobs(self, jobs: list[JobRow]) -> dict[tuple[str, str, str, str], int]:
        ids: dict[tuple[str, str, str, str], int] = {}
        for start in range(0, len(jobs), 20_000):
            part = jobs[start:start + 20_000]
            rows = await self.conn.fetch(
                _INSERT_JOBS, [j.kind for j in part], [j.event_id for j in part],
                [j.bot for j in part], [j.name for j in part],
                [json.dumps(j.payload) for j in part], [j.state for j in part],
                [j.attempts for j in part], [j.run_at for j in part],
                [j.created_at for j in part], [j.updated_at for j in part],
                [j.last_error for j in part], MAX_ATTEMPTS,
            )
            if len(rows) != len(part):
                raise RuntimeError(f"{len(part) - len(rows)} jobs found no event: the fill is "
                                   "broken")
            ids.update({(r[1], r[2], r[3], r[4]): int(r[0]) for r in rows})
        self.rows["jobs"] += len(jobs)
        return ids

    async def _copy(self, table: str, records: list[tuple[Any, ...]], columns: list[str]) -> None:
        if records:
            await self.conn.copy_records_to_table(table, records=records, columns=columns,
                                                  schema_name=self.schema)
            self.rows[table] += len(records)


def _check_events(events: list[NewEvent]) -> None:
    """The bodies parse as the receiver parses them, to the ids, numbers and direction given."""
    for event in events:
        parsed = parse_event(event.body, internal=event.type.startswith("agentkit."))
        said = call_parties(parsed)
        if (parsed.id, parsed.type, parsed.call_id, is_routable(parsed)) != (
                event.id, event.type, event.call_id, event.routable) or (
                event.call_id is not None
                and said != (event.from_number, event.to_number, event.direction)):
            raise RuntimeError(f"event {event.id} ({event.type}) does not read back as made: "
                               f"{parsed!r}")


async def fill(args: argparse.Namespace, store: PostgresStore, conn: asyncpg.Connection,
               schema: str, world: World) -> tuple[Filler, float]:
    filler = Filler(store, conn, schema)
    started = time.monotonic()
    shown = started
    log(f"filling schema {schema}: {args.calls:,} calls, about {world.target_events:,} events")
    for number, batch in enumerate(world.fill()):
        await filler.write(batch, check=number == 0)
        now = time.monotonic()
        if now - shown >= 5 or world.calls_made >= world.target_calls:
            shown = now
            rows = sum(filler.rows.values())
            log(f"  {world.calls_made:,} calls, {filler.rows['events']:,} events, "
                f"{filler.rows['jobs']:,} jobs, {filler.rows['actions']:,} actions: "
                f"{filler.rows['events'] / (now - started):,.0f} events/s, "
                f"{rows / (now - started):,.0f} rows/s")
    written = time.monotonic()
    log(f"written in {written - started:.1f} s; VACUUM (ANALYZE) of every table")
    for table in (*_TABLES, "llm_cache", "joins", "open_callbacks"):
        await conn.execute(f'VACUUM (ANALYZE) "{schema}".{table}')
    fill_seconds = time.monotonic() - started
    log(f"vacuumed and analysed in {time.monotonic() - written:.1f} s; fill took "
        f"{fill_seconds:.1f} s")
    return filler, fill_seconds


# ---------------------------------------------------------------- the console, measured

@dataclass
class Page:
    name: str
    path: Callable[[random.Random], str]
    expect_rows: bool = True


def spaced(number: str) -> str:
    """An E.164 number as an operator types it: +44 7412 345 678, +40 721 234 567."""
    if number.startswith("+44"):
        rest = number[3:]
        return f"+44 {rest[:4]} {rest[4:7]} {rest[7:]}"
    rest = number[3:]
    return f"+40 {rest[:3]} {rest[3:6]} {rest[6:]}"


def calls_query(text: str, **more: str) -> str:
    return "/console/calls?" + urlencode({"q": text, **more})


def console_app(store: PostgresStore) -> Quart:
    """The console as agentkit/service.py builds it, with a shared token."""
    access = ConsoleAccess(secret_key=session_key("bench-api-key", TOKEN, "whsec_bench"),
                           shared_token=TOKEN)
    config = ConsoleConfig(access=access, bots=BOTS, regions=("GB", "RO"), calls_daily_max=500)
    operations = ConsoleOperations(store, api=None, wake=None)
    app = Quart("agentkit_console_bench")
    app.register_blueprint(console_blueprint(config, store, operations, api=None))
    return app


async def sign_in(client: httpx.AsyncClient) -> None:
    answer = await client.post("/console/login", data={"token": TOKEN, "name": "benchmark"})
    if answer.status_code != 303 or "agentkit_console" not in client.cookies:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:300]}")


async def link(client: httpx.AsyncClient, path: str, pattern: str) -> str:
    answer = await client.get(path)
    found = re.search(pattern, answer.text)
    if answer.status_code != 200 or found is None:
        raise RuntimeError(f"{path} has no link matching {pattern!r} ({answer.status_code})")
    return html.unescape(found.group(1))


async def pages(client: httpx.AsyncClient, world: World) -> list[Page]:
    page2 = await link(client, "/console/calls", r'<a rel="next" href="([^"]+)"')
    group = await link(client, "/console/dead", r'<a href="(/console/dead/group\?[^"]+)"')
    # Repeat callers with a few calls or more (not the few busiest only), as typed.
    regulars = world.repeat_callers[:max(20, len(world.repeat_callers) // 10)]
    for number in regulars[:3]:
        if read_search(spaced(number), bots=BOTS, regions=("GB", "RO")).query.numbers != (
                number,):
            raise RuntimeError(f"{spaced(number)} does not read back as {number}")
    ids = world.call_ids
    return [
        Page("calls", lambda r: "/console/calls"),
        Page("calls_page2", lambda r: page2),
        Page("fragment", lambda r: "/console/calls?fragment=1"),
        Page("search_number", lambda r: calls_query(spaced(r.choice(regulars)))),
        Page("search_busy_number", lambda r: calls_query(spaced(OUR_NUMBERS[0]))),
        Page("search_bot", lambda r: calls_query(VOICEMAIL)),
        Page("search_bot_idle", lambda r: calls_query(AFTER_HOURS), expect_rows=False),
        Page("search_reached", lambda r: calls_query("reached")),
        Page("search_unreached", lambda r: calls_query("not reached")),
        Page("search_dead", lambda r: calls_query("dead")),
        Page("search_escalated", lambda r: calls_query("escalated")),
        Page("search_call_id", lambda r: calls_query(r.choice(ids))),
        Page("call", lambda r: f"/console/calls/{r.choice(ids)}"),
        Page("dead", lambda r: "/console/dead"),
        Page("dead_group", lambda r: group),
        Page("callbacks", lambda r: "/console/callbacks"),
        Page("flows", lambda r: "/console/flows"),
        Page("health", lambda r: "/console/health"),
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def measure(args: argparse.Namespace, store: PostgresStore,
                  world: World) -> dict[str, list[float]]:
    app = console_app(store)
    server = EmbeddedServer(app, host="127.0.0.1", port=0)
    await server.start()
    # As agentkit run does once started: what start-up built is out of the collector's way.
    gc.collect()
    gc.freeze()
    times: dict[str, list[float]] = {}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await sign_in(client)
            measured = await pages(client, world)
            rng = random.Random(args.seed + 1)
            log(f"console at {server.url}/console: {len(measured)} pages, {args.warmup} rounds "
                f"to warm up, then {args.requests} requests each, one at a time, pages in turn")
            times = {page.name: [] for page in measured}
            for round_ in range(args.warmup + args.requests):
                for page in measured:
                    path = page.path(rng)
                    began = time.perf_counter()
                    answer = await client.get(path)
                    body = answer.text
                    took = (time.perf_counter() - began) * 1000
                    if answer.status_code != 200:
                        raise RuntimeError(f"{path}: {answer.status_code} {body[:300]}")
                    if page.expect_rows and "No calls match." in body:
                        raise RuntimeError(f"{path}: no calls listed; the fill is not as meant")
                    if round_ >= args.warmup:
                        times[page.name].append(took)
                done = round_ + 1 - args.warmup
                if done > 0 and (done % max(1, args.requests // 4) == 0 or done == args.requests):
                    slowest = max(times, key=lambda n: percentile(times[n], 0.95))
                    log(f"  {done}/{args.requests} rounds; slowest p95 so far {slowest} "
                        f"{percentile(times[slowest], 0.95):.1f} ms")
    finally:
        await server.stop()
    for name, values in times.items():
        log(f"{name:>20}: p50 {statistics.median(values):7.1f} ms, p95 "
            f"{percentile(values, 0.95):7.1f} ms, max {max(values):7.1f} ms "
            f"({len(values)} requests)")
    return times


# ---------------------------------------------------------------- the run

async def run(args: argparse.Namespace) -> dict[str, Any]:
    schema = args.schema or f"bench_console_{secrets.token_hex(4)}"
    store = PostgresStore(args.database_url, schema=schema)
    await store.open()
    conn = await asyncpg.connect(args.database_url, server_settings={"search_path": schema})
    now = datetime.now(UTC).replace(microsecond=0)
    world = World(calls=args.calls, events_per_call=args.events_per_call,
                  dead_letters=args.dead_letters, seed=args.seed, now=now)
    filled = False
    try:
        fill_seconds: float | None = None
        if args.reuse:
            await reuse(conn, schema, world)
        else:
            _, fill_seconds = await fill(args, store, conn, schema, world)
        filled = True
        counted = {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in _TABLES}
        dead = int(await conn.fetchval("SELECT count(*) FROM jobs WHERE state = 'dead'"))
        log("rows: " + ", ".join(f"{t} {n:,}" for t, n in counted.items())
            + f"; dead letters {dead:,}")
        times = await measure(args, store, world)
    finally:
        await store.close()
        with contextlib.suppress(Exception):
            await conn.close()
        if args.keep and filled:
            log(f"kept schema {schema} (drop it with: DROP SCHEMA {schema} CASCADE)")
        elif not args.reuse:
            await drop_schema(args.database_url, schema)
    p95 = {name: round(percentile(values, 0.95), 1) for name, values in times.items()}
    p50 = {name: round(statistics.median(values), 1) for name, values in times.items()}
    slowest = max(p95, key=lambda name: p95[name])
    return {
        "calls": counted["calls"], "events": counted["events"], "requests": args.requests,
        "p95_ms": p95, "p50_ms": p50, "p95_ms_max": p95[slowest], "slowest_page": slowest,
        "goal_ms": args.goal_ms, "goal_met": p95[slowest] < args.goal_ms,
        "fill_seconds": None if fill_seconds is None else round(fill_seconds, 1),
        "rows": {**counted, "dead_letters": dead},
        "schema": schema if args.keep else None, "seed": args.seed,
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        # The machine may be shared: its load over the last minute, as the measure ended.
        "load_1m": round(os.getloadavg()[0], 2),
    }


async def reuse(conn: asyncpg.Connection, schema: str, world: World) -> None:
    """Measure a schema an earlier run kept: its calls, and its callers who called again."""
    world.call_ids = [row[0] for row in await conn.fetch("SELECT call_id FROM calls")]
    if not world.call_ids:
        raise SystemExit(f"schema {schema} has no calls: fill it first (--keep)")
    world.repeat_callers = [row[0] for row in await conn.fetch(
        "SELECT from_number FROM calls WHERE direction = 'inbound' AND from_number NOT IN "
        f"{OUR_NUMBERS!r} GROUP BY 1 HAVING count(*) > 1 ORDER BY count(*) DESC, 1")]
    log(f"measuring schema {schema} as filled before: {len(world.call_ids):,} calls, "
        f"{len(world.repeat_callers):,} callers who called more than once")


async def drop_schema(url: str, schema: str) -> None:
    """Drop the benchmark's schema, on a new connection: the server may have been restarted."""
    for _ in range(30):
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            await asyncio.sleep(2)
            continue
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
        return
    log(f"could not drop schema {schema}: drop it with DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_POSTGRES_URL",
                                                                 DEFAULT_URL))
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--events-per-call", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=200, help="measured requests a page")
    parser.add_argument("--warmup", type=int, default=5, help="rounds of every page first")
    parser.add_argument("--dead-letters", type=int, default=300, help="about how many")
    parser.add_argument("--goal-ms", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--schema", help="the schema to fill (default: a new bench_console_...)")
    parser.add_argument("--keep", action="store_true", help="keep the schema and its data")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the --schema an earlier run kept, without filling it "
                             "(kept, as with --keep)")
    args = parser.parse_args()
    if args.reuse and not args.schema:
        parser.error("--reuse needs --schema: the schema an earlier run kept")
    args.keep = args.keep or args.reuse
    if args.calls < 100 or args.events_per_call < 4 or args.requests < 1:
        parser.error("--calls must be at least 100, --events-per-call at least 4, "
                     "--requests at least 1")
    configure_logging(level="warning", json=True)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        summary = runner.run(run(args))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
