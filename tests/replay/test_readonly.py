"""The replay's read-only client: reads reach phone.systems, writes never leave the process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentkit.replay.readonly import ReadOnlyError, read_only_client
from agentkit.sim import Simulator
from agentkit.testing import fast_sim_config


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(fast_sim_config()) as simulator:
        yield simulator


async def test_reads_work(sim: Simulator) -> None:
    """Users, numbers and call flows are listed as by any client."""
    async with read_only_client(api_key=sim.api_key, base_url=sim.base_url) as api:
        users = await api.users.list().to_list()
        flows = await api.call_flows.list().to_list()
    assert {u.id for u in users} == set(sim.state.users)
    assert {f.id for f in flows} == set(sim.state.call_flows)


async def test_placing_a_call_is_refused_and_nothing_reaches_the_api(sim: Simulator) -> None:
    """calls.create raises ReadOnlyError; the simulator never sees a request for it."""
    number = next(iter(sim.state.numbers.values())).number
    async with read_only_client(api_key=sim.api_key, base_url=sim.base_url) as api:
        with pytest.raises(ReadOnlyError, match="POST /v1/calls was refused"):
            await api.calls.create(from_=number, to="+40722123456")
    assert sim.calls(direction="outbound") == []


async def test_changing_a_flow_or_a_number_or_deleting_is_refused(sim: Simulator) -> None:
    """PATCH a flow, attach a number, DELETE a flow: each refused, nothing changed."""
    flow_id, flow = next(iter(sim.state.call_flows.items()))
    number_id, number = next(iter(sim.state.numbers.items()))
    async with read_only_client(api_key=sim.api_key, base_url=sim.base_url) as api:
        with pytest.raises(ReadOnlyError, match="PATCH"):
            await api.call_flows.update(flow_id, name="changed by a replay")
        with pytest.raises(ReadOnlyError):
            await api.numbers.attach(number_id, call_flow_id=flow_id)
        with pytest.raises(ReadOnlyError, match="DELETE"):
            await api.call_flows.delete(flow_id)
    assert flow_id in sim.state.call_flows
    assert sim.state.call_flows[flow_id].name == flow.name
    assert sim.state.numbers[number_id].call_flow_id == number.call_flow_id
