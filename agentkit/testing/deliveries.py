"""Signed deliveries for tests: envelopes of each event type, signed like phone.systems signs."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from agentkit.odygy.signing import SIGNATURE_HEADER, sign

_counter = itertools.count(1)


def envelope(
    event_type: str = "call.completed",
    data: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
    created_at: str = "2026-04-23T10:12:45Z",
) -> dict[str, Any]:
    """An event envelope; ``data`` defaults to a plausible payload for the type."""
    return {
        "id": event_id or f"evt_test_{next(_counter):06d}",
        "type": event_type,
        "created_at": created_at,
        "data": default_data(event_type) if data is None else data,
    }


def default_data(event_type: str, call_id: str = "cal_test_1") -> dict[str, Any]:
    """A valid ``data`` object for each event type of the contract."""
    call: dict[str, Any] = {
        "id": call_id,
        "direction": "inbound",
        "from": "+442079460000",
        "to": "+40264000111",
        "user_id": None,
        "call_flow_id": None,
        "status": {"call.initiated": "ringing", "call.answered": "in_progress"}.get(
            event_type, "completed"
        ),
        "started_at": "2026-04-23T10:10:02Z",
        "answered_at": None,
        "ended_at": None,
        "duration": 0,
        "recording": False,
        "ai_features": [],
        "ai": None,
    }
    payloads: dict[str, dict[str, Any]] = {
        "call.initiated": call,
        "call.answered": call,
        "call.completed": call,
        "recording.ready": {"call_id": call_id, "duration": 12},
        "transcript.ready": {"call_id": call_id, "language": "en-US"},
        "voicemail.received": {
            "id": "vmm_test_1",
            "call_id": call_id,
            "mailbox_id": "vm_test",
            "from": "+442079460000",
            "to": "+40264000111",
            "duration": 21,
            "received_at": "2026-04-23T10:12:45Z",
        },
        "number.ported": {
            "number_id": "num_test",
            "number": "+40264000333",
            "ported_at": "2026-04-23T10:12:45Z",
        },
    }
    return payloads.get(event_type, {})


def signed(
    body: dict[str, Any] | bytes,
    secret: str,
    *,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of a delivery signed with ``secret``."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(raw, [secret], timestamp=timestamp),
    }
    return raw, headers


def now_ts() -> int:
    return int(datetime.now(UTC).timestamp())
