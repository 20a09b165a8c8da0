"""Erasing a phone number: the forms it may be written in, and the erase ``agentkit erase`` runs.

The record of an erase (an action of kind ``erase``) keeps the number's country
and last three digits, never the number or a hash of it: there are few enough
phone numbers that any hash of one is reversed by trying them all.
"""

from __future__ import annotations

import re
import uuid
from contextlib import suppress
from typing import Any

import phonenumbers

from agentkit.actions.record import action_key
from agentkit.errors import ConfigError
from agentkit.logs import get_logger
from agentkit.store.base import Store, StoreError
from agentkit.store.privacy import ERASED, MIN_FORM_DIGITS, number_pattern

log = get_logger("agentkit.erasure")

ERASE_BOT = "agentkit"
_WRITTEN = re.compile(r"\+?[0-9][0-9 ().\-/]*")
_MAX_INPUT = 40

_Format = phonenumbers.PhoneNumberFormat


def number_forms(number: str, *, region: str | None = None) -> list[str]:
    """The forms of a phone number agentkit's records may hold, its E.164 form first.

    ``number_forms("+44 20 7946 0999")`` is ``["+442079460999", "442079460999",
    "00442079460999", "02079460999", "+44 20 7946 0999", "020 7946 0999",
    "+44-20-7946-0999"]``. A number written without ``+`` is read in ``region``
    (an ISO 3166 code such as "GB") when given, else as digits after a ``+``.
    Raises ConfigError for input that is not a phone number.
    """
    parsed = _parse(number, region)
    e164 = phonenumbers.format_number(parsed, _Format.E164)
    national = phonenumbers.format_number(parsed, _Format.NATIONAL)
    written = [
        e164,
        e164[1:],
        "00" + e164[1:],
        re.sub(r"\D", "", national),
        phonenumbers.format_number(parsed, _Format.INTERNATIONAL),
        national,
        phonenumbers.format_number(parsed, _Format.RFC3966).removeprefix("tel:"),
    ]
    forms = [form for form in dict.fromkeys(written)
             if sum(char.isdigit() for char in form) >= MIN_FORM_DIGITS]
    if not forms or forms[0] != e164:
        raise ConfigError(
            f"{number!r} is too short to erase by: fewer than {MIN_FORM_DIGITS} digits would "
            "match other numbers too; give the full number with its country code"
        )
    return forms


def _parse(number: str, region: str | None) -> phonenumbers.PhoneNumber:
    text = number.strip()
    if not text:
        raise ConfigError("no number was given: pass the number to erase, e.g. +442079460999")
    if len(text) > _MAX_INPUT or not _WRITTEN.fullmatch(text):
        raise ConfigError(
            f"{number!r} is not a phone number: write it with + and the country code, "
            "e.g. +442079460999 (spaces, dashes, dots and parentheses are fine)"
        )
    candidates = [text]
    if region is None and not text.startswith("+"):
        digits = re.sub(r"\D", "", text)
        candidates.append("+" + (digits[2:] if digits.startswith("00") else digits))
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return parsed
    raise ConfigError(
        f"{number!r} is not a phone number libphonenumber can read"
        + ("" if region or text.startswith("+") else
           " without a country: write it with + and the country code, e.g. +442079460999")
    )


async def erase(
    store: Store, number: str, *, requested_by: str, region: str | None = None
) -> dict[str, int]:
    """Remove what agentkit holds about ``number``, record that it did, and return the counts.

    The counts are by ``events``, ``jobs``, ``bot_runs``, ``llm_cache``, ``actions``
    and ``placed_calls`` (see ``Store.erase_number``). The record is an action of
    kind ``erase`` holding who asked, the counts, and the number's country and
    last three digits only. Raises ConfigError for input that is not a phone
    number, StoreError when the store fails (the record then says ``failed``; run
    the erase again, it is safe to repeat).
    """
    forms = number_forms(number, region=region)
    e164 = forms[0]
    event_id = f"evt_erase_{uuid.uuid4().hex}"
    key = action_key(event_id, ERASE_BOT, "erase")
    detail: dict[str, Any] = {
        "region": phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)),
        "number_ending": e164[-3:],
        "requested_by": requested_by,
    }
    bound = log.bind(key=key, number_ending=detail["number_ending"])
    await store.claim_action(key, event_id=event_id, bot=ERASE_BOT, kind="erase", detail=detail)
    try:
        counts = await store.erase_number(forms)
    except StoreError as exc:
        error = number_pattern(forms).sub(ERASED, str(exc))
        bound.error("erase.failed", error=error)
        with suppress(StoreError):
            await store.settle_action(key, "failed", {"error": error})
        raise
    await store.settle_action(key, "done", {"removed": counts})
    bound.info("erase.done", **counts)
    return counts
