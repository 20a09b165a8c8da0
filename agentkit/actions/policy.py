"""The dial policy: which numbers a bot may call.

A transcript is untrusted input, and so is any number a model reads out of one.
``DialPolicy.check`` decides, without I/O, whether a number may be dialled and
says why not; see docs/dial-policy.md.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from agentkit.errors import ConfigError
from agentkit.odygy.models import E164_PATTERN

# What libphonenumber calls each type, lower-cased, by its numeric value.
NUMBER_TYPES: dict[int, str] = {
    value: name.lower()
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}
_LABELS = {
    "fixed_line": "fixed-line", "fixed_line_or_mobile": "fixed-line or mobile",
    "toll_free": "toll-free", "premium_rate": "premium-rate", "shared_cost": "shared-cost",
    "voip": "VoIP", "personal_number": "personal", "uan": "UAN (universal access)",
    "voicemail": "voicemail-access", "unknown": "unknown-type",
}
REFUSED_TYPES = frozenset(
    {"premium_rate", "shared_cost", "uan", "personal_number", "pager", "voicemail", "unknown"}
)
# Longer than any E.164 number with generous spacing: not worth parsing.
MAX_INPUT_LENGTH = 32
NON_GEOGRAPHIC = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY  # "001": +800, +881, ...
# ASCII digits, with spaces, dashes, dots and parentheses between them; "+" only first.
_SHAPE = re.compile(r"^\+?[0-9 .\-()]+$")


@dataclass(frozen=True)
class PolicyDecision:
    """Whether a number may be dialled, and why; ``number`` is its E.164 form when known."""

    allowed: bool
    reason: str
    number: str | None = None
    region: str | None = None
    number_type: str | None = None


@dataclass(frozen=True)
class DialPolicy:
    """Which numbers a bot may call, and how often.

    ``allowed_countries`` are ISO 3166 region codes as libphonenumber uses them
    (GB, RO; Guernsey, Jersey and the Isle of Man are GG, JE and IM; "001" for
    non-geographic numbers such as +800). They narrow the deployment's
    countries (AGENTKIT_DIAL_COUNTRIES, by default the account's country) and
    never widen them; None keeps the deployment's. ``refused_types`` are
    libphonenumber number types, lower-cased (see ``NUMBER_TYPES``).
    """

    allowed_countries: frozenset[str] | None = None
    max_calls_per_number_per_day: int = 3
    refused_types: frozenset[str] = REFUSED_TYPES

    def __post_init__(self) -> None:
        if self.allowed_countries is not None:
            unknown = sorted(c for c in self.allowed_countries
                             if c not in phonenumbers.SUPPORTED_REGIONS and c != NON_GEOGRAPHIC)
            if unknown:
                raise ConfigError(
                    f"DialPolicy.allowed_countries has unknown region codes {unknown}: "
                    "use upper-case ISO 3166 codes such as frozenset({'GB', 'RO'})"
                )
        unknown_types = sorted(self.refused_types - set(NUMBER_TYPES.values()))
        if unknown_types:
            raise ConfigError(
                f"DialPolicy.refused_types has unknown types {unknown_types}: "
                f"choose from {sorted(NUMBER_TYPES.values())}"
            )
        if self.max_calls_per_number_per_day < 0:
            raise ConfigError("DialPolicy.max_calls_per_number_per_day must be 0 or more")

    def countries(self, deployment: frozenset[str]) -> frozenset[str]:
        """The countries this bot may call: the deployment's, narrowed by its own list."""
        if self.allowed_countries is None:
            return deployment
        return self.allowed_countries & deployment

    def check(
        self,
        number: str,
        *,
        account_country: str,
        countries: frozenset[str] | None = None,
        caller_number: str | None = None,
        placed_today: int = 0,
        own_numbers: Collection[str] = (),
    ) -> PolicyDecision:
        """Decide whether ``number`` may be dialled now.

        ``account_country`` is the account's region code; ``countries`` the
        deployment's allowed regions (None: the account's country only), which
        this policy's ``allowed_countries`` narrows. ``caller_number``, the
        number of whoever called in, allows nothing: it only helps to recognise
        their local emergency numbers and short codes. ``placed_today`` is how
        many calls were already placed to the number today; ``own_numbers``
        the account's numbers and its users' caller IDs, never dialled.
        """
        if account_country not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"account_country {account_country!r} is not a region code libphonenumber "
                "knows: use an upper-case ISO 3166 code such as 'GB' or 'RO'"
            )
        caller_region = _region_of(caller_number)
        if not isinstance(number, str) or not number.strip():
            return _refuse("no number was given")
        if len(number) > MAX_INPUT_LENGTH:
            return _refuse(f"{len(number)} characters is too long for a phone number")
        if not _SHAPE.match(number):
            return _refuse(
                f"{number!r} is not an E.164 number: only a leading +, the digits 0-9, "
                "and spaces, dashes, dots or parentheses between them are accepted"
            )
        compact = re.sub(r"[ .\-()]", "", number)
        digits = compact.lstrip("+")
        regions = {account_country, *([caller_region] if caller_region else [])}

        parsed = _parse(compact)
        # A valid full number may begin like an emergency number (Riyadh's 011...):
        # only an invalid one is tested for leading to an emergency service.
        full = parsed is not None and phonenumbers.is_valid_number(parsed)
        emergency = _emergency_region(digits, parsed, regions, prefix=not full)
        if emergency:
            return _refuse(
                f"{number!r} is an emergency number in {emergency}; a bot never dials one"
            )
        if not full and _is_short_code(digits, parsed, regions):
            return _refuse(f"{number!r} is a short code, not a full E.164 number")
        if not E164_PATTERN.fullmatch(compact):
            return _refuse(
                f"{number!r} is not an E.164 number: write + and the country code, "
                "e.g. +442079460000"
            )
        if parsed is None:
            return _refuse(f"{number!r} is not a phone number libphonenumber can read")
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if e164 != compact:
            return _refuse(
                f"{number!r} is not in E.164 form (libphonenumber reads it as {e164}: a "
                "trunk prefix after the country code?); refusing rather than guessing",
            )
        if not phonenumbers.is_valid_number(parsed):
            return _refuse(
                f"{e164} is not a valid number according to libphonenumber "
                "(unassigned range, reserved for drama, or wrong length)",
                number=e164,
            )
        region = phonenumbers.region_code_for_number(parsed)
        kind = NUMBER_TYPES.get(phonenumbers.number_type(parsed), "unknown")
        found = {"number": e164, "region": region, "number_type": kind}
        if kind in self.refused_types:
            return _refuse(f"{e164} is a {_label(kind)} number, which bots may not call", **found)
        if e164 in own_numbers:
            return _refuse(
                f"{e164} is one of the account's own numbers (or a user's caller ID); "
                "a bot never calls the account itself",
                **found,
            )
        allowed = self.countries(countries if countries is not None
                                 else frozenset({account_country}))
        if region not in allowed:
            where = ("no country (a non-geographic number)" if region == NON_GEOGRAPHIC
                     else region)
            return _refuse(
                f"{e164} is in {where}, outside the countries allowed "
                f"({', '.join(sorted(allowed)) or 'none'}; AGENTKIT_DIAL_COUNTRIES and the "
                "bot's allowed_countries)",
                **found,
            )
        if placed_today >= self.max_calls_per_number_per_day:
            return _refuse(
                f"{e164} was already called {placed_today} times today "
                f"(limit {self.max_calls_per_number_per_day})",
                **found,
            )
        return PolicyDecision(
            allowed=True,
            reason=f"{e164} is a {_label(kind)} number in {region}, call "
                   f"{placed_today + 1} of {self.max_calls_per_number_per_day} today",
            number=e164,
            region=region,
            number_type=kind,
        )


def to_e164(text: str, *, region: str | None = None) -> str:
    """``text`` as an E.164 number: any spacing, a 00 prefix, or a national form in ``region``.

    Raises ConfigError, saying how to write it, for anything that cannot be a
    phone number. Validity (an assigned range) is the policy's question, not this one's.
    """
    cleaned = text.strip() if isinstance(text, str) else ""
    how = "write it with + and the country code, e.g. +44 20 7946 0000"
    if not cleaned or len(cleaned) > MAX_INPUT_LENGTH or not _SHAPE.match(cleaned):
        raise ConfigError(f"{text!r} is not a phone number: {how}")
    compact = re.sub(r"[ .\-()]", "", cleaned)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not compact.startswith("+") and region is None:
        raise ConfigError(f"{text!r} has no country code: {how}")
    try:
        parsed = phonenumbers.parse(compact, None if compact.startswith("+") else region)
    except phonenumbers.NumberParseException:
        raise ConfigError(f"{text!r} is not a phone number: {how}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ConfigError(f"{text!r} has the wrong length for a phone number: {how}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _refuse(
    reason: str, *, number: str | None = None, region: str | None = None,
    number_type: str | None = None,
) -> PolicyDecision:
    return PolicyDecision(False, reason, number, region, number_type)


def _parse(compact: str) -> phonenumbers.PhoneNumber | None:
    if not compact.startswith("+"):
        return None
    try:
        return phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        return None


def _region_of(number: str | None) -> str | None:
    parsed = _parse(number.strip()) if number else None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.region_code_for_number(parsed)


def _local_forms(
    digits: str, parsed: phonenumbers.PhoneNumber | None, regions: set[str]
) -> list[tuple[str, str]]:
    """The digits as dialled in each region they may be meant for: (digits, region)."""
    forms: list[tuple[str, str]] = []
    if parsed is not None:
        national = phonenumbers.national_significant_number(parsed)
        own = phonenumbers.region_codes_for_country_code(parsed.country_code or 0)
        forms.extend((national, region) for region in own)
    if len(digits) <= 6:
        forms.extend((digits, region) for region in sorted(regions))
    return forms


def _emergency_region(
    digits: str, parsed: phonenumbers.PhoneNumber | None, regions: set[str], *, prefix: bool
) -> str | None:
    """Where the digits are (or, with ``prefix``, lead to) an emergency number; None if nowhere."""
    test = (shortnumberinfo.connects_to_emergency_number if prefix
            else shortnumberinfo.is_emergency_number)
    for local, region in _local_forms(digits, parsed, regions):
        if test(local, region):
            return region
    if len(digits) > 6:
        return None
    # Short digits that are an emergency number elsewhere (911 for a GB account).
    found = sorted(r for r in shortnumberinfo.SUPPORTED_SHORT_REGIONS
                   if shortnumberinfo.is_emergency_number(digits, r))
    if not found:
        return None
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return ", ".join(found[:3]) + more


def _label(kind: str) -> str:
    return _LABELS.get(kind, kind)


def _is_short_code(
    digits: str, parsed: phonenumbers.PhoneNumber | None, regions: set[str]
) -> bool:
    """Whether the digits, as dialled locally or after their country code, are a short code."""
    return any(_valid_short(local, region)
               for local, region in _local_forms(digits, parsed, regions))


def _valid_short(digits: str, region: str) -> bool:
    try:
        return shortnumberinfo.is_valid_short_number_for_region(
            phonenumbers.parse(digits, region), region
        )
    except phonenumbers.NumberParseException:
        return False
