"""A day's figures (``Store.day_figures``): the statements both engines run, and the tally.

Three statements read a window ``[start, end)``: one row of counts, the ended callbacks
grouped by outcome (and the refused ones by reason), and the model answers that name
topics, whose JSON is read here rather than in SQL. The engines differ only in their
placeholders and in how they read a field of a JSON body or detail.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agentkit.store.base import DayFigures
from agentkit.store.schema import IS_CALLBACK

# The statuses of an inbound call nobody answered (the missed-call bot's too).
MISSED_STATUSES = ("missed", "no_answer", "busy")
REFUSED = "refused"
TOPICS_FIELD = "topics"


@dataclass(frozen=True)
class FiguresSql:
    """The three statements, each taking the window's start and end as its parameters."""

    counts: str
    outcomes: str
    topics: str


def figures_sql(*, start: str, end: str, call_data: Callable[[str], str],
                detail: Callable[[str], str]) -> FiguresSql:
    """The statements, with ``start`` and ``end`` the engine's placeholders for the bounds.

    ``call_data(field)``: SQL reading ``data.<field>`` of an events row's body as text;
    ``detail(field)``: SQL reading ``<field>`` of an actions row's detail as text.
    """

    def within(column: str) -> str:
        return f"{column} >= {start} AND {column} < {end}"

    missed = ", ".join(f"'{status}'" for status in MISSED_STATUSES)
    completed = "type = 'call.completed'"
    counts = f"""
        SELECT c.*, m.*,
            (SELECT count(*) FROM placed_calls WHERE {within("created_at")}),
            (SELECT count(*) FROM actions WHERE kind = 'escalation' AND {within("created_at")}),
            (SELECT count(*) FROM jobs WHERE state = 'dead' AND {within("updated_at")}),
            (SELECT count(*) FROM approvals WHERE state = 'pending'),
            (SELECT count(*) FROM actions WHERE state = 'started' AND {IS_CALLBACK})
        FROM (
            SELECT count(*) FILTER (WHERE {completed} AND direction = 'inbound'),
                   count(*) FILTER (WHERE {completed} AND direction = 'outbound'),
                   count(*) FILTER (WHERE {completed} AND direction = 'inbound'
                                    AND status IN ({missed})),
                   count(*) FILTER (WHERE type = 'voicemail.received')
            FROM (SELECT type,
                         CASE WHEN {completed} THEN {call_data("direction")} END AS direction,
                         CASE WHEN {completed} THEN {call_data("status")} END AS status
                  FROM events
                  WHERE type IN ('call.completed', 'voicemail.received')
                    AND {within("created_at")}) e
        ) c, (
            SELECT count(*), count(*) FILTER (WHERE cached),
                   COALESCE(sum(prompt_tokens), 0), COALESCE(sum(completion_tokens), 0),
                   COALESCE(sum(cost_usd), 0)
            FROM model_answers WHERE {within("created_at")}
        ) m
    """
    outcome = detail("outcome")
    outcomes = f"""
        SELECT {outcome}, CASE WHEN {outcome} = '{REFUSED}' THEN {detail("reason")} END, count(*)
        FROM actions
        WHERE {IS_CALLBACK} AND state IN ('done', 'failed') AND {within("updated_at")}
        GROUP BY 1, 2
    """
    topics = f"""
        SELECT answer FROM model_answers
        WHERE {within("created_at")} AND answer LIKE '%"{TOPICS_FIELD}"%'
    """
    return FiguresSql(counts=counts, outcomes=outcomes, topics=topics)


def tally(counts: Sequence[Any], outcomes: Iterable[Sequence[Any]],
          answers: Iterable[str]) -> DayFigures:
    """DayFigures from the three statements' rows (``counts``: the one row of counts)."""
    (calls_in, calls_out, missed, voicemails, model_answers, cached, prompt_tokens,
     completion_tokens, cost_usd, placed, escalations, dead, approvals, open_callbacks) = counts
    ended: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    for outcome, reason, count in outcomes:
        if outcome is None:
            continue  # settled without an outcome word: nothing to count it under
        ended[str(outcome)] += int(count)
        if outcome == REFUSED:
            refusals["" if reason is None else str(reason)] += int(count)
    return DayFigures(
        calls_in=int(calls_in), calls_out=int(calls_out), missed=int(missed),
        voicemails=int(voicemails), calls_placed=int(placed), outcomes=dict(ended),
        refusals=dict(refusals), escalations=int(escalations), dead_letters=int(dead),
        model_answers=int(model_answers), cached_answers=int(cached),
        prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens),
        cost_usd=float(cost_usd), topics=count_topics(answers),
        approvals_pending=int(approvals), callbacks_open=int(open_callbacks),
    )


def count_topics(answers: Iterable[str]) -> dict[str, int]:
    """How many answers name each topic: the strings of an answer's ``topics`` list,
    lower-cased and stripped, each counted once per answer."""
    counted: Counter[str] = Counter()
    for text in answers:
        try:
            answer = json.loads(text)
        except ValueError:
            continue
        topics = answer.get(TOPICS_FIELD) if isinstance(answer, dict) else None
        if isinstance(topics, list):
            counted.update({t.strip().lower() for t in topics if isinstance(t, str) and t.strip()})
    return dict(counted)
