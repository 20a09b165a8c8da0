"""Every documented endpoint, through the client, against the simulator over loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from agentkit import NotFoundError, OdygyClient
from agentkit.odygy.models import GreetingBlock, QueueBlock
from agentkit.sim import Simulator
from agentkit.testing import wait_until

CALLER = "+442079460000"

FLOW_BLOCKS = {
    "hello": {"type": "greeting", "audio_url": "https://a.example/hi.mp3", "next": "menu"},
    "menu": {
        "type": "ivr",
        "prompt_tts": "Press 1 for sales.",
        "choices": {"1": "sales"},
        "timeout_next": "vm",
    },
    "sales": {"type": "queue", "queue_id": "que_sales"},
    "vm": {"type": "voicemail", "mailbox_id": "vm_main"},
}


async def test_account(odygy: OdygyClient, sim: Simulator) -> None:
    """GET /account gives the account of the key."""
    account = await odygy.account.retrieve()
    assert account.id == sim.state.account.id
    assert account.country == "RO"
    assert account.currency == "EUR"


async def test_user_lifecycle(odygy: OdygyClient) -> None:
    """Users can be created, read, listed, updated and deleted."""
    user = await odygy.users.create(
        name="Ivy Bennett", email="ivy.b@acme.example", extension="7244", role="supervisor",
        caller_id_number="+40264000111",
    )
    assert user.id.startswith("usr_")
    assert user.role == "supervisor"
    assert (await odygy.users.retrieve(user.id)) == user
    assert user.id in [u.id async for u in odygy.users.list()]

    updated = await odygy.users.update(user.id, name="Ivy B.", caller_id_number=None)
    assert updated.name == "Ivy B."
    assert updated.caller_id_number is None
    assert updated.email == user.email

    await odygy.users.delete(user.id)
    with pytest.raises(NotFoundError):
        await odygy.users.retrieve(user.id)


async def test_user_role_defaults_to_agent(odygy: OdygyClient) -> None:
    """A user created without a role is an agent."""
    user = await odygy.users.create(name="Al", email="al@acme.example", extension="7001")
    assert user.role == "agent"


async def test_numbers_list_search_attach(odygy: OdygyClient) -> None:
    """Numbers can be listed, searched in the catalogue and attached to a flow."""
    numbers = await odygy.numbers.list().to_list()
    assert {n.number for n in numbers} >= {"+40264000111"}

    offers = await odygy.numbers.search(country="RO", type="local", prefix="40264",
                                        features=["fax"])
    assert offers
    assert all(o.number.startswith("+40264") and "fax" in o.features for o in offers)

    flow = await odygy.call_flows.create(name="Sales", entry="hello", blocks=FLOW_BLOCKS)
    attached = await odygy.numbers.attach(numbers[1].id, call_flow_id=flow.id)
    assert attached.call_flow_id == flow.id


async def test_call_flow_lifecycle(odygy: OdygyClient) -> None:
    """Call flows can be created, read, listed, updated and deleted."""
    flow = await odygy.call_flows.create(name="Main", entry="hello", blocks=FLOW_BLOCKS)
    assert flow.id.startswith("cfl_")
    assert isinstance(flow.blocks["hello"], GreetingBlock)
    assert await odygy.call_flows.retrieve(flow.id) == flow
    assert flow.id in [f.id async for f in odygy.call_flows.list()]

    blocks = {**FLOW_BLOCKS, "sales": {"type": "queue", "queue_id": "que_sales_2"}}
    updated = await odygy.call_flows.update(flow.id, name="Main v2", blocks=blocks)
    assert updated.name == "Main v2"
    assert isinstance(updated.blocks["sales"], QueueBlock)
    assert updated.blocks["sales"].queue_id == "que_sales_2"
    assert updated.updated_at >= flow.updated_at

    await odygy.call_flows.delete(flow.id)
    with pytest.raises(NotFoundError):
        await odygy.call_flows.retrieve(flow.id)


async def test_place_call_and_follow_it(odygy: OdygyClient, sim: Simulator) -> None:
    """A click-to-call rings, is answered, completes, and is listed and retrievable."""
    agent = next(u for u in sim.state.users.values() if u.role == "agent")
    call = await odygy.calls.create(
        from_="+40264000111", to=CALLER, user_id=agent.id, recording=True,
        ai_features=["summary", "sentiment"],
    )
    assert call.status == "ringing"
    assert call.direction == "outbound"
    assert call.from_ == "+40264000111"
    await sim.settle()

    done = await odygy.calls.retrieve(call.id)
    assert done.status == "completed"
    assert done.answered_at is not None and done.ended_at is not None
    assert done.duration > 0
    assert done.ai is not None and done.ai.sentiment in {"positive", "neutral", "negative"}
    listed = [c async for c in odygy.calls.list(to=CALLER, direction="outbound")]
    assert [c.id for c in listed] == [call.id]

    recording = await odygy.calls.recording(call.id)
    assert recording.expires_at > datetime.now(UTC)
    async with httpx.AsyncClient() as http:
        audio = await http.get(recording.url)
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/mpeg"

    transcript = await odygy.calls.transcript(call.id)
    assert transcript.call_id == call.id
    assert [s.speaker for s in transcript.segments][:2] == ["agent", "caller"]


async def test_calls_listed_newest_first_with_filters(odygy: OdygyClient, sim: Simulator) -> None:
    """GET /calls lists newest first and filters by number, status and start time."""
    first = await odygy.calls.create(from_="+40264000111", to=CALLER)
    second = await odygy.calls.create(from_="+40264000111", to="+442079460001")
    await sim.settle()
    assert [c.id async for c in odygy.calls.list()][:2] == [second.id, first.id]
    assert [c.id async for c in odygy.calls.list(to=CALLER)] == [first.id]
    assert [c.id async for c in odygy.calls.list(status="completed")][:2] == [second.id, first.id]
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert [c async for c in odygy.calls.list(started_after=later)] == []


async def test_transcript_404_until_ready(odygy: OdygyClient, sim: Simulator) -> None:
    """The transcript endpoint answers 404 before transcript.ready, then the transcript."""
    sim.config.timings.transcript_delay = 60_000  # a minute of real time at this scale
    placed = sim.leave_voicemail(CALLER, words="Please call me back. It is urgent.")
    await wait_until(lambda: sim.deliveries.emitted("voicemail.received"),
                     message="the voicemail to be left")
    with pytest.raises(NotFoundError):
        await odygy.calls.transcript(placed.call_id)


async def test_voicemail_transcript(odygy: OdygyClient, sim: Simulator) -> None:
    """A voicemail's words come back as a time-coded transcript of the caller."""
    placed = sim.leave_voicemail(CALLER, words="Hi, this is Ana. Please call me back today.")
    await sim.settle()
    transcript = await odygy.calls.transcript(placed.call_id)
    assert [s.text for s in transcript.segments] == [
        "Hi, this is Ana.", "Please call me back today."
    ]
    assert all(s.speaker == "caller" for s in transcript.segments)
    assert transcript.segments[1].t > transcript.segments[0].t


async def test_webhook_create(odygy: OdygyClient) -> None:
    """Registering an endpoint returns its id and, this once, its secret."""
    endpoint = await odygy.webhooks.create(
        url="https://hooks.acme.example/odygy", events=["voicemail.received", "call.completed"]
    )
    assert endpoint.id.startswith("whk_")
    assert endpoint.secret and endpoint.secret.startswith("whsec_")
    given = await odygy.webhooks.create(
        url="https://hooks.acme.example/2", events=["call.completed"],
        secret="whsec_chosen_by_me_0001",
    )
    assert given.secret == "whsec_chosen_by_me_0001"
