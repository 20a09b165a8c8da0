"""Masking payment data spoken in calls: card numbers, security codes, IBANs.

A caller may read out a card number in a voicemail. Before any text reaches
the model, a chat message or a log line, ``mask_payment_data`` replaces what
looks like payment data with a marker. The rules:

- a card number is 13 to 19 digits, in groups split by spaces, dashes, dots,
  commas or slashes (or spoken: "four one one one", "double one"), starting
  with 2 to 6 (the card networks' first digits), that pass the Luhn check;
  those groups and up to 8 digits read on after them (an expiry, a code) are
  masked, and digits before them ("option 1, 4111 ...") are kept;
- a security code is 3 or 4 digits after CVV, CVC, CID or "security code";
- an IBAN is a country code, two check digits and the country's length of
  letters and digits, passing the mod-97 check.

It errs on the side of masking: a Luhn-valid group of digits that looks like a
card is masked whatever it was (about one in ten such numbers).
"""

from __future__ import annotations

import re

CARD_MARK = "[card number removed]"
CODE_MARK = "[security code removed]"
IBAN_MARK = "[IBAN removed]"

_WORD_DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_REPEAT = r"(?:double|triple)"
# One group: digits, or spoken digits (a repeat word may precede a spoken digit).
_GROUP = rf"(?:\d+|(?:{_REPEAT}\s+)?\b{_DIGIT_WORD}\b)"
_RUN = re.compile(rf"(?<![\d+]){_GROUP}(?:[\s\-.,/]{{1,3}}{_GROUP})*(?!\d)", re.I)
_GROUP_IN_RUN = re.compile(_GROUP, re.I)

_SECURITY_CODE = re.compile(
    r"\b(cvv2?|cvc2?|cid|security\s+code|card\s+verification(?:\s+(?:code|value))?|"
    r"three[\s-]digit\s+code|code\s+on\s+the\s+back)('s)?"
    r"((?:[\s,:=\-]+|\b(?:is|was|it|it's|its|number|code|the|that's)\b)*)"
    rf"((?:\d|\b{_DIGIT_WORD}\b)(?:[\s\-]*(?:\d|\b{_DIGIT_WORD}\b)){{2,3}})(?!\d)",
    re.I,
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){10,30}", re.I)

# IBAN lengths by country (the SWIFT registry); other countries use 15 to 34.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check card numbers carry."""
    if not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """Whether a string is an IBAN of its country's length with a correct mod-97 check."""
    compact = re.sub(r"\s", "", candidate).upper()
    if not compact[:2].isalpha() or not compact[2:4].isdigit() or not compact.isalnum():
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _group_digits(group: str) -> str:
    words = group.lower().split()
    if len(words) == 2:  # "double one", "triple five"
        return _WORD_DIGITS[words[1]] * (2 if words[0] == "double" else 3)
    return _WORD_DIGITS.get(words[0], group) if words else group


def _mask_cards(text: str) -> str:
    def replace(run: re.Match[str]) -> str:
        groups = list(_GROUP_IN_RUN.finditer(run.group(0)))
        digits = [_group_digits(g.group(0)) for g in groups]
        spans: list[tuple[int, int]] = []
        start = 0
        while start < len(groups):
            end = _card_end(digits, start)
            if end is None:
                start += 1
                continue
            # What is read on straight after a card (its expiry, its code) goes with it.
            tail = end
            while tail + 1 < len(groups) and len("".join(digits[end + 1:tail + 2])) <= 8:
                tail += 1
            spans.append((groups[start].start(), groups[tail].end()))
            start = tail + 1
        if not spans:
            return run.group(0)
        text_run, out, last = run.group(0), [], 0
        for begin, finish in spans:
            out += [text_run[last:begin], CARD_MARK]
            last = finish
        out.append(text_run[last:])
        return "".join(out)

    return _RUN.sub(replace, text)


def _card_end(digits: list[str], start: int) -> int | None:
    """The last group of the longest card number starting at group ``start``, if any."""
    if not digits[start] or digits[start][0] not in "23456":
        return None
    found = None
    joined = ""
    for end in range(start, len(digits)):
        joined += digits[end]
        if len(joined) > 19:
            break
        if len(joined) >= 13 and luhn_valid(joined):
            found = end
    return found


def _mask_iban(match: re.Match[str]) -> str:
    """The longest valid IBAN at the start of the match, masked; the rest kept."""
    text = match.group(0)
    ends = [i + 1 for i, char in enumerate(text) if char.isalnum()]
    for end in reversed(ends):
        if iban_valid(text[:end]):
            return IBAN_MARK + text[end:]
    return text


def mask_payment_data(text: str) -> str:
    """``text`` with card numbers, security codes and IBANs replaced by markers."""
    if not text:
        return text
    masked = _IBAN.sub(_mask_iban, text)
    masked = _mask_cards(masked)
    return _SECURITY_CODE.sub(
        lambda m: f"{m.group(1)}{m.group(2) or ''}{m.group(3)}{CODE_MARK}", masked
    )
