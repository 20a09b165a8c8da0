"""Live calls in the simulator: each step emits the contract's events, signed and retried."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit.odygy.models import Call
from agentkit.odygy.signing import SIGNATURE_HEADER, verify
from agentkit.sim import Simulator
from agentkit.sim.config import SimConfig
from agentkit.testing import HttpRecorder, Recorded, fast_sim_config, wait_until

SECRET = "whsec_lifecycle_test_0001"
CALLER = "+442079460000"
MAIN = "+40264000111"

CDR_FIELDS = {
    "id", "direction", "from", "to", "user_id", "call_flow_id", "status", "started_at",
    "answered_at", "ended_at", "duration", "recording", "ai_features", "ai",
}


def events(requests: list[Recorded]) -> list[dict[str, Any]]:
    return [r.json() for r in requests]


def types(requests: list[Recorded]) -> list[str]:
    return [e["type"] for e in events(requests)]


def in_emitted_order(sim: Simulator, recorder: HttpRecorder) -> list[dict[str, Any]]:
    """The events ``recorder`` accepted, in the order the simulator emitted them.

    Each delivery is a request of its own: on a busy machine one may overtake another.
    """
    emitted = {event.id: n for n, event in enumerate(sim.deliveries.events)}
    return sorted(events(recorder.accepted()), key=lambda event: emitted[event["id"]])


@pytest.fixture
async def hooked(sim: Simulator, recorder: HttpRecorder) -> HttpRecorder:
    sim.add_webhook(recorder.url + "/webhooks/odygy", SECRET)
    return recorder


async def test_voicemail_events(sim: Simulator, hooked: HttpRecorder) -> None:
    """A voicemail emits initiated, completed, voicemail.received, recording and transcript."""
    placed = sim.leave_voicemail(CALLER, words="Hello, please call me back about my order.")
    await sim.settle()
    got = in_emitted_order(sim, hooked)
    assert [e["type"] for e in got][:3] == [
        "call.initiated", "call.completed", "voicemail.received"
    ]
    assert {e["type"] for e in got[3:]} == {"recording.ready", "transcript.ready"}

    by_type = {e["type"]: e for e in got}
    completed = by_type["call.completed"]["data"]
    assert set(completed) == CDR_FIELDS
    assert completed["status"] == "voicemail"
    assert completed["direction"] == "inbound"
    assert completed["from"] == CALLER and completed["to"] == MAIN
    Call.model_validate(completed)

    voicemail = by_type["voicemail.received"]["data"]
    assert set(voicemail) == {"id", "call_id", "mailbox_id", "from", "to", "duration",
                              "received_at"}
    assert voicemail["id"] == placed.voicemail_id
    assert voicemail["call_id"] == placed.call_id
    assert voicemail["from"] == CALLER and voicemail["to"] == MAIN
    assert voicemail["received_at"].endswith("Z")
    assert by_type["transcript.ready"]["data"] == {"call_id": placed.call_id, "language": "en-US"}
    assert by_type["recording.ready"]["data"]["call_id"] == placed.call_id


async def test_envelope_shape(sim: Simulator, hooked: HttpRecorder) -> None:
    """Every delivery is the contract's envelope, sent as JSON."""
    sim.leave_voicemail(CALLER, words="Hi.")
    await sim.settle()
    for request in hooked.accepted():
        assert request.headers["content-type"] == "application/json"
        envelope = request.json()
        assert set(envelope) == {"id", "type", "created_at", "data"}
        assert envelope["id"].startswith("evt_")
        assert envelope["created_at"].endswith("Z")


async def test_deliveries_are_signed(sim: Simulator, hooked: HttpRecorder) -> None:
    """Each delivery carries an Odygy-Signature that verifies over the raw body."""
    sim.leave_voicemail(CALLER, words="Hi.")
    await sim.settle()
    assert hooked.accepted()
    for request in hooked.accepted():
        verify(request.body, request.headers[SIGNATURE_HEADER.lower()], [SECRET])


async def test_outbound_answered(sim: Simulator, hooked: HttpRecorder,
                                 odygy: Any) -> None:
    """An outbound call rings, is answered and completes, with the CDR on each event."""
    call = await odygy.calls.create(from_=MAIN, to=CALLER)
    await sim.settle()
    got = in_emitted_order(sim, hooked)
    assert [e["type"] for e in got] == ["call.initiated", "call.answered", "call.completed"]
    assert [e["data"]["status"] for e in got] == ["ringing", "in_progress", "completed"]
    assert all(e["data"]["id"] == call.id for e in got)
    assert got[2]["data"]["duration"] > 0


@pytest.mark.parametrize("outcome", ["busy", "no_answer", "failed", "voicemail"])
async def test_outbound_not_answered(sim: Simulator, hooked: HttpRecorder, odygy: Any,
                                     outcome: str) -> None:
    """A scripted outbound outcome ends the call with that status and no answer event."""
    sim.script_outbound(CALLER, [outcome])  # type: ignore[list-item]
    await odygy.calls.create(from_=MAIN, to=CALLER)
    await sim.settle()
    got = in_emitted_order(sim, hooked)
    assert [e["type"] for e in got] == ["call.initiated", "call.completed"]
    assert got[1]["data"]["status"] == outcome


async def test_scripted_outcomes_in_turn(sim: Simulator, odygy: Any) -> None:
    """Scripted outcomes apply to the next calls in turn; later ones are answered."""
    sim.script_outbound(CALLER, ["busy", "no_answer"])
    for _ in range(3):
        await odygy.calls.create(from_=MAIN, to=CALLER)
    await sim.settle()
    assert [c.status for c in sim.calls(to=CALLER)] == ["busy", "no_answer", "completed"]


async def test_inbound_missed(sim: Simulator, hooked: HttpRecorder) -> None:
    """A missed inbound call completes with status missed."""
    sim.inbound_call(CALLER, outcome="missed")
    await sim.settle()
    got = in_emitted_order(sim, hooked)
    assert [e["type"] for e in got] == ["call.initiated", "call.completed"]
    assert got[1]["data"]["status"] == "missed"


async def test_inbound_answered_with_ai(sim: Simulator, hooked: HttpRecorder,
                                        odygy: Any) -> None:
    """An answered, recorded call gets a transcript and the AI results asked for."""
    placed = sim.inbound_call(
        CALLER,
        dialogue=[("caller", "My invoice is wrong and this is unacceptable."),
                  ("agent", "I am sorry, let me fix it.")],
        recording=True,
        ai_features=["summary", "sentiment", "topics"],
    )
    await sim.settle()
    assert "transcript.ready" in types(hooked.accepted())
    call = await odygy.calls.retrieve(placed.call_id)
    assert call.user_id is not None
    assert call.ai is not None
    assert call.ai.sentiment == "negative"
    assert "billing" in (call.ai.topics or [])


async def test_event_ids_unique(sim: Simulator, hooked: HttpRecorder) -> None:
    """Every event has its own id."""
    sim.leave_voicemail(CALLER, words="One.")
    sim.leave_voicemail("+442079460001", words="Two.")
    await sim.settle()
    ids = [e["id"] for e in events(hooked.accepted())]
    assert len(ids) == len(set(ids)) == 10


async def test_subscription_filters_event_types(sim: Simulator, recorder: HttpRecorder) -> None:
    """An endpoint receives only the event types it subscribed to."""
    sim.add_webhook(recorder.url, SECRET, events=["voicemail.received"])
    sim.leave_voicemail(CALLER, words="Hi.")
    await sim.settle()
    assert types(recorder.accepted()) == ["voicemail.received"]


async def test_non_2xx_is_retried(sim: Simulator, hooked: HttpRecorder) -> None:
    """A delivery answered with a 5xx is retried until it is accepted, with the same id."""
    hooked.fail_next(3, status=503)
    sim.emit("number.ported", {"number_id": "num_1", "number": "+40264000999",
                               "ported_at": "2026-04-23T10:12:45Z"})
    await sim.settle()
    assert [r.answered for r in hooked.requests] == [503, 503, 503, 200]
    assert len({r.json()["id"] for r in hooked.requests}) == 1


async def test_gives_up_after_the_schedule(sim: Simulator, hooked: HttpRecorder) -> None:
    """A delivery refused on every attempt is given up after the retry schedule."""
    sim.config.delivery.retry_delays = (1, 1)
    hooked.fail_next(10, status=500)
    event = sim.emit("number.ported", {"number_id": "num_1", "number": "+40264000999",
                                       "ported_at": "2026-04-23T10:12:45Z"})
    await sim.settle()
    assert len(hooked.requests) == 3
    assert [g[0] for g in sim.deliveries.gave_up] == [event.id]


async def test_unreachable_endpoint_is_retried(sim: Simulator) -> None:
    """A delivery to an endpoint that refuses connections is retried, then given up."""
    sim.config.delivery.retry_delays = (1,)
    sim.add_webhook("http://127.0.0.1:9/hook", SECRET)
    sim.emit("number.ported", {"number_id": "num_1", "number": "+40264000999",
                               "ported_at": "2026-04-23T10:12:45Z"})
    await sim.settle()
    attempts = sim.deliveries.attempts
    assert [a.attempt for a in attempts] == [1, 2]
    assert all(a.status is None and a.error for a in attempts)


@pytest.fixture
def sim_config(request: pytest.FixtureRequest) -> SimConfig:
    config = fast_sim_config()
    marker = request.node.get_closest_marker("delivery")
    if marker:
        for name, value in marker.kwargs.items():
            setattr(config.delivery, name, value)
    return config


@pytest.mark.delivery(duplicate_rate=1.0)
async def test_duplicates(sim: Simulator, hooked: HttpRecorder) -> None:
    """With duplicates on, each event arrives twice with the same id and body."""
    sim.leave_voicemail(CALLER, words="Hi.")
    await sim.settle()
    bodies = [r.body for r in hooked.accepted()]
    assert len(bodies) == 10
    assert len(set(bodies)) == 5


async def test_held_events_released_in_reverse(sim: Simulator, hooked: HttpRecorder) -> None:
    """Held events can be delivered in any order, e.g. transcript.ready before the voicemail."""
    sim.hold_deliveries()
    sim.leave_voicemail(CALLER, words="Hi.")
    await sim.settle()
    assert hooked.requests == []
    sim.release_deliveries(lambda held: list(reversed(held)))
    await hooked.wait_for(5)
    order = types(hooked.accepted())
    assert order.index("transcript.ready") < order.index("voicemail.received")


@pytest.mark.delivery(reorder_jitter=0.5)
async def test_jitter_reorders(sim: Simulator, hooked: HttpRecorder) -> None:
    """With jitter on, events overtake each other, and all of them still arrive."""
    # Held, then sent all at once: only the jitter orders them, and the simulator's
    # seeded randomness (fast_sim_config) draws the same waits, from 0 to 0.5 s, each run.
    sim.hold_deliveries()
    for i in range(6):
        sim.leave_voicemail(f"+4420794600{i:02d}", words="Hi.")
    await sim.settle()
    created = [e.id for e in sim.deliveries.events]
    assert len(created) == 30 and hooked.requests == []
    sim.release_deliveries()
    await sim.settle()
    arrived = [e["id"] for e in events(hooked.accepted())]
    assert sorted(arrived) == sorted(created)
    assert arrived != created


async def test_secret_rotation_signs_with_both(sim: Simulator, recorder: HttpRecorder) -> None:
    """During a rotation deliveries carry a v1 entry for each secret; either verifies."""
    endpoint = sim.add_webhook(recorder.url, SECRET)
    sim.rotate_secret(endpoint.id, "whsec_rotated_secret_0002")
    sim.emit("number.ported", {"number_id": "n", "number": "+40264000999",
                               "ported_at": "2026-04-23T10:12:45Z"})
    (delivered,) = await recorder.wait_for(1)
    header = delivered.headers[SIGNATURE_HEADER.lower()]
    assert header.count("v1=") == 2
    verify(delivered.body, header, [SECRET])
    verify(delivered.body, header, ["whsec_rotated_secret_0002"])


async def test_number_ported(sim: Simulator, hooked: HttpRecorder, odygy: Any) -> None:
    """A port-in adds the number to the account and emits number.ported."""
    number = sim.port_in("+40264000333", "RO")
    (delivered,) = await hooked.wait_for(1)
    assert delivered.json()["type"] == "number.ported"
    assert delivered.json()["data"]["number_id"] == number.id
    assert number.id in [n.id async for n in odygy.numbers.list()]


async def test_wait_until_times_out() -> None:
    """wait_until raises at its deadline when the condition never holds."""
    with pytest.raises(TimeoutError):
        await wait_until(lambda: False, timeout=0.05)
