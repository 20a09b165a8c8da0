"""Which actions wait for a person: the rules, and the one question each action asks of them."""

from __future__ import annotations

import re
from typing import Literal, get_args

ApprovalRule = Literal["callback_to_other_number", "flow_change", "escalation", "all_callbacks"]
APPROVAL_RULES: tuple[str, ...] = get_args(ApprovalRule)
# What a bot passes as ``approval=`` to make one action wait, whatever the rules say.
REQUIRED = "required"
DEFAULT_APPROVAL_TIMEOUT = 1800

# The actions each rule covers; callback_to_other_number also compares the numbers.
_KINDS: dict[str, frozenset[str]] = {
    "callback_to_other_number": frozenset({"callback", "escalation"}),
    "flow_change": frozenset({"update_flow", "attach_number"}),
    "escalation": frozenset({"escalation"}),
    "all_callbacks": frozenset({"callback", "escalation"}),
}


def waiting_rule(
    kind: str,
    rules: tuple[str, ...],
    *,
    required: bool = False,
    to: str | None = None,
    caller: str | None = None,
) -> str | None:
    """The rule that makes action ``kind`` wait for a person (``required`` when the bot asked),
    or None when it may go ahead.

    ``to`` and ``caller`` are a callback's number and the caller's ID, for
    ``callback_to_other_number``: a number the caller only spoke is not proof
    that it is theirs.
    """
    if required:
        return REQUIRED
    for rule in rules:
        if kind not in _KINDS.get(rule, frozenset()):
            continue
        if rule == "callback_to_other_number" and same_number(to, caller):
            continue
        return rule
    return None


def same_number(a: str | None, b: str | None) -> bool:
    """Whether two numbers have the same digits (both in E.164, as the dial gate gives them)."""
    if not a or not b:
        return False
    return re.sub(r"\D", "", a) == re.sub(r"\D", "", b)
