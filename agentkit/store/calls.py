"""Calls as the store keeps them: what a batch of deliveries adds, and the console's list.

The ``calls`` table holds a row per call, upserted as its events are stored. The
call list is built in SQL here, one builder for both engines. Every filter is a
term on ``calls c``: an equality the call list's indexes serve, a probe of each
call's jobs (by bot), or the calls of the actions or dead jobs an outcome names.
A number filter reads each number's calls newest first from ``calls_by_from`` and
``calls_by_to``, a page at most of each, and merges them: a busy number (the
account's own, say) costs a page, not every call it ever had.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from agentkit.store.base import (
    ActionRecord,
    CallActivity,
    CallCursor,
    CallOutcomeFilter,
    CallQuery,
    NewEvent,
)

# Adds a parameter to the statement's list and returns its placeholder.
Param = Callable[[Any], str]

CALL_COLUMNS = "call_id, started_at, last_at, from_number, to_number, direction, events"

# The action kinds each outcome looks for (agentkit/actions: callbacks.py, flows.py, and
# toolkit.py's notify, which records a chat note as kind "notify").
CALLBACK_KINDS = ("callback", "escalation")
NOTE_KIND = "notify"
FLOW_KINDS = ("update_flow", "attach_number", "revert_flow", "revert_attach")
# How a callback that never reached the caller ended (CallbackOutcomeName).
GIVEN_UP = ("unreached", "refused", "expired", "failed", "rejected")


def first_of_each(events: Sequence[NewEvent]) -> list[NewEvent]:
    """The batch without repeats of an id: the first of each, in the batch's order."""
    firsts: dict[str, NewEvent] = {}
    for event in events:
        firsts.setdefault(event.id, event)
    return list(firsts.values())


def redelivered(events: Sequence[NewEvent], stored: Collection[str]) -> dict[str, int]:
    """How many times each id of the batch came again: every time but the one ``stored`` now."""
    again: dict[str, int] = {}
    for event in events:
        again[event.id] = again.get(event.id, 0) + 1
    for event_id in stored:
        again[event_id] -= 1
    return {event_id: n for event_id, n in again.items() if n}


def call_activity(call_ids: Sequence[str], actions: Sequence[tuple[str, ActionRecord]],
                  jobs: Sequence[tuple[str, str | None, int]]) -> dict[str, CallActivity]:
    """Each call's activity from its actions (oldest first) and its jobs counted by bot.

    ``jobs`` holds (call id, bot, dead jobs of that bot) rows.
    """
    found = {call_id: CallActivity(call_id, [], [], 0) for call_id in call_ids}
    dead = dict.fromkeys(call_ids, 0)
    for call_id, action in actions:
        found[call_id].actions.append(action)
    for call_id, bot, dead_jobs in jobs:
        if bot is not None and bot not in found[call_id].bots:
            found[call_id].bots.append(bot)
        dead[call_id] += int(dead_jobs)
    return {call_id: CallActivity(call_id, activity.actions, sorted(activity.bots),
                                  dead[call_id])
            for call_id, activity in found.items()}


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def _outcome_term(outcome: CallOutcomeFilter, detail_outcome: str) -> str:
    """A term on calls ``c`` for one outcome; ``detail_outcome`` reads ``a.detail``'s outcome.

    The calls with such actions or dead jobs are few beside their jobs: read once (SQLite)
    or as the planner sees fit (PostgreSQL), where an EXISTS would probe every call.
    """
    if outcome == "dead":
        return "c.call_id IN (SELECT j.call_id FROM jobs j WHERE j.state = 'dead')"
    callbacks = f"a.kind IN {_in(CALLBACK_KINDS)}"
    actions = {
        "reached": f"{callbacks} AND a.state = 'done' AND {detail_outcome} = 'reached'",
        "unreached": f"{callbacks} AND a.state = 'failed' AND {detail_outcome} IN {_in(GIVEN_UP)}",
        "cancelled": f"{callbacks} AND {detail_outcome} = 'cancelled'",
        "callback": callbacks,
        "escalated": "a.kind = 'escalation'",
        "note": f"a.kind = '{NOTE_KIND}' AND a.state = 'done'",
        "flow": f"a.kind IN {_in(FLOW_KINDS)}",
    }[outcome]
    return f"c.call_id IN (SELECT a.call_id FROM actions a WHERE {actions})"


def list_calls_sql(query: CallQuery, limit: int, before: CallCursor | None, *,
                   param: Param, detail_outcome: str,
                   cursor: Callable[[CallCursor], tuple[Any, Any]],
                   call_jobs: str = "jobs j") -> str:
    """The call list's statement; ``param`` collects its parameters in order.

    ``cursor`` turns a cursor into the engine's (started_at, call_id) values;
    ``call_jobs`` names the jobs ``j`` the bot filter probes for each call (SQLite,
    without statistics, is told the index).
    """

    def terms() -> list[str]:
        found = []
        if query.call_id is not None:
            found.append(f"c.call_id = {param(query.call_id)}")
        if query.bot is not None:
            found.append(f"EXISTS (SELECT 1 FROM {call_jobs} WHERE j.call_id = c.call_id "
                          f"AND j.bot = {param(query.bot)})")
        if query.outcome is not None:
            found.append(_outcome_term(query.outcome, detail_outcome))
        if before is not None:
            started_at, call_id = cursor(before)
            found.append(f"(c.started_at, c.call_id) < ({param(started_at)}, {param(call_id)})")
        return found

    order = "ORDER BY started_at DESC, call_id DESC"
    if not query.numbers:
        where = " AND ".join(terms()) or "TRUE"
        return (f"SELECT {CALL_COLUMNS} FROM calls c WHERE {where} "
                f"{order} LIMIT {param(limit)}")
    pages: list[str] = []
    for number in dict.fromkeys(query.numbers):
        for column in ("from_number", "to_number"):
            where = " AND ".join([f"c.{column} = {param(number)}", *terms()])
            pages.append(f"SELECT * FROM (SELECT {CALL_COLUMNS} FROM calls c WHERE {where} "
                         f"{order} LIMIT {param(limit)}) AS p{len(pages)}")
    # UNION, not UNION ALL: a call from and to the same number is listed once.
    return (f"SELECT {CALL_COLUMNS} FROM ({' UNION '.join(pages)}) AS calls_found "
            f"{order} LIMIT {param(limit)}")
