"""What retention and erasure do to the rows they keep: pure functions both engines share.

Retention keeps the action log's rows past ``AGENTKIT_RETENTION_DAYS`` with their
details masked (``mask_detail``): payment data masked in every string, and the
caller's words (fields such as ``reason``, ``summary``, ``text``) replaced whole by
a marker. Numbers, ids, outcomes and times stay. Erasing a number replaces each of
its forms with ``ERASED`` wherever it occurs in a detail (``erase_in_detail``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agentkit.redact import mask_payment_data
from agentkit.store.base import StoreError

# Rows changed per transaction: a purge of millions of rows never holds one
# long transaction (nor, on SQLite, the write lock the receiver waits on).
PURGE_BATCH = 1000

# What purge_older_than and erase_number count, by what they removed or changed.
PURGE_COUNTS = ("events", "jobs", "bot_runs", "llm_cache", "model_answers", "joins", "calls",
                "actions_masked", "dial_claims", "approvals", "api_reads")
ERASE_COUNTS = ("events", "jobs", "bot_runs", "llm_cache", "model_answers", "actions",
                "placed_calls", "dial_claims", "open_callbacks", "calls", "approvals",
                "api_reads")

WORDS_REMOVED = "[removed after the retention period]"
ERASED = "[erased]"
# A pending approval naming an erased number is rejected: what it would do is gone.
ERASED_BY = "erasure"
ERASED_REASON = "its number was erased"

# Detail fields that may hold what a caller said, or what a model made of it
# (a caller's name sits in a chat note's title).
WORDS_FIELDS = frozenset({
    "reason", "text", "transcript", "words", "summary", "quote", "message", "note", "title",
})

# Fewer digits than this would match inside unrelated numbers and ids.
MIN_FORM_DIGITS = 6


def mask_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """An action's detail as retention keeps it: caller's words cut, payment data masked."""
    masked = _mask(detail)
    assert isinstance(masked, dict)
    return masked


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: WORDS_REMOVED if key in WORDS_FIELDS and _holds_words(item) else _mask(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask(item) for item in value]
    if isinstance(value, str):
        return mask_payment_data(value)
    return value


def _holds_words(value: Any) -> bool:
    return isinstance(value, (str, list, dict)) and bool(value) and value != WORDS_REMOVED


def number_pattern(forms: Sequence[str]) -> re.Pattern[str]:
    """A pattern matching any of a number's ``forms``, never inside a longer run of digits.

    Raises StoreError for no forms, or a form too short to stand for one number.
    """
    if not forms:
        raise StoreError("no form of the number to erase was given: pass at least its E.164 form")
    for form in forms:
        if sum(char.isdigit() for char in form) < MIN_FORM_DIGITS:
            raise StoreError(
                f"{form!r} is too short to erase by (fewer than {MIN_FORM_DIGITS} digits would "
                "match other numbers): pass the number's forms from agentkit.erasure.number_forms"
            )
    ordered = sorted(set(forms), key=len, reverse=True)
    return re.compile(r"(?<!\d)(?:" + "|".join(map(re.escape, ordered)) + r")(?!\d)")


def erase_in_detail(detail: dict[str, Any], pattern: re.Pattern[str]) -> dict[str, Any]:
    """``detail`` with the number replaced by ``ERASED``, and masked as retention masks it."""
    erased = _erase(detail, pattern)
    assert isinstance(erased, dict)
    return mask_detail(erased)


def _erase(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, dict):
        return {_erase(key, pattern): _erase(item, pattern) for key, item in value.items()}
    if isinstance(value, list):
        return [_erase(item, pattern) for item in value]
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, int) and not isinstance(value, bool) and pattern.fullmatch(str(value)):
        return ERASED
    return value


def mentions(text: str | bytes, pattern: re.Pattern[str]) -> bool:
    """Whether ``text`` (an event body's bytes, a detail's or an answer's text) holds the number."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return pattern.search(text) is not None
