"""The dial policy: a number from a transcript is dialled only if the policy allows it."""

from __future__ import annotations

import re

import pytest

from agentkit.actions.policy import DialPolicy, PolicyDecision
from agentkit.errors import ConfigError

POLICY = DialPolicy()
LONDON_DRAMA = "+442079460000"  # Ofcom's drama range that libphonenumber accepts
RO_MOBILE = "+40722123456"


def check(
    number: str,
    *,
    policy: DialPolicy = POLICY,
    account_country: str = "GB",
    countries: frozenset[str] | None = None,
    caller_number: str | None = None,
    placed_today: int = 0,
    own_numbers: frozenset[str] = frozenset(),
) -> PolicyDecision:
    return policy.check(number, account_country=account_country, countries=countries,
                        caller_number=caller_number, placed_today=placed_today,
                        own_numbers=own_numbers)


def test_landline_in_account_country_allowed() -> None:
    """A valid fixed-line number in the account's country is allowed, normalised to E.164."""
    decision = check(LONDON_DRAMA)
    assert decision.allowed
    assert (decision.number, decision.region, decision.number_type) == (
        LONDON_DRAMA, "GB", "fixed_line")


def test_callers_country_is_not_allowed_implicitly() -> None:
    """A caller's country is no reason to call it: caller ID is trivial to spoof (IRSF)."""
    decision = check(RO_MOBILE, caller_number="+40264000111")
    assert not decision.allowed
    assert "outside the countries allowed (GB" in decision.reason


@pytest.mark.parametrize("number", ["+252611234567", "+5352345678", "+37120012345"])
def test_revenue_share_destinations_refused_by_default(number: str) -> None:
    """Somalia, Cuba and Latvia callers asking for a call back are not called (toll fraud)."""
    decision = check(number, caller_number=number)
    assert not decision.allowed
    assert decision.region in {"SO", "CU", "LV"}


def test_deployment_countries_allow_a_mobile_abroad() -> None:
    """A country in the deployment's list (AGENTKIT_DIAL_COUNTRIES) is allowed."""
    decision = check(RO_MOBILE, countries=frozenset({"GB", "RO"}))
    assert decision.allowed
    assert decision.number_type == "mobile"


def test_account_own_numbers_are_refused() -> None:
    """The account's own numbers and users' caller IDs are never dialled, however written."""
    decision = check("+44 20 7946 0123", own_numbers=frozenset({"+442079460123"}))
    assert not decision.allowed
    assert "account's own numbers" in decision.reason
    assert decision.number == "+442079460123"


def test_spaces_dashes_dots_and_parentheses_are_normalised() -> None:
    """Visual separators in an international number are dropped."""
    for written in ("+44 20 7946 0000", "+44-20-7946-0000", "+44 (20) 7946.0000"):
        assert check(written).number == LONDON_DRAMA


def test_toll_free_allowed() -> None:
    """A toll-free number costs the account nothing extra and is allowed."""
    assert check("+448001234567").number_type == "toll_free"
    assert check("+448001234567").allowed


def test_drama_number_that_libphonenumber_rejects_is_refused() -> None:
    """+441632960000 (CONTRACT section 4) is refused as invalid."""
    decision = check("+441632960000")
    assert not decision.allowed
    assert "not a valid number" in decision.reason


@pytest.mark.parametrize(
    ("number", "kind", "words"),
    [
        ("+1 900 555 0100", "premium_rate", "premium-rate"),
        ("+448712345678", "premium_rate", "premium-rate"),  # 0871: libphonenumber says premium
        ("+447012345678", "personal_number", "personal"),
        ("+443001234567", "uan", "UAN"),
        ("+447600123456", "pager", "pager"),
    ],
)
def test_costly_or_indirect_number_types_refused(number: str, kind: str, words: str) -> None:
    """Premium-rate, personal, UAN and pager numbers are refused, naming the type."""
    decision = check(number, countries=frozenset({"GB", "US"}))
    assert not decision.allowed
    assert decision.number_type == kind
    assert words in decision.reason


@pytest.mark.parametrize("number", ["112", "+112", "911", "+1911", "+1 911 123", "999", "+44999",
                                    "+33112"])
def test_emergency_numbers_refused(number: str) -> None:
    """Emergency numbers, bare or dressed as E.164, are refused as emergency numbers."""
    decision = check(number)
    assert not decision.allowed
    assert "emergency number" in decision.reason


@pytest.mark.parametrize("number", ["118118", "+44118118", "+44 100"])
def test_short_codes_refused(number: str) -> None:
    """Short codes, bare or after a country code, are refused as short codes."""
    decision = check(number)
    assert not decision.allowed
    assert "short code" in decision.reason


def test_number_in_another_country_refused() -> None:
    """A French mobile is refused for a GB account whose caller is also in GB."""
    decision = check("+33612345678", caller_number=LONDON_DRAMA)
    assert not decision.allowed
    assert "FR" in decision.reason
    assert decision.region == "FR"


def test_caribbean_number_behind_plus_one_refused_for_us_account() -> None:
    """+1 876 is Jamaica, not the US: the country is judged by region, not calling code."""
    decision = check("+1 876 555 1234", account_country="US", caller_number="+12125551234")
    assert not decision.allowed
    assert decision.region == "JM"


def test_bot_list_narrows_the_deployments() -> None:
    """A bot's allowed_countries keep only the deployment's countries it names."""
    policy = DialPolicy(allowed_countries=frozenset({"RO"}))
    both = frozenset({"GB", "RO"})
    assert check(RO_MOBILE, policy=policy, countries=both).allowed
    assert not check(LONDON_DRAMA, policy=policy, countries=both).allowed


def test_bot_list_never_widens_the_deployments() -> None:
    """A country the bot names but the deployment does not is refused."""
    policy = DialPolicy(allowed_countries=frozenset({"GB", "RO"}))
    decision = check(RO_MOBILE, policy=policy, countries=frozenset({"GB"}))
    assert not decision.allowed
    assert "(GB;" in decision.reason


@pytest.mark.parametrize(
    "number",
    [
        "+442079460000abc",  # libphonenumber would read the letters as keypad digits
        "+44 20 7946 0000 ext 5",
        "tel:+442079460000",
        "+44 20 7946 \u0660\u0660\u0660\u0660",  # Arabic-Indic digits
        "+44 20 7946 \uff10\uff1000",  # fullwidth digits
        "++442079460000",
        "+44+2079460000",
    ],
)
def test_letters_unicode_digits_and_stray_plus_refused(number: str) -> None:
    """Anything but ASCII digits, a leading + and separators is refused before parsing."""
    decision = check(number)
    assert not decision.allowed
    assert "only a leading +" in decision.reason


def test_very_long_input_refused() -> None:
    """A string far longer than any phone number is refused without parsing."""
    decision = check("+44" + "2" * 5000)
    assert not decision.allowed
    assert "too long" in decision.reason


def test_too_many_digits_refused() -> None:
    """More than 15 digits is not E.164."""
    assert "not an E.164 number" in check("+4420794600001234").reason


@pytest.mark.parametrize("number", ["02079460000", "00442079460000", "442079460000"])
def test_national_and_international_prefix_forms_refused(number: str) -> None:
    """Without a leading +, the country is a guess: refused."""
    decision = check(number)
    assert not decision.allowed
    assert "not an E.164 number" in decision.reason


@pytest.mark.parametrize("number", ["+44 0 20 7946 0000", "+44 (0)20 7946 0000"])
def test_trunk_prefix_after_country_code_refused(number: str) -> None:
    """A national 0 after +44 is not E.164; the policy says what it read, and refuses."""
    decision = check(number)
    assert not decision.allowed
    assert LONDON_DRAMA in decision.reason


@pytest.mark.parametrize("number", ["", "   "])
def test_empty_number_refused(number: str) -> None:
    """An empty answer from the model is refused."""
    assert check(number).reason == "no number was given"


def test_daily_limit_refuses_the_fourth_call() -> None:
    """Three calls a day are allowed; the fourth is refused with the count."""
    assert check(LONDON_DRAMA, placed_today=2).allowed
    decision = check(LONDON_DRAMA, placed_today=3)
    assert not decision.allowed
    assert "3 times today" in decision.reason


def test_non_geographic_number_refused() -> None:
    """A +800 international freephone number belongs to no allowed country."""
    decision = check("+80012345678")
    assert not decision.allowed
    assert "non-geographic" in decision.reason


def test_non_geographic_numbers_allowed_when_listed() -> None:
    """Listing "001" allows non-geographic numbers such as +800 freephone."""
    assert check("+80012345678", countries=frozenset({"GB", "001"})).allowed


def test_valid_number_starting_like_an_emergency_code_allowed() -> None:
    """A Riyadh landline (011 ...) is not mistaken for the emergency number 112."""
    decision = check("+966112345678", account_country="SA")
    assert decision.allowed


def test_custom_refused_types() -> None:
    """A bot may refuse mobiles too by naming them in refused_types."""
    policy = DialPolicy(refused_types=frozenset({"mobile", "premium_rate"}))
    decision = check(RO_MOBILE, policy=policy, countries=frozenset({"RO"}))
    assert not decision.allowed
    assert "mobile" in decision.reason


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"allowed_countries": frozenset({"UK"})}, "unknown region codes ['UK']"),
        ({"refused_types": frozenset({"premium"})}, "unknown types ['premium']"),
        ({"max_calls_per_number_per_day": -1}, "0 or more"),
    ],
)
def test_bad_policy_raises_config_error(options: dict[str, object], complaint: str) -> None:
    """A policy with an unknown country, type or a negative limit is a ConfigError."""
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        DialPolicy(**options)  # type: ignore[arg-type]


def test_unknown_account_country_raises_config_error() -> None:
    """An account country libphonenumber does not know is a configuration mistake."""
    with pytest.raises(ConfigError, match="account_country"):
        check(LONDON_DRAMA, account_country="UK")
