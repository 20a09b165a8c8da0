"""The Odygy-Signature header: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC key is the endpoint secret and the signed message is ``<t>.<raw body>``,
as the reference's ``verify`` function computes it. During a secret rotation a
header carries one ``v1=`` entry per secret; one valid entry is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "Odygy-Signature"
DEFAULT_TOLERANCE = 300

_HEADER_SHAPE = re.compile(r"^t=([0-9]{1,12})(,v1=[0-9a-f]{64})+$")


class SignatureError(ValueError):
    """A signature header is missing, malformed, stale or does not match."""


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], *, timestamp: int | None = None) -> str:
    """The Odygy-Signature header value for ``body``, one v1 entry per secret."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    t = int(time.time()) if timestamp is None else timestamp
    entries = ",".join(f"v1={compute_signature(s, t, body)}" for s in secrets)
    return f"t={t},{entries}"


def verify(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check an Odygy-Signature header; return its timestamp or raise SignatureError.

    The comparison is constant-time; any format but ``t=...,v1=...[,v1=...]`` is
    refused, as is a timestamp more than ``tolerance`` seconds from ``now``.
    """
    if not header:
        raise SignatureError(f"the {SIGNATURE_HEADER} header is missing")
    header = header.strip()
    if not _HEADER_SHAPE.match(header):
        raise SignatureError(
            f"the {SIGNATURE_HEADER} header is malformed: expected t=<unix seconds>,v1=<hex>"
        )
    t_part, *sig_parts = header.split(",")
    timestamp = int(t_part[2:])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"the signature timestamp is more than {tolerance} s from this server's clock"
        )
    given = [bytes.fromhex(part[3:]) for part in sig_parts]
    matched = False
    for secret in secrets:
        expected = bytes.fromhex(compute_signature(secret, timestamp, body))
        for candidate in given:
            # No early exit: every pair is compared, so timing says nothing.
            matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise SignatureError("the signature does not match any configured secret")
    return timestamp
