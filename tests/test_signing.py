"""The Odygy-Signature header: our signer, our verifier and the reference's verify agree."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agentkit.odygy.signing import SignatureError, compute_signature, sign, verify

BODY = b'{"id":"evt_1","type":"voicemail.received","created_at":"2026-04-23T10:12:45Z","data":{}}'
SECRET = "whsec_test_secret_0001"
NOW = 1_800_000_000
SEED_VERIFY = Path(__file__).parent / "seed" / "verify.mjs"


def seed_verify(cases: list[dict[str, str]]) -> list[bool]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the reference's JavaScript verify cannot run")
    done = subprocess.run(
        [node, str(SEED_VERIFY)], input=json.dumps(cases), capture_output=True, text=True,
        check=True, timeout=30,
    )
    return json.loads(done.stdout)


def test_signed_body_verifies() -> None:
    """A header made by sign() passes verify() with the same secret."""
    header = sign(BODY, [SECRET], timestamp=NOW)
    assert verify(BODY, header, [SECRET], now=NOW) == NOW


def test_header_format() -> None:
    """The header is t=<unix seconds>,v1=<64 hex digits>."""
    header = sign(BODY, [SECRET], timestamp=NOW)
    assert header == f"t={NOW},v1={compute_signature(SECRET, NOW, BODY)}"


def test_reference_verify_accepts_our_signatures() -> None:
    """The reference's own JavaScript verify accepts what the simulator signs."""
    header = sign(BODY, [SECRET], timestamp=NOW)
    tampered = BODY.replace(b"voicemail", b"voicemall")
    results = seed_verify(
        [
            {"body": BODY.decode(), "header": header, "secret": SECRET},
            {"body": tampered.decode(), "header": header, "secret": SECRET},
            {"body": BODY.decode(), "header": header, "secret": "whsec_other"},
        ]
    )
    assert results == [True, False, False]


def test_reference_verify_agrees_with_unicode_bodies() -> None:
    """Non-ASCII bodies sign identically in Python and in the reference's verify."""
    body = '{"data":{"text":"Bună ziua, aș vrea să fiu sunat — mulțumesc"}}'.encode()
    header = sign(body, [SECRET], timestamp=NOW)
    assert seed_verify([{"body": body.decode(), "header": header, "secret": SECRET}]) == [True]
    assert verify(body, header, [SECRET], now=NOW) == NOW


def test_rotation_one_valid_entry_is_enough() -> None:
    """During a rotation, a header with entries for old and new secrets verifies with either."""
    header = sign(BODY, ["whsec_new_secret_0002", SECRET], timestamp=NOW)
    assert verify(BODY, header, [SECRET], now=NOW) == NOW
    assert verify(BODY, header, ["whsec_new_secret_0002"], now=NOW) == NOW


def test_several_configured_secrets() -> None:
    """A receiver holding old and new secrets accepts a header signed with either."""
    header = sign(BODY, ["whsec_new_secret_0002"], timestamp=NOW)
    assert verify(BODY, header, [SECRET, "whsec_new_secret_0002"], now=NOW) == NOW


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_stale_or_future_timestamp_refused(skew: int) -> None:
    """A timestamp more than 300 s away from now, either way, is refused."""
    header = sign(BODY, [SECRET], timestamp=NOW - skew)
    with pytest.raises(SignatureError, match="300 s"):
        verify(BODY, header, [SECRET], now=NOW)


@pytest.mark.parametrize("skew", [300, -300, 0])
def test_timestamp_within_tolerance_accepted(skew: int) -> None:
    """A timestamp up to 300 s away is accepted."""
    header = sign(BODY, [SECRET], timestamp=NOW - skew)
    assert verify(BODY, header, [SECRET], now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        f"t={NOW}",
        f"t={NOW},v1=xyz",
        f"t={NOW},v0={'a' * 64}",
        f"{NOW}.{'a' * 64}",
        f"sha256={'a' * 64}",
        f"t={NOW},v1={'A' * 64}",
        f"t=-{NOW},v1={'a' * 64}",
        f"t={NOW},v1={'a' * 64},",
        f"t={NOW}, v1={'a' * 64}",
    ],
)
def test_malformed_header_refused(header: str | None) -> None:
    """Anything but t=<digits>,v1=<hex>[,v1=<hex>] is refused, including the old format."""
    with pytest.raises(SignatureError):
        verify(BODY, header, [SECRET], now=NOW)


def test_wrong_secret_refused() -> None:
    """A header signed with another secret is refused."""
    header = sign(BODY, ["whsec_someone_else"], timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY, header, [SECRET], now=NOW)


def test_changed_body_refused() -> None:
    """One changed byte in the body breaks the signature."""
    header = sign(BODY, [SECRET], timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY + b" ", header, [SECRET], now=NOW)
