"""Comparing what live bots did with what a candidate would do, action by action."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from agentkit.replay.compare import compare_call, difference_words, fail_on_words, failing
from agentkit.store.base import ActionRecord, ActionState, ModelAnswer

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
CALLER = "+442079460000"


def action(kind: str, detail: dict[str, Any], *, name: str = "", bot: str = "voicemail",
           state: ActionState = "done", event_id: str = "evt_1") -> ActionRecord:
    key = ":".join(p for p in (event_id, bot, kind, name) if p)
    return ActionRecord(key=key, event_id=event_id, bot=bot, kind=kind, state=state,
                        detail=detail, created_at=NOW, updated_at=NOW)


def callback(to: str = CALLER, urgency: str = "high", **more: Any) -> ActionRecord:
    return action("callback", {"to": to, "urgency": urgency, "team": {"role": "agent"},
                               "attempts": 1, "call_ids": ["cal_9"]}, **more)


def answer(fields: dict[str, Any], *, tokens: int = 100) -> ModelAnswer:
    return ModelAnswer(event_id="evt_1", bot="voicemail", task="extract", model="m",
                       prompt_tokens=tokens, completion_tokens=10, cost_usd=0.0,
                       cached=False, answer=json.dumps(fields), created_at=NOW)


def test_same_decisions_are_no_difference() -> None:
    """The same callback and note, one placed and one only decided by a candidate that stands
    for the live bot, are no difference: what happened to them after (attempts, calls) is not
    what is compared."""
    live = [callback(), action("notify", {"title": "Voicemail", "text": "invoice"})]
    would = [action("callback", {"to": CALLER, "urgency": "high", "team": {"role": "agent"},
                                 "dry_run": True}, bot="candidate"),
             action("notify", {"title": "Voicemail", "text": "invoice", "dry_run": True},
                    bot="candidate")]
    assert compare_call("cal_1", live, would, same_bot={"candidate": "voicemail"}).empty


def test_another_bot_doing_the_same_is_a_difference() -> None:
    """A note by another bot than the live one is a new note, and the live one removed."""
    live = [action("notify", {"title": "Voicemail", "text": "invoice"})]
    would = [action("notify", {"title": "Voicemail", "text": "invoice"}, bot="summary")]
    found = compare_call("cal_1", live, would)
    assert sorted((d.change, d.bot) for d in found.actions) == [
        ("new", "summary"), ("removed", "voicemail")]


def test_after_callback_actions_and_shadow_marks_are_not_compared() -> None:
    """A note an after-callback handler posted is left out, and a shadow note's mark is not a
    change of title."""
    live = [action("notify", {"title": "Called back", "text": "answered",
                              "after_callback": True}, name="outcome"),
            action("notify", {"title": "Voicemail", "text": "invoice"})]
    would = [action("notify", {"title": "[shadow] Voicemail", "text": "invoice",
                               "shadow": True})]
    assert compare_call("cal_1", live, would).empty


def test_a_new_and_a_removed_callback() -> None:
    """An action only the candidate has is new; one only live has is removed."""
    found = compare_call("cal_1", [callback()], [callback(name="requested-number")])
    assert [(d.change, d.kind, d.name) for d in found.actions] == [
        ("removed", "callback", ""), ("new", "callback", "requested-number")]
    assert difference_words([found]) == {"removed-callbacks": 1, "new-callbacks": 1}


def test_a_changed_number_and_urgency() -> None:
    """The same callback to another number at another urgency is changed, naming both."""
    found = compare_call("cal_1", [callback()], [callback(to="+442079460999", urgency="low")])
    (difference,) = found.actions
    assert (difference.change, difference.fields) == ("changed", ["to", "urgency"])
    assert difference.word == "changed-callbacks"


def test_refused_by_policy_differs_from_placed() -> None:
    """A callback the candidate's policy refuses, placed live, is a changed decision."""
    refused = callback(state="failed")
    refused = action("callback", {**refused.detail, "outcome": "refused",
                                  "reason": "GB is not allowed"}, state="failed")
    (difference,) = compare_call("cal_1", [callback()], [refused]).actions
    assert difference.fields == ["decision"]
    assert difference.candidate == {**difference.candidate, "decision": "refused",
                                    "reason": "GB is not allowed"}


def test_changed_extracted_fields() -> None:
    """Model answers are compared field by field, per event and task."""
    found = compare_call("cal_1", [], [],
                         live_answers=[answer({"urgency": "high", "spam": False})],
                         candidate_answers=[answer({"urgency": "low", "spam": False})])
    assert [(f.task, f.field, f.live, f.candidate) for f in found.fields] == [
        ("extract", "urgency", "high", "low")]
    assert difference_words([found]) == {"changed-fields": 1}


def test_fail_on_names_what_was_hit() -> None:
    """--fail-on words hit by the differences, in the order given; others are not."""
    counts = difference_words([compare_call("cal_1", [], [callback()])])
    assert failing(counts, ["removed-callbacks", "new-callbacks"]) == ["new-callbacks"]
    assert failing(counts, ["changed-fields"]) == []
    assert {"new-callbacks", "removed-notes", "changed-flow-changes",
            "changed-fields"} <= set(fail_on_words())
