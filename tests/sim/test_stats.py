"""What the simulator counts for benchmarks: requests in the busiest second."""

from __future__ import annotations

import httpx

from agentkit import OdygyClient
from agentkit.sim import Simulator


async def test_counts_the_busiest_second(sim: Simulator, odygy: OdygyClient) -> None:
    """Requests sent together show in max_requests_per_second, also through /_sim/stats."""
    for _ in range(5):
        await odygy.account.retrieve()
    assert 5 <= sim.stats.max_requests_per_second <= sim.stats.requests
    async with httpx.AsyncClient() as http:
        stats = (await http.get(sim.url + "/_sim/stats")).json()
    assert stats["max_requests_per_second"] == sim.stats.max_requests_per_second
