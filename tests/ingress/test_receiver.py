"""POST /webhooks/odygy: verify, parse, store, answer; every bad input a 4xx, nothing stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.ingress.receiver import WEBHOOK_PATH, create_receiver_app
from agentkit.metrics import Metrics
from agentkit.odygy.signing import SIGNATURE_HEADER, compute_signature, sign
from agentkit.serving import EmbeddedServer
from agentkit.store import Store
from agentkit.store.sqlite import SqliteStore
from agentkit.store.writer import EventWriter
from agentkit.testing.deliveries import envelope, now_ts, signed

SECRET = "whsec_receiver_test_0001"
OLD_SECRET = "whsec_receiver_test_old_0002"


@dataclass
class Receiver:
    url: str
    store: Store
    metrics: Metrics
    http: httpx.AsyncClient

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(self.url + WEBHOOK_PATH, content=body, headers=headers)

    async def deliver(self, event: dict[str, Any], secret: str = SECRET) -> httpx.Response:
        return await self.post(*signed(event, secret))


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    writer = EventWriter(store)
    await writer.start()
    metrics = Metrics()

    async def ready() -> str | None:
        try:
            await store.ping()
        except Exception as exc:
            return str(exc)
        return None

    app = create_receiver_app(secrets=[SECRET, OLD_SECRET], writer=writer, metrics=metrics,
                              ready=ready, queue_counts=store.job_counts)
    server = EmbeddedServer(app)
    await server.start()
    async with httpx.AsyncClient(timeout=10) as http:
        yield Receiver(server.url, store, metrics, http)
    await server.stop()
    await writer.stop()
    await store.close()


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


async def assert_nothing_stored(receiver: Receiver) -> None:
    assert await receiver.store.count_events() == 0


# accepted


async def test_signed_event_stored_then_acknowledged(receiver: Receiver) -> None:
    """A valid delivery is stored with a route job before the 200 comes back."""
    event = envelope("voicemail.received")
    response = await receiver.deliver(event)
    assert response.status_code == 200
    assert response.json() == {"id": event["id"], "status": "stored"}
    stored = await receiver.store.get_event(event["id"])
    assert stored is not None
    assert json.loads(stored.body) == event
    assert stored.call_id == "cal_test_1"
    assert [j.kind for j in await receiver.store.jobs_for_event(event["id"])] == ["route"]


async def test_stored_call_listed_with_its_numbers(receiver: Receiver) -> None:
    """A stored call event's call is listed with its numbers and direction."""
    await receiver.deliver(envelope("call.initiated"))
    row = await receiver.store.get_call("cal_test_1")
    assert row is not None
    assert (row.from_number, row.to_number, row.direction, row.events) == (
        "+442079460000", "+40264000111", "inbound", 1)


async def test_voicemail_gives_its_call_numbers(receiver: Receiver) -> None:
    """A voicemail names its call's numbers, and no direction."""
    await receiver.deliver(envelope("voicemail.received"))
    row = await receiver.store.get_call("cal_test_1")
    assert row is not None
    assert (row.from_number, row.to_number, row.direction) == (
        "+442079460000", "+40264000111", None)


async def test_redelivery_adds_no_work(receiver: Receiver) -> None:
    """The same event id again gets 200 and adds neither an event nor a job."""
    event = envelope("call.completed")
    await receiver.deliver(event)
    again = await receiver.deliver(event)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert await receiver.store.count_events() == 1
    assert len(await receiver.store.jobs_for_event(event["id"])) == 1


async def test_unknown_type_stored_not_routed(receiver: Receiver) -> None:
    """An unknown event type is stored and acknowledged, with no job."""
    event = envelope("sms.received", {"text": "hi"})
    response = await receiver.deliver(event)
    assert response.status_code == 200
    stored = await receiver.store.get_event(event["id"])
    assert stored is not None and not stored.routable
    assert await receiver.store.jobs_for_event(event["id"]) == []


async def test_unknown_data_fields_tolerated(receiver: Receiver) -> None:
    """Fields phone.systems adds inside data are kept and do not stop routing."""
    event = envelope("transcript.ready", {"call_id": "cal_1", "language": "en-US", "new": [1]})
    assert (await receiver.deliver(event)).status_code == 200
    stored = await receiver.store.get_event(event["id"])
    assert stored is not None and stored.routable
    assert json.loads(stored.body)["data"]["new"] == [1]


async def test_known_type_with_unreadable_data_is_kept(receiver: Receiver) -> None:
    """A known type whose data does not fit is stored (never lost) but not routed."""
    event = envelope("call.completed", {"id": "cal_1"})
    assert (await receiver.deliver(event)).status_code == 200
    stored = await receiver.store.get_event(event["id"])
    assert stored is not None and not stored.routable


async def test_rotated_secret_accepted(receiver: Receiver) -> None:
    """During a rotation, a delivery signed with either configured secret is stored."""
    old, new = envelope(), envelope()
    assert (await receiver.deliver(old, OLD_SECRET)).json() == {"id": old["id"],
                                                                 "status": "stored"}
    body = json.dumps(new).encode()
    header = sign(body, ["whsec_brand_new_unknown", SECRET])
    response = await receiver.post(body, {"Content-Type": "application/json",
                                          SIGNATURE_HEADER: header})
    assert response.json() == {"id": new["id"], "status": "stored"}
    for event in (old, new):
        stored = await receiver.store.get_event(event["id"])
        assert stored is not None and json.loads(stored.body) == event


# refused


async def test_missing_signature(receiver: Receiver) -> None:
    """A delivery without Odygy-Signature is refused and nothing is stored."""
    body = json.dumps(envelope()).encode()
    refused(await receiver.post(body, {"Content-Type": "application/json"}), 401,
            "invalid_signature")
    await assert_nothing_stored(receiver)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=abc,v1=00",
        "v1=" + "a" * 64,
        "sha256=" + "a" * 64,
        "t={t}",
        "t={t},v0=" + "a" * 64,
    ],
)
async def test_malformed_signature(receiver: Receiver, header: str) -> None:
    """A malformed or old-format signature header is refused and nothing is stored."""
    body = json.dumps(envelope()).encode()
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: header.format(t=now_ts())}
    refused(await receiver.post(body, headers), 401, "invalid_signature")
    await assert_nothing_stored(receiver)


async def test_wrong_secret(receiver: Receiver) -> None:
    """A delivery signed with another secret is refused and nothing is stored."""
    refused(await receiver.deliver(envelope(), "whsec_attacker_0000"), 401, "invalid_signature")
    await assert_nothing_stored(receiver)


async def test_tampered_body(receiver: Receiver) -> None:
    """A body changed after signing is refused and nothing is stored."""
    body, headers = signed(envelope(), SECRET)
    refused(await receiver.post(body.replace(b"completed", b"initiated"), headers), 401,
            "invalid_signature")
    await assert_nothing_stored(receiver)


# now_ts() rounds down and the request takes time to arrive: both bring a future
# timestamp closer to the receiver's clock, so that case keeps a few seconds' margin.
@pytest.mark.parametrize("skew", [-301, 305, -86400])
async def test_stale_or_future_timestamp(receiver: Receiver, skew: int) -> None:
    """A signature more than 300 s from the receiver's clock, either way, is refused."""
    body, headers = signed(envelope(), SECRET, timestamp=now_ts() + skew)
    refused(await receiver.post(body, headers), 401, "invalid_signature")
    await assert_nothing_stored(receiver)


async def test_signature_checked_before_parsing(receiver: Receiver) -> None:
    """A body that is not JSON and not signed is refused for its signature, not parsed."""
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: f"t={now_ts()},v1={'0' * 64}"}
    refused(await receiver.post(b"{not json", headers), 401, "invalid_signature")
    await assert_nothing_stored(receiver)


async def test_invalid_json(receiver: Receiver) -> None:
    """A signed body that is not JSON is a 400 and nothing is stored."""
    refused(await receiver.post(*signed(b"{not json", SECRET)), 400, "invalid_event")
    await assert_nothing_stored(receiver)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "call.completed", "created_at": "2026-04-23T10:12:45Z", "data": {}},
        {"id": "evt_1", "created_at": "2026-04-23T10:12:45Z", "data": {}},
        {"id": "evt_1", "type": "call.completed", "data": {}},
        {"id": "evt_1", "type": "call.completed", "created_at": "2026-04-23T10:12:45Z"},
        {"id": 7, "type": "call.completed", "created_at": "2026-04-23T10:12:45Z", "data": {}},
        {"id": "evt_1", "type": "x", "created_at": 1776939165, "data": {}},
        {"id": "evt_1", "type": "x", "created_at": "yesterday", "data": {}},
        {"id": "evt_1", "type": "x", "created_at": "2026-04-23T10:12:45", "data": {}},
        {"id": "evt_1", "type": "x", "created_at": "2026-04-23T10:12:45Z", "data": []},
        {"id": "", "type": "x", "created_at": "2026-04-23T10:12:45Z", "data": {}},
        [1, 2, 3],
    ],
)
async def test_broken_envelope(receiver: Receiver, body: Any) -> None:
    """A missing or mistyped envelope field is a 400 and nothing is stored."""
    refused(await receiver.post(*signed(json.dumps(body).encode(), SECRET)), 400,
            "invalid_event")
    await assert_nothing_stored(receiver)


async def test_oversized_body(receiver: Receiver) -> None:
    """A body over 1 MiB is a 413 and nothing is stored."""
    event = envelope("x.big", {"blob": "x" * (1024 * 1024)})
    refused(await receiver.deliver(event), 413, "too_large")
    await assert_nothing_stored(receiver)


async def test_oversized_body_without_length(receiver: Receiver) -> None:
    """A chunked body over 1 MiB (no Content-Length) is a 413 as well."""
    body, headers = signed(envelope("x.big", {"blob": "x" * (1024 * 1024)}), SECRET)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    response = await receiver.http.post(receiver.url + WEBHOOK_PATH, content=chunks(),
                                        headers=headers)
    refused(response, 413, "too_large")
    await assert_nothing_stored(receiver)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type(receiver: Receiver, content_type: str) -> None:
    """A delivery not sent as application/json is a 415 and nothing is stored."""
    body, headers = signed(envelope(), SECRET)
    headers["Content-Type"] = content_type
    refused(await receiver.post(body, headers), 415, "unsupported_media_type")
    await assert_nothing_stored(receiver)


async def test_json_with_charset_accepted(receiver: Receiver) -> None:
    """application/json with a charset parameter is accepted and stored."""
    event = envelope()
    body, headers = signed(event, SECRET)
    headers["Content-Type"] = "application/json; charset=utf-8"
    assert (await receiver.post(body, headers)).json() == {"id": event["id"], "status": "stored"}
    stored = await receiver.store.get_event(event["id"])
    assert stored is not None and json.loads(stored.body) == event


async def test_get_is_405(receiver: Receiver) -> None:
    """The webhook path takes only POST."""
    refused(await receiver.http.get(receiver.url + WEBHOOK_PATH), 405, "method_not_allowed")


async def test_store_down_is_503(receiver: Receiver) -> None:
    """When the store cannot write, the delivery gets 503 so phone.systems retries it."""
    await receiver.store.close()
    event = envelope()
    refused(await receiver.deliver(event), 503, "store_unavailable")
    await receiver.store.open()
    assert (await receiver.deliver(event)).status_code == 200
    assert await receiver.store.count_events() == 1


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.dictionaries(st.sampled_from(["id", "type", "created_at", "data", "x"]),
                        st.one_of(st.none(), st.integers(), st.text(max_size=20),
                                  st.lists(st.integers(), max_size=3),
                                  st.dictionaries(st.text(max_size=5), st.integers(),
                                                  max_size=3)),
                        max_size=5).map(lambda d: json.dumps(d).encode()),
    ),
    sign_it=st.booleans(),
)
async def test_fuzzed_bodies_never_5xx(receiver: Receiver, body: bytes, sign_it: bool) -> None:
    """Generated bodies, signed or not, get 2xx or 4xx; a rejected one is never stored."""
    before = await receiver.store.count_events()
    if sign_it:
        response = await receiver.post(*signed(body, SECRET))
    else:
        response = await receiver.post(body, {"Content-Type": "application/json"})
    assert response.status_code < 500
    if response.status_code >= 400:
        assert await receiver.store.count_events() == before


# health, readiness, metrics, logs


async def test_health_and_readiness(receiver: Receiver) -> None:
    """/healthz answers while the process lives; /readyz follows the store."""
    assert (await receiver.http.get(receiver.url + "/healthz")).status_code == 200
    assert (await receiver.http.get(receiver.url + "/readyz")).status_code == 200
    await receiver.store.close()
    not_ready = await receiver.http.get(receiver.url + "/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["status"] == "unavailable"
    assert (await receiver.http.get(receiver.url + "/healthz")).status_code == 200
    await receiver.store.open()


async def test_metrics_count_outcomes(receiver: Receiver) -> None:
    """/metrics counts deliveries by outcome and shows the queue depth."""
    event = envelope()
    await receiver.deliver(event)
    await receiver.deliver(event)
    await receiver.deliver(envelope(), "whsec_wrong_0000")
    page = (await receiver.http.get(receiver.url + "/metrics")).text
    assert 'agentkit_deliveries_total{outcome="stored"} 1.0' in page
    assert 'agentkit_deliveries_total{outcome="duplicate"} 1.0' in page
    assert 'agentkit_deliveries_total{outcome="bad_signature"} 1.0' in page
    assert 'agentkit_queue_depth{state="pending"} 1.0' in page


async def test_rejections_log_no_secret(receiver: Receiver) -> None:
    """Rejected deliveries are logged without the secret or a valid signature."""
    body, headers = signed(envelope(), SECRET)
    with structlog.testing.capture_logs() as logs:
        await receiver.post(body + b" ", headers)
    assert logs and logs[0]["event"] == "delivery.rejected"
    text = repr(logs)
    assert SECRET not in text
    assert compute_signature(SECRET, int(headers[SIGNATURE_HEADER][2:12]), body) not in text
