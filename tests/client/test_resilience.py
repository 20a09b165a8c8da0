"""Pagination, retries, rate limits, and never placing a call twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart, request

from agentkit import (
    ApiConnectionError,
    ApiTimeoutError,
    CallOutcomeUnknownError,
    InternalServerError,
    NotFoundError,
    OdygyClient,
    RateLimits,
    RetryPolicy,
)
from agentkit.serving import EmbeddedServer
from agentkit.sim import Simulator
from agentkit.sim.config import SimConfig
from agentkit.testing import fast_sim_config

FAST_RETRY = RetryPolicy(max_retries=4, backoff_base=0.01, backoff_max=0.05, reconcile_delay=0.0)
FROM = "+40264000111"
TO = "+442079460000"


def client_for(sim: Simulator, **kwargs: Any) -> OdygyClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return OdygyClient(api_key=sim.api_key, base_url=sim.base_url, **kwargs)


# pagination


async def test_walks_every_page(odygy: OdygyClient, sim: Simulator) -> None:
    """Listing with a small page size walks all pages, each item once, in order."""
    for i in range(25):
        await odygy.users.create(name=f"User {i}", email=f"u{i}@acme.example",
                                 extension=f"{6000 + i}")
    requests_before = sim.stats.requests
    users = [u async for u in odygy.users.list(limit=7)]
    assert len(users) == 28  # 25 plus the three the sandbox starts with
    assert len({u.id for u in users}) == 28
    assert [u.id for u in users] == sorted(u.id for u in users)
    assert sim.stats.requests - requests_before == 4  # pages of 7, 7, 7, 7


async def test_pages_default_to_fifty(odygy: OdygyClient) -> None:
    """Without a limit the API answers pages of 50."""
    for i in range(60):
        await odygy.users.create(name=f"U{i}", email=f"p{i}@acme.example", extension=f"{700 + i}")
    pages = [len(page) async for page in odygy.users.list().pages()]
    assert pages == [50, 13]


@pytest.fixture
async def looping_api() -> AsyncIterator[str]:
    """An API whose cursor never ends: it always hands back the same one."""
    app = Quart("looping")

    @app.get("/v1/users")
    async def users() -> Any:
        n = int(request.args.get("cursor") or 0)
        user = {"id": f"usr_{n}", "name": "x", "email": f"{n}@x.example", "extension": "100",
                "role": "agent", "created_at": "2026-01-01T00:00:00Z"}
        return {"data": [user], "next_cursor": "1"}

    server = EmbeddedServer(app)
    await server.start()
    yield f"{server.url}/v1"
    await server.stop()


async def test_stops_on_repeated_cursor(looping_api: str) -> None:
    """A cursor that repeats ends the walk instead of looping for ever."""
    async with OdygyClient(api_key="k", base_url=looping_api) as client:
        users = [u.id async for u in client.users.list()]
    assert users == ["usr_0", "usr_1"]


# retries


async def test_5xx_retried_until_success(sim: Simulator) -> None:
    """Transient 5xx answers are retried with backoff until one succeeds."""
    sim.inject_fault("error", path="/v1/users", status=503, times=3)
    async with client_for(sim) as client:
        users = [u async for u in client.users.list()]
        assert len(users) == 3
        assert client.stats.retries == 3


async def test_5xx_gives_up_after_max_retries(sim: Simulator) -> None:
    """A 5xx that persists is raised after max_retries retries."""
    sim.inject_fault("error", path="/v1/account", status=500, times=10)
    async with client_for(sim, retry=RetryPolicy(max_retries=2, backoff_base=0.01)) as client:
        with pytest.raises(InternalServerError):
            await client.account.retrieve()
        assert client.stats.requests == 3


async def test_4xx_never_retried(odygy: OdygyClient) -> None:
    """A 4xx other than 429 is raised at once, without a retry."""
    with pytest.raises(NotFoundError) as caught:
        await odygy.users.retrieve("usr_missing")
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert (caught.value.method, caught.value.path) == ("GET", "/users/usr_missing")
    assert odygy.stats.requests == 1
    assert odygy.stats.retries == 0


async def test_429_waits_for_retry_after(sim: Simulator) -> None:
    """A 429 is retried after the Retry-After seconds, not sooner."""
    sim.inject_fault("rate_limit", path="/v1/account", retry_after=1)
    async with client_for(sim) as client:
        started = time.monotonic()
        account = await client.account.retrieve()
        waited = time.monotonic() - started
    assert account.id
    assert client.stats.http_429 == 1
    assert waited >= 0.95


async def test_timeout_retried_for_reads(sim: Simulator) -> None:
    """A read whose answer does not come in time is retried."""
    sim.inject_fault("timeout", path="/v1/account", hold=30)
    # Long enough for the retry's answer to come in time on a slow machine.
    async with client_for(sim, timeout=2) as client:
        assert (await client.account.retrieve()).id
        assert client.stats.retries == 1


async def test_connection_refused_raises_after_retries() -> None:
    """With nothing listening, the client retries and then raises a connection error."""
    async with OdygyClient(api_key="k", base_url="http://127.0.0.1:9/v1",
                           retry=RetryPolicy(max_retries=2, backoff_base=0.01)) as client:
        with pytest.raises(ApiConnectionError, match=r"could not reach phone\.systems") as caught:
            await client.account.retrieve()
    assert type(caught.value) is ApiConnectionError  # not a timeout: nothing was listening
    assert caught.value.request_sent is False
    assert caught.value.status is None
    assert client.stats.requests == 3


async def test_delete_lost_answer_counts_as_done(odygy: OdygyClient, sim: Simulator) -> None:
    """A delete whose answer was lost, then 404 on retry, counts as deleted."""
    user = await odygy.users.create(name="Gone", email="gone@acme.example", extension="9911")
    sim.inject_fault("lost_answer", method="DELETE", status=502)
    async with client_for(sim) as client:
        await client.users.delete(user.id)
    assert user.id not in sim.state.users


# never a duplicate call


async def test_lost_answer_finds_the_call(sim: Simulator) -> None:
    """A call created but answered with a 5xx is found, not placed again."""
    sim.inject_fault("lost_answer", method="POST", path="/v1/calls", status=502)
    async with client_for(sim) as client:
        call = await client.calls.create(from_=FROM, to=TO)
        assert client.stats.reconciled == 1
    assert [c.id for c in sim.calls(to=TO)] == [call.id]


async def test_timed_out_call_is_found(sim: Simulator) -> None:
    """A call created but whose answer timed out is found, not placed again."""
    sim.inject_fault("timeout", method="POST", path="/v1/calls", hold=30)
    async with client_for(sim, timeout=2) as client:
        call = await client.calls.create(from_=FROM, to=TO)
        assert client.stats.reconciled == 1
    assert [c.id for c in sim.calls(to=TO)] == [call.id]


async def test_failed_call_is_placed_once_on_retry(sim: Simulator) -> None:
    """A call refused with a 5xx before it was made is placed exactly once by the retry."""
    sim.inject_fault("error", method="POST", path="/v1/calls", status=503, times=2)
    async with client_for(sim) as client:
        call = await client.calls.create(from_=FROM, to=TO)
        assert client.stats.reconciled == 0
        assert client.stats.retries == 2
    assert [c.id for c in sim.calls(to=TO)] == [call.id]


async def test_unknown_outcome_is_not_retried(sim: Simulator) -> None:
    """When the look-up after a lost answer fails too, the client raises, never retries."""
    sim.inject_fault("lost_answer", method="POST", path="/v1/calls", status=502)
    sim.inject_fault("error", method="GET", path="/v1/calls", status=503, times=50)
    retry = RetryPolicy(max_retries=2, backoff_base=0.01, reconcile_delay=0.0)
    async with client_for(sim, retry=retry) as client:
        with pytest.raises(CallOutcomeUnknownError):
            await client.calls.create(from_=FROM, to=TO)
    assert len(sim.calls(to=TO)) == 1


async def test_earlier_call_not_mistaken_for_lost_one(sim: Simulator) -> None:
    """A call this client placed before is not taken for the one whose answer was lost."""
    async with client_for(sim) as client:
        first = await client.calls.create(from_=FROM, to=TO)
        sim.inject_fault("error", method="POST", path="/v1/calls", status=503)
        second = await client.calls.create(from_=FROM, to=TO)
    assert second.id != first.id
    assert len(sim.calls(to=TO)) == 2


async def test_many_lost_answers_no_duplicates(sim: Simulator) -> None:
    """With a third of answers lost, thirty callbacks to thirty numbers make thirty calls."""
    sim.config.faults.lost_answer_rate = 0.33
    numbers = [f"+4420794600{i:02d}" for i in range(30)]
    async with client_for(sim, retry=RetryPolicy(max_retries=8, backoff_base=0.01,
                                                 reconcile_delay=0.0)) as client:
        calls = await asyncio.gather(*(client.calls.create(from_=FROM, to=n) for n in numbers))
        assert client.stats.reconciled > 0
    sim.config.faults.lost_answer_rate = 0.0
    assert sorted(c.to for c in sim.calls()) == sorted(numbers)
    assert {c.id for c in calls} == {c.id for c in sim.calls()}


# rate limits


@pytest.fixture
def sim_config() -> SimConfig:
    config = fast_sim_config()
    config.timings.call_creation = 0.05
    return config


async def test_burst_stays_under_the_limit(sim: Simulator) -> None:
    """Three hundred requests at once are paced so that none gets a 429."""
    async with client_for(sim) as client:
        await asyncio.gather(*(client.account.retrieve() for _ in range(300)))
        assert client.stats.http_429 == 0
    assert sim.stats.http_429 == 0


async def test_call_creations_in_flight_capped(sim: Simulator) -> None:
    """Sixty calls at once never have more than 20 creations in flight, and none is refused."""
    async with client_for(sim) as client:
        await asyncio.gather(
            *(client.calls.create(from_=FROM, to=f"+4420794601{i:02d}") for i in range(60))
        )
        assert client.max_calls_in_flight == 20
    assert sim.stats.max_calls_in_flight <= 20
    assert sim.stats.http_429 == 0
    assert len(sim.calls()) == 60


async def test_unpaced_client_meets_the_servers_limits(sim: Simulator) -> None:
    """With its own limits off, a client collects 429s: the server enforces them too."""
    sim.config.limits.requests_per_second = 10
    sim.config.limits.burst = 20
    limits = RateLimits(enabled=False)
    retry = RetryPolicy(max_retries=0)
    async with client_for(sim, limits=limits, retry=retry) as client:
        results = await asyncio.gather(
            *(client.account.retrieve() for _ in range(60)), return_exceptions=True
        )
    refused = [r for r in results if isinstance(r, Exception)]
    assert refused
    assert all(getattr(r, "status", None) == 429 for r in refused)


async def test_follows_a_stricter_server(sim: Simulator) -> None:
    """Once it has read a lower X-RateLimit-Limit than its own, the client paces to it."""
    sim.config.limits.requests_per_second = 20
    # The server's burst is twice the client's: room for requests sent in pace to arrive
    # bunched on a loaded machine (a quarter of a second), not for a client at 100/s.
    sim.config.limits.burst = 10
    async with client_for(sim, limits=RateLimits(requests_per_second=100, burst=5)) as client:
        await client.account.retrieve()
        await asyncio.gather(*(client.account.retrieve() for _ in range(30)))
        assert client.stats.http_429 == 0


def test_timeout_error_is_a_connection_error() -> None:
    """A timeout is a kind of connection error: no answer came back."""
    assert issubclass(ApiTimeoutError, ApiConnectionError)
