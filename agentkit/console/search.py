"""The console's search box: one line of text read as a number, a call id, a bot or an outcome."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from agentkit.actions.policy import to_e164
from agentkit.errors import ConfigError
from agentkit.store.base import CallOutcomeFilter, CallQuery

# What an operator may type for each outcome filter.
OUTCOME_WORDS: dict[str, CallOutcomeFilter] = {
    "reached": "reached", "callback reached": "reached",
    "unreached": "unreached", "not reached": "unreached", "callback failed": "unreached",
    "cancelled": "cancelled", "canceled": "cancelled",
    "callback": "callback", "callbacks": "callback",
    "escalated": "escalated", "escalation": "escalated", "escalations": "escalated",
    "note": "note", "notes": "note", "note posted": "note",
    "flow": "flow", "flow change": "flow", "flow changes": "flow",
    "dead": "dead", "dead letter": "dead", "dead letters": "dead", "failed": "dead",
}
_NUMBER = re.compile(r"\+?[0-9(][0-9 .\-()/]{4,30}")
_MAX_QUERY = 200


@dataclass(frozen=True)
class Search:
    """A search box's text as a store query, and what it was read as (shown to the operator)."""

    text: str
    query: CallQuery
    read_as: str


def read_search(text: str, *, bots: Collection[str], regions: Sequence[str] = ()) -> Search:
    """Read ``text``: ``bot:NAME``, ``outcome:WORD`` and ``call:ID`` say what they are; bare
    text is a phone number in any format (national ones in ``regions``), a bot's name, an
    outcome word, else a call id."""
    text = " ".join(text.split())[:_MAX_QUERY]
    if not text:
        return Search("", CallQuery(), "all calls")
    prefix, _, rest = text.partition(":")
    named = prefix.lower()
    if rest and named == "bot":
        return Search(text, CallQuery(bot=rest.strip()), f"calls bot {rest.strip()} worked on")
    if rest and named == "outcome" and rest.strip().lower() in OUTCOME_WORDS:
        outcome = OUTCOME_WORDS[rest.strip().lower()]
        return Search(text, CallQuery(outcome=outcome), f"calls with outcome {outcome}")
    if rest and named == "call":
        return Search(text, CallQuery(call_id=rest.strip()), f"call {rest.strip()}")
    numbers = _numbers(text, regions)
    if numbers:
        return Search(text, CallQuery(numbers=numbers),
                      "calls from or to " + " or ".join(numbers))
    if text in bots:
        return Search(text, CallQuery(bot=text), f"calls bot {text} worked on")
    if text.lower() in OUTCOME_WORDS:
        outcome = OUTCOME_WORDS[text.lower()]
        return Search(text, CallQuery(outcome=outcome), f"calls with outcome {outcome}")
    return Search(text, CallQuery(call_id=text), f"call {text}")


def _numbers(text: str, regions: Sequence[str]) -> tuple[str, ...]:
    """The E.164 numbers ``text`` may mean: itself with a country code, else read in each
    region (``020 7946 0000`` in GB is +442079460000)."""
    if not _NUMBER.fullmatch(text) or sum(c.isdigit() for c in text) < 6:
        return ()
    found: list[str] = []
    for region in (None, *regions):
        try:
            found.append(to_e164(text, region=region))
        except ConfigError:
            continue
    if not found and not text.startswith(("+", "00")):
        try:
            found.append(to_e164("+" + text))
        except ConfigError:
            pass
    return tuple(dict.fromkeys(found))
