"""What the candidate would do that the live bots did not: call by call, action by action.

Both sides are action-log entries and model answers of the same stored events:
the live ones from the deployment's store, the candidate's from the replay's
isolated run (recorded as "would do"). An action is the same action on both
sides when its event, bot, kind and name match (``same_bot`` maps a candidate's
name to the live bot it stands for); it *changed* when what it does differs: a
callback's number, urgency, team or whether it was refused; a flow change's
flow or result; a note's title or text (a shadow note's "[shadow]" mark aside).
Model answers are compared field by field, per event, bot and task.

What ``@bot.after_callback`` handlers did is left out on both sides: it
follows calls a replay never places.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentkit.actions.toolkit import SHADOW_MARK
from agentkit.store.base import ActionRecord, ModelAnswer

Change = Literal["new", "removed", "changed"]
# The action kinds a report counts, and the word --fail-on uses for each.
KIND_WORDS: dict[str, str] = {
    "callback": "callbacks", "escalation": "escalations", "notify": "notes",
    "update_flow": "flow-changes", "attach_number": "flow-changes",
}
FIELDS_CHANGED = "changed-fields"
# What makes an action "the same action" doing "the same thing", per kind.
_COMPARED: dict[str, tuple[str, ...]] = {
    "callback": ("to", "urgency", "team", "decision"),
    "escalation": ("to", "urgency", "team", "decision"),
    "update_flow": ("flow_id", "after"),
    "attach_number": ("number_id", "after"),
    "notify": ("title", "text"),
}


class ActionDifference(BaseModel):
    """One action the candidate adds, drops or does differently."""

    change: Change
    kind: str
    event_id: str
    bot: str = ""
    name: str = ""
    live: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None
    fields: list[str] = Field(default_factory=list)

    @property
    def word(self) -> str:
        """``new-callbacks``, ``removed-notes``, ``changed-flow-changes``, ..."""
        return f"{self.change}-{KIND_WORDS.get(self.kind, self.kind)}"


class FieldDifference(BaseModel):
    """A model task whose answer has a field with another value."""

    event_id: str
    bot: str = ""
    task: str
    field: str
    live: Any = None
    candidate: Any = None


class CallDifferences(BaseModel):
    """Everything that differs on one call."""

    call_id: str
    actions: list[ActionDifference] = Field(default_factory=list)
    fields: list[FieldDifference] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.actions and not self.fields


def compare_call(
    call_id: str,
    live: Sequence[ActionRecord],
    candidate: Sequence[ActionRecord],
    *,
    live_answers: Sequence[ModelAnswer] = (),
    candidate_answers: Sequence[ModelAnswer] = (),
    same_bot: Mapping[str, str] | None = None,
) -> CallDifferences:
    """The differences between what the live bots did and what the candidate would do.

    ``same_bot``: a candidate bot's name -> the live bot's it is compared with
    (a name not in it is its own).
    """
    rename = same_bot or {}
    found = CallDifferences(call_id=call_id)
    before, after = _by_identity(live, {}), _by_identity(candidate, rename)
    for identity in sorted(before.keys() | after.keys()):
        event_id, bot, kind, name = identity
        old, new = before.get(identity), after.get(identity)
        if old is None or new is None:
            found.actions.append(ActionDifference(
                change="new" if old is None else "removed", kind=kind, event_id=event_id,
                bot=bot, name=name, live=old, candidate=new))
            continue
        fields = [f for f in _COMPARED.get(kind, ()) if old.get(f) != new.get(f)]
        if fields:
            found.actions.append(ActionDifference(
                change="changed", kind=kind, event_id=event_id, bot=bot, name=name, live=old,
                candidate=new, fields=fields))
    found.fields = _answer_differences(live_answers, candidate_answers, rename)
    return found


def difference_words(calls: Iterable[CallDifferences]) -> Counter[str]:
    """How many differences of each kind: ``new-callbacks``, ``changed-fields``, ..."""
    counts: Counter[str] = Counter()
    for call in calls:
        counts.update(d.word for d in call.actions)
        if call.fields:
            counts[FIELDS_CHANGED] += len(call.fields)
    return counts


def failing(counts: Counter[str], fail_on: Iterable[str]) -> list[str]:
    """The ``--fail-on`` words that the differences hit, in the order given."""
    return [word for word in fail_on if counts.get(word, 0) > 0]


def fail_on_words() -> list[str]:
    """Every word ``--fail-on`` accepts."""
    kinds = sorted(set(KIND_WORDS.values()))
    return [f"{change}-{kind}" for change in ("new", "removed", "changed") for kind in kinds] \
        + [FIELDS_CHANGED]


def compared(record: ActionRecord) -> bool:
    """Whether a replay compares this action: a kind it knows, not after a callback."""
    return record.kind in _COMPARED and not record.detail.get("after_callback")


def _by_identity(records: Sequence[ActionRecord], rename: Mapping[str, str]
                 ) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Each compared action by (event, bot, kind, name), as what it does."""
    found: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for record in records:
        if not compared(record):
            continue
        prefix = f"{record.event_id}:{record.bot}:{record.kind}"
        name = record.key[len(prefix) + 1:] if record.key.startswith(prefix + ":") else ""
        bot = rename.get(record.bot, record.bot)
        found[(record.event_id, bot, record.kind, name)] = _what(record)
    return found


def _what(record: ActionRecord) -> dict[str, Any]:
    detail = record.detail
    shown = {key: detail.get(key) for key in _COMPARED[record.kind] if key in detail}
    if record.kind == "notify" and str(shown.get("title", "")).startswith(SHADOW_MARK):
        shown["title"] = str(shown["title"])[len(SHADOW_MARK):]
    if record.kind in ("callback", "escalation"):
        refused = record.state == "failed" and detail.get("outcome") == "refused"
        shown["decision"] = "refused" if refused else "call"
        if refused:
            shown["reason"] = detail.get("reason")
    return shown


def _answer_differences(live: Sequence[ModelAnswer], candidate: Sequence[ModelAnswer],
                        rename: Mapping[str, str]) -> list[FieldDifference]:
    before = {(a.event_id, a.bot, a.task): _fields(a.answer) for a in live}
    after = {(a.event_id, rename.get(a.bot, a.bot), a.task): _fields(a.answer)
             for a in candidate}
    found: list[FieldDifference] = []
    for event_id, bot, task in sorted(before.keys() & after.keys()):
        old, new = before[(event_id, bot, task)], after[(event_id, bot, task)]
        for field in sorted(old.keys() | new.keys()):
            if old.get(field) != new.get(field):
                found.append(FieldDifference(event_id=event_id, bot=bot, task=task, field=field,
                                             live=old.get(field), candidate=new.get(field)))
    return found


def _fields(answer: str) -> dict[str, Any]:
    try:
        parsed = json.loads(answer)
    except ValueError:
        return {"answer": answer}
    return parsed if isinstance(parsed, dict) else {"answer": parsed}
