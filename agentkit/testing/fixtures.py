"""pytest fixtures: a simulator on loopback and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentkit.odygy import OdygyClient
from agentkit.sim import Simulator
from agentkit.sim.config import Delivery, SimConfig, Timings
from agentkit.testing.fake_llm import FakeLlm
from agentkit.testing.recorder import HttpRecorder


def fast_sim_config(**overrides: object) -> SimConfig:
    """A simulator config for tests: a simulated minute passes in 60 ms."""
    config = SimConfig(
        time_scale=0.001,
        timings=Timings(call_creation=0.0),
        delivery=Delivery(timeout=5.0),
        random_seed=1234,
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@pytest.fixture
def sim_config() -> SimConfig:
    """The config the ``sim`` fixture starts with; override it to change the simulator."""
    return fast_sim_config()


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[Simulator]:
    """A simulator serving on a free loopback port for the length of one test."""
    async with Simulator(sim_config) as simulator:
        yield simulator


@pytest.fixture
async def odygy(sim: Simulator) -> AsyncIterator[OdygyClient]:
    """A client of the ``sim`` simulator, with its full-access key."""
    async with OdygyClient(api_key=sim.api_key, base_url=sim.base_url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def recorder() -> AsyncIterator[HttpRecorder]:
    """An HTTP endpoint on loopback that records every request posted to it."""
    async with HttpRecorder() as sink:
        yield sink


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLlm]:
    """A fake OpenAI-compatible model server on loopback; point an LlmClient at ``base_url``."""
    async with FakeLlm() as fake:
        yield fake
