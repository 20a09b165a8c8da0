"""Masking payment data spoken in calls: card numbers, security codes, expiry dates, IBANs.

A caller may read out a card number in a voicemail. Before any text reaches
the model, the answer cache, a chat message or a log line, ``mask_payment_data``
replaces what looks like payment data with a marker. The rules:

- a card number is 13 to 19 digits, in groups split by spaces, dashes, dots,
  commas, slashes or a hesitation ("uh", "um"), starting with 2 to 6 (the card
  networks' first digits), that pass the Luhn check. Groups may be spoken: digit
  by digit ("four one one one", "oh", "double one"), in pairs ("forty nine
  twenty nine", "nineteen", "oh five"; "forty, nine" is two groups), with
  hundreds ("forty one hundred"), or mixed with written digits. Those groups and
  up to 8 digits read on after them (an expiry, a code) are masked; digits
  before them ("option 1, 4111 ...") are kept;
- a security code is 3 or 4 digits, written or spoken, just after its name
  (CVV, CVC, CCV, CSC, CID, "security code", "card verification value",
  "three-digit code", "the (last) three digits on the back", "the code on the
  back") or just before one of the first ("739 is the CVV"); "verification code"
  and "the numbers on the back" count only next to a card (a card number, or
  the word card shortly before); a code that runs on into a longer number
  (123-45-6789) is none;
- an expiry date (``MM/YY``, ``MMYY``, ``MM YYYY``, "oh nine twenty seven",
  "September 2027") is masked after an expiry word (expires, expiry, exp,
  valid until, valid thru, good thru) and, written with a slash, shortly after
  a masked card number; a full date (``12/05/2025``) is not an expiry;
- an IBAN is a known country's code, two check digits and that country's
  length of letters and digits, spaced or dashed, passing the mod-97 check.

``mask_segments`` masks a transcript's segments as one text joined by single
spaces, so a card or a code read across segments is found exactly as if it had
been said in one; each segment the payment data touched gets the marker in
place of its part. ``mask_json_answer`` masks the string values of a model's
JSON answer, each read after its key ("cvv": "739").

It errs on the side of masking: a Luhn-valid group of digits that looks like a
card is masked whatever it was (about one in ten such numbers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

CARD_MARK = "[card number removed]"
CODE_MARK = "[security code removed]"
EXPIRY_MARK = "[expiry date removed]"
IBAN_MARK = "[IBAN removed]"

_ONES = {
    "zero": 0, "oh": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}
_NUMBER_WORD = "|".join(sorted([*_ONES, *_TEENS, *_TENS], key=len, reverse=True))
# A number said as a count ("three digits", "3-digit") belongs to a phrase, not to a number.
_UNIT = (
    rf"(?:\d+|\b(?:{_NUMBER_WORD}|double|triple|hundred(?:\s+and)?)\b)"
    r"(?![\s-]*(?:digits?|numbers?)\b)"
)
# A hesitation or a spoken slash between groups does not end a number.
_PAUSES = frozenset({"uh", "um", "umm", "er", "erm", "ah", "hmm", "slash"})
_SEP = rf"[\s\-.,/]{{1,3}}(?:(?:{'|'.join(sorted(_PAUSES))})[\s\-.,/]{{1,3}})?"
_RUN = re.compile(rf"(?<![\d+]){_UNIT}(?:{_SEP}{_UNIT})*(?!\d)", re.I)
_TOKEN = re.compile(r"\d+|[a-z]+", re.I)

# Cheap first looks over the lower-cased text, each starting with a character class so that
# the regex engine skims: most log lines have no payment data, and they must stay fast.


def _any_word(words: Sequence[str]) -> re.Pattern[str]:
    """A regex for any of ``words`` as a whole lower-case word, that skims to first letters."""
    firsts = "".join(sorted({w[0] for w in words}))
    tails = "|".join(f"(?<={w[0]}){w[1:]}" for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"[{firsts}](?<![a-z0-9_][{firsts}])(?:{tails})(?![a-z0-9_])")


_ANY_NUMBER_WORD = _any_word([*_ONES, *_TEENS, *_TENS, "hundred", "double", "triple"])
_ANY_PAUSE = _any_word(sorted(_PAUSES))
_ANY_DIGIT = re.compile(r"[0-9]")
# 13 digits with at most 3 separators between each two take 13 characters at least.
_LONG_NUMBER = re.compile(r"[0-9][0-9\s\-.,/]{12}")
_ANY_CODE_NAME = re.compile(r"cv|ccv|csc|cid|sec|verification|digit|on the back")
_ANY_EXPIRY_WORD = re.compile(r"exp|valid|good")
_ANY_IBAN = re.compile(r"[0-9](?<=[a-z]{2}[0-9])[0-9]")
_NO_DIGITS = str.maketrans("", "", "0123456789")

_FILLER_WORDS = (
    r"is|was|are|were|it|it['\u2019]s|its|that['\u2019]s|thats|be|will|would|should|number|numbers|"
    r"code|digits|the|my|of|on|at|back|card|um|uh|er|erm|ah|so|then|just|okay|ok|yeah|"
    r"yes|right|and|reads|says|please|here|date|in|front|which|end"
)
_FILLER = re.compile(rf"(?:[\s,:;=\-.…]+|['\u2019]s\b|\b(?:{_FILLER_WORDS})\b){{0,16}}", re.I)
_CODE_NAME = re.compile(
    r"\b(?:"
    r"(?P<name>cvv2?|cvc2?|cv2|ccv|cvn|csc|cid|sec\s+code"
    r"|(?<!social\s)security\s+(?:code|number|digits)"
    r"|card\s+verification(?:\s+(?:code|value|number))?"
    r"|(?:three|four|3|4)[\s-]+digit\s+(?:security\s+)?(?:code|number)"
    r"|(?:(?:last|final)\s+)?(?:three|four|3|4)\s+(?:digits|numbers)\s+on\s+the\s+back"
    r"|code\s+on\s+the\s+back)"
    r"|(?P<near_card>verification\s+(?:code|value|number)"
    r"|(?:number|numbers|digits)\s+on\s+the\s+back)"
    r")\b",
    re.I,
)
_BEFORE_CODE = re.compile(
    r"[\s,]*(?:(?:is|was|that['\u2019]s|being)\s+)?(?:(?:the|my|your)\s+)?\Z", re.I
)
_CARD_WORD = re.compile(r"\b(?:card|visa|mastercard|amex|debit|credit)\b", re.I)
_EXPIRY_WORD = re.compile(
    r"\b(?:exp(?:iry|ires|ired|iring|iration)?|valid\s+(?:until|till|til|thru|through|to|from)"
    r"|good\s+(?:thru|through|until|till))\b\.?",
    re.I,
)
_MONTH = re.compile(
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?[\s,]+(?:of\s+)?",
    re.I,
)
_SLASH_DATE = re.compile(r"(?<![\d/])(?:0?[1-9]|1[0-2])\s?/\s?(?:20)?\d\d(?![\d/])")
_CLAIMED = "\x00"
# How near is near, in characters: a slash expiry after a card, a code before its name;
# and how far back a card word makes "verification code" a card's.
_NEAR = 60
_CARD_CONTEXT = 150

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[\s\-]?[A-Z0-9]){10,30}", re.I)

# IBAN lengths by country (the SWIFT registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

Span = tuple[int, int, str]
Unit = tuple[int, int, str]


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
    """Whether a string is an IBAN of a known country's length with a correct mod-97 check."""
    compact = re.sub(r"[\s\-]", "", candidate).upper()
    if not compact[2:4].isdigit() or not compact.isalnum() or not compact.isascii():
        return False
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def mask_payment_data(text: str) -> str:
    """``text`` with card numbers, security codes, expiry dates and IBANs replaced by markers."""
    spans = _find(text) if text else []
    if not spans:
        return text
    out, last = [], 0
    for start, end, mark in spans:
        out += [text[last:start], mark]
        last = end
    out.append(text[last:])
    return "".join(out)


def mask_segments(texts: Sequence[str]) -> list[str]:
    """The texts masked as one (joined by spaces), each with the markers for its own part.

    A card number read over three segments is masked in all three: each
    segment that held some of its digits has the marker in place of them.
    """
    cores = [t.strip() for t in texts]
    joined = " ".join(cores)
    spans = _find(joined)
    if not spans:
        return list(texts)
    out: list[str] = []
    begin, first = 0, 0
    for text, core in zip(texts, cores, strict=True):
        end = begin + len(core)
        while first < len(spans) and spans[first][1] <= begin:
            first += 1
        pieces, cursor = [], begin
        for start, finish, mark in spans[first:]:
            if start >= end:
                break
            lo, hi = max(start, begin), min(finish, end)
            if any(c.isalnum() for c in joined[lo:hi]):
                pieces += [joined[cursor:lo], mark]
                cursor = hi
        if cursor == begin:
            out.append(text)
        else:
            pieces.append(joined[cursor:end])
            lead = len(text) - len(text.lstrip())
            out.append(text[:lead] + "".join(pieces) + text[lead + len(core):])
        begin = end + 1
    return out


def mask_json_answer(text: str) -> str:
    """A model's answer with payment data masked in each string of its JSON, each read after
    its key; an answer that is not JSON is masked as text, and one with nothing to mask is
    returned as it came."""
    try:
        data = json.loads(text)
    except ValueError:
        return mask_payment_data(text)
    masked = _mask_value(data, "")
    return text if masked == data else json.dumps(masked, ensure_ascii=False)


def _mask_value(value: Any, label: str) -> Any:
    if isinstance(value, str):
        return mask_segments([label, value])[1] if label else mask_payment_data(value)
    if isinstance(value, int) and not isinstance(value, bool):
        masked = _mask_value(str(value), label)
        return value if masked == str(value) else masked
    if isinstance(value, list):
        return [_mask_value(v, label) for v in value]
    if isinstance(value, dict):
        return {mask_payment_data(k): _mask_value(v, _label(k)) for k, v in value.items()}
    return value


def _label(key: str) -> str:
    """A JSON key as words followed by a colon: ``securityCode`` -> ``security Code:``."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])|[_\-]", " ", key)
    return f"{words}:" if words.strip() else ""


def _find(text: str) -> list[Span]:
    """Every piece of payment data in ``text``: (start, end, marker), in order, apart."""
    low = text.lower()
    digits = _ANY_DIGIT.search(low) is not None
    words = -1 if digits else len(_ANY_NUMBER_WORD.findall(low))
    if not words:
        return []
    spans = _ibans(text) if digits and _ANY_IBAN.search(low) else []
    work = _claim(text, spans)
    cards = _cards(work) if _may_hold_card(low, words) else []
    spans += cards
    work = _claim(work, cards)
    if _ANY_CODE_NAME.search(low):
        codes = _codes(work, bool(cards))
        spans += codes
        work = _claim(work, codes)
    if cards or _ANY_EXPIRY_WORD.search(low):
        spans += _expiries(work, cards)
    return sorted(spans)


def _may_hold_card(low: str, words: int) -> bool:
    """Whether ``low`` has room for a card: 13 digits, written, spoken or both (a spoken
    word stands for 2 digits at most); ``words`` is -1 when not counted yet."""
    if _LONG_NUMBER.search(low):
        return True
    if words < 0:
        words = len(_ANY_NUMBER_WORD.findall(low))
    if not words and not _ANY_PAUSE.search(low):
        return False
    return len(low) - len(low.translate(_NO_DIGITS)) + 2 * words >= 13


def _claim(text: str, spans: Sequence[Span]) -> str:
    """``text`` with ``spans`` blanked out (same length), so later rules neither see nor
    straddle them."""
    if not spans:
        return text
    out, last = [], 0
    for start, end, _ in sorted(spans):
        out += [text[last:start], _CLAIMED * (end - start)]
        last = end
    out.append(text[last:])
    return "".join(out)


def _ibans(text: str) -> list[Span]:
    spans = []
    for match in _IBAN.finditer(text):
        candidate = match.group(0)
        ends = [i + 1 for i, char in enumerate(candidate) if char.isalnum()]
        for end in reversed(ends):
            if iban_valid(candidate[:end]):
                spans.append((match.start(), match.start() + end, IBAN_MARK))
                break
    return spans


def _units(run: re.Match[str]) -> list[list[Unit]]:
    """The number groups of a run, as digits with their place in the text; a stray word
    ("hundred" on its own, "double" before nothing) splits the run. "forty nine" is 49,
    unless a comma or a full stop parts the two words."""
    base = run.start()
    tokens = [(base + m.start(), base + m.end(), m.group(0).lower())
              for m in _TOKEN.finditer(run.group(0))]
    parts: list[list[Unit]] = [[]]
    i = 0
    while i < len(tokens):
        start, end, word = tokens[i]
        i += 1
        if word in _PAUSES:
            continue
        if word.isdigit():
            parts[-1].append((start, end, word))
            continue
        if word in ("double", "triple") and i < len(tokens):
            nxt = tokens[i][2]
            digit = str(_ONES[nxt]) if nxt in _ONES else nxt if len(nxt) == 1 else None
            if digit is not None and digit.isdigit():
                parts[-1].append((start, tokens[i][1], digit * (2 if word == "double" else 3)))
                i += 1
                continue
        if word in _TENS:
            value = _TENS[word]
            gap = run.string[end:tokens[i][0]] if i < len(tokens) else ""
            if _ONES.get(tokens[i][2] if gap else "", 0) > 0 and (
                gap == "-" or gap.isspace()
            ):
                value, end, i = value + _ONES[tokens[i][2]], tokens[i][1], i + 1
        elif word in _TEENS:
            value = _TEENS[word]
        elif word in _ONES:
            value = _ONES[word]
        else:
            parts.append([])
            continue
        digits = str(value)
        if value and i < len(tokens) and tokens[i][2] == "hundred":
            value, end, i = value * 100, tokens[i][1], i + 1
            if i < len(tokens) and tokens[i][2] == "and":
                i += 1
            rest, rest_end, i = _below_hundred(tokens, i)
            value, end = value + rest, rest_end or end
            digits = str(value)
        parts[-1].append((start, end, digits))
    return [p for p in parts if p]


def _below_hundred(tokens: Sequence[tuple[int, int, str]], i: int) -> tuple[int, int, int]:
    """The 1 to 99 said at ``tokens[i]``, its end and the next index; (0, 0, i) if none."""
    if i >= len(tokens):
        return 0, 0, i
    word, end = tokens[i][2], tokens[i][1]
    if word in _TENS:
        if i + 1 < len(tokens) and _ONES.get(tokens[i + 1][2], 0) > 0:
            return _TENS[word] + _ONES[tokens[i + 1][2]], tokens[i + 1][1], i + 2
        return _TENS[word], end, i + 1
    if word in _TEENS:
        return _TEENS[word], end, i + 1
    if _ONES.get(word, 0) > 0:
        return _ONES[word], end, i + 1
    return 0, 0, i


def _cards(text: str) -> list[Span]:
    spans: list[Span] = []
    for run in _RUN.finditer(text):
        if len(run.group(0)) < 13:
            continue  # too short to hold 13 digits, written or spoken
        for units in _units(run):
            digits = [u[2] for u in units]
            start = 0
            while start < len(units):
                end = _card_end(digits, start)
                if end is None:
                    start += 1
                    continue
                # What is read on straight after a card (its expiry, its code) goes with it.
                tail = end
                while tail + 1 < len(units) and len("".join(digits[end + 1:tail + 2])) <= 8:
                    tail += 1
                spans.append((units[start][0], units[tail][1], CARD_MARK))
                start = tail + 1
    return _merged(sorted(spans))


def _merged(spans: list[Span]) -> list[Span]:
    """Sorted spans with those that overlap made one."""
    out: list[Span] = []
    for span in spans:
        if out and span[0] < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], span[1]), out[-1][2])
        else:
            out.append(span)
    return out


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


def _codes(text: str, card_found: bool) -> list[Span]:
    spans: list[Span] = []
    for name in _CODE_NAME.finditer(text):
        filler = _FILLER.match(text, name.end())
        after = filler.end() if filler else name.end()
        if name.group("near_card") and not (
            card_found
            or _CARD_WORD.search(text, max(0, name.start() - _CARD_CONTEXT), name.start())
            or (filler and "card" in filler.group(0).lower())
        ):
            continue
        run = _RUN.match(text, after)
        span = _code_at_start(run) if run else None
        if span is None and "back" not in name.group(0).lower():
            # "418 is the code on the back" may go on "... of the parcel": only names say it.
            span = _code_before(text, name.start())
        if span is not None and all(span[1] <= s or span[0] >= e for s, e, _ in spans):
            spans.append(span)
    return spans


def _code_at_start(run: re.Match[str]) -> Span | None:
    """The code at the start of a run: all of it when it is 3 or 4 digits, else its first
    3 (or 4) digits when they end a group and what follows is said apart (an expiry)."""
    units = _units(run)
    if not units or units[0][0][0] != run.start():
        return None
    group = units[0]
    sizes = [len(u[2]) for u in group]
    counts = [sum(sizes[:k]) for k in range(1, len(group) + 1)]
    if 3 <= counts[-1] <= 4:
        return run.start(), group[-1][1], CODE_MARK
    taken = next((k + 1 for want in (3, 4) for k, c in enumerate(counts) if c == want), 0)
    if not taken or not re.search(r"\s", run.string[group[taken - 1][1]:group[taken][0]]):
        return None  # the start of a longer number (123-45-6789), not a code
    return run.start(), group[taken - 1][1], CODE_MARK


def _code_before(text: str, name_start: int) -> Span | None:
    """3 or 4 digits said just before a code's name ("739 is the CVV")."""
    window_start = max(0, name_start - _NEAR)
    window = text[window_start:name_start]
    runs = list(_RUN.finditer(window))
    if not runs or not _BEFORE_CODE.match(window, runs[-1].end()):
        return None
    units = _units(runs[-1])
    if len(units) != 1 or not 3 <= sum(len(u[2]) for u in units[0]) <= 4:
        return None
    return window_start + units[0][0][0], window_start + units[0][-1][1], CODE_MARK


def _expiries(text: str, cards: Sequence[Span]) -> list[Span]:
    spans: list[Span] = []
    for word in _EXPIRY_WORD.finditer(text):
        filler = _FILLER.match(text, word.end())
        at = filler.end() if filler else word.end()
        month = _MONTH.match(text, at)
        if month:
            run = _RUN.match(text, month.end())
            units = _units(run) if run else []
            if units and units[0][0][0] == month.end():
                year = "".join(u[2] for u in units[0])
                if len(year) == 2 or (len(year) == 4 and year.startswith("20")):
                    spans.append((at, units[0][-1][1], EXPIRY_MARK))
            continue
        run = _RUN.match(text, at)
        if run:
            spans += _expiry_in(text, run)
    for _, card_end, _ in cards:
        date = _SLASH_DATE.search(text, card_end, card_end + _NEAR)
        if date:
            spans.append((date.start(), date.end(), EXPIRY_MARK))
    spans.sort()
    return [s for i, s in enumerate(spans) if i == 0 or s[0] >= spans[i - 1][1]]


def _expiry_in(text: str, run: re.Match[str]) -> list[Span]:
    """The expiry at the start of a run, and a code read on straight after it."""
    parts = _units(run)
    if not parts or parts[0][0][0] != run.start():
        return []
    units = parts[0]
    found = None
    for k in range(1, min(4, len(units)) + 1):
        if _expiry_digits("".join(u[2] for u in units[:k])):
            found = k
    if found is None:
        return []
    rest = units[found:]
    if rest and text[units[found - 1][1]:rest[0][0]] in ("/", "-", "."):
        return []  # a full date, 12/05/2025
    spans = [(units[0][0], units[found - 1][1], EXPIRY_MARK)]
    if rest and 3 <= sum(len(u[2]) for u in rest) <= 4:
        spans.append((rest[0][0], rest[-1][1], CODE_MARK))
    return spans


def _expiry_digits(digits: str) -> bool:
    """Whether digits read as a month and a year: M YY, MM YY, M 20YY or MM 20YY."""
    size = len(digits)
    if size in (3, 5):
        return digits[0] != "0" and (size == 3 or digits[1:3] == "20")
    if size in (4, 6):
        return 1 <= int(digits[:2]) <= 12 and (size == 4 or digits[2:4] == "20")
    return False
