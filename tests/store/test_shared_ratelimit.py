"""Rate limits shared through PostgreSQL: several processes' clients spend one key's budget."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from agentkit import OdygyClient, RateLimits, RetryPolicy
from agentkit.errors import ConfigError
from agentkit.odygy.ratelimit import ClientRateLimiter
from agentkit.service import RunOptions, Service
from agentkit.settings import Secret, Settings
from agentkit.sim import Simulator
from agentkit.sim.config import SimConfig, Timings
from agentkit.store.postgres import PostgresStore
from agentkit.store.ratelimit import PostgresRateLimiter, budget_name
from agentkit.testing import fast_sim_config, wait_until
from tests.stores import POSTGRES_URL, need_postgres

FROM = "+40264000111"
KEY = "ps_test_shared_budget_key_1"
OTHER_KEY = "ps_test_shared_budget_key_2"
# Nothing refills within a test: what the burst holds is all there is.
SLOW = RateLimits(requests_per_second=0.05, burst=2, headroom=0, burst_headroom=0)

LimiterFactory = Callable[..., Awaitable[PostgresRateLimiter]]


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema with the store's tables (migrated), dropped after the test."""
    await need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(POSTGRES_URL, schema=schema)
    await store.open()
    await store.close()
    yield schema
    conn = await asyncpg.connect(POSTGRES_URL)
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await conn.close()


@pytest.fixture
async def make_limiter(pg_schema: str) -> AsyncIterator[LimiterFactory]:
    """Opens limiters on the test's schema, each with its own pool as a process would have."""
    opened: list[PostgresRateLimiter] = []

    async def factory(api_key: str = KEY, **kwargs: object) -> PostgresRateLimiter:
        limiter = PostgresRateLimiter(POSTGRES_URL, api_key=api_key, schema=pg_schema,
                                      **kwargs)  # type: ignore[arg-type]
        await limiter.open()
        opened.append(limiter)
        return limiter

    yield factory
    for limiter in opened:
        await limiter.aclose()


async def fetch(schema: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def times_out(work: Awaitable[object], seconds: float = 0.5) -> bool:
    try:
        await asyncio.wait_for(work, seconds)
    except TimeoutError:
        return True
    return False


@pytest.fixture
def sim_config() -> SimConfig:
    """phone.systems' own limits, with call creations slow enough to pile up."""
    return fast_sim_config(timings=Timings(call_creation=0.05))


async def test_three_processes_stay_under_one_budget(
    sim: Simulator, make_limiter: LimiterFactory
) -> None:
    """Three clients, each limiter with a pool of its own, send past the burst without a 429."""
    clients = [
        OdygyClient(api_key=sim.api_key, base_url=sim.base_url,
                    limiter=await make_limiter(sim.api_key), retry=RetryPolicy(max_retries=0))
        for _ in range(3)
    ]

    async def work(client: OdygyClient, n: int) -> None:
        if n % 3 == 0:
            await client.calls.create(from_=FROM, to=f"+44207946{n % 1000:04d}")
        else:
            await client.account.retrieve()

    async def drive(client: OdygyClient) -> None:
        jobs = list(range(150))
        while jobs:
            batch, jobs = jobs[:40], jobs[40:]
            await asyncio.gather(*(work(client, n) for n in batch))

    try:
        await asyncio.gather(*(drive(c) for c in clients))
    finally:
        for client in clients:
            await client.aclose()
    assert sim.stats.requests == 450
    assert sim.stats.http_429 == 0
    assert 1 <= sim.stats.max_calls_in_flight <= 20


async def test_call_slots_are_shared(make_limiter: LimiterFactory) -> None:
    """Slots one process holds are missing to another until it frees them."""
    limits = RateLimits(max_call_creations=2)
    first, second = await make_limiter(limits=limits), await make_limiter(limits=limits)
    entered, done = asyncio.Event(), asyncio.Event()

    async def create() -> None:
        async with second.call_creation():
            entered.set()
            await done.wait()

    task: asyncio.Task[None] | None = None
    try:
        async with first.call_creation(), first.call_creation():
            assert first.calls_in_flight == 2
            # Only now: started earlier, the second process could take a slot first.
            task = asyncio.create_task(create())
            assert await times_out(asyncio.shield(entered.wait()))
        await asyncio.wait_for(entered.wait(), 10)
        assert second.calls_in_flight == 1
    finally:
        done.set()
        if task is not None:
            await asyncio.wait_for(task, 10)


async def test_a_killed_holders_slot_is_reclaimed(
    make_limiter: LimiterFactory, pg_schema: str, tmp_path: Path
) -> None:
    """A process killed (SIGKILL) while holding a slot loses it once its lease expires."""
    script = tmp_path / "holder.py"
    script.write_text(
        "import asyncio, sys\n"
        "from agentkit import RateLimits\n"
        "from agentkit.store.ratelimit import PostgresRateLimiter\n"
        "async def main():\n"
        f"    limiter = PostgresRateLimiter({POSTGRES_URL!r}, api_key={KEY!r}, "
        f"schema={pg_schema!r}, limits=RateLimits(max_call_creations=1), slot_lease=1.0)\n"
        "    await limiter.open()\n"
        "    async with limiter.call_creation():\n"
        "        print('holding', flush=True)\n"
        "        await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    holder = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert holder.stdout is not None
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"holding\n"
        rows = await fetch(pg_schema, "SELECT holder FROM call_slots WHERE expires_at > now()")
        assert len(rows) == 1
    finally:
        holder.kill()
        await holder.wait()
    survivor = await make_limiter(limits=RateLimits(max_call_creations=1))
    async with asyncio.timeout(15):
        async with survivor.call_creation():
            rows = await fetch(pg_schema, "SELECT holder FROM call_slots WHERE holder IS NOT NULL")
            assert [r["holder"] for r in rows] == [survivor.holder]


async def test_a_live_holder_keeps_its_slot(make_limiter: LimiterFactory) -> None:
    """A process that holds a slot past its lease renews it, so no other process takes it."""
    limits = RateLimits(max_call_creations=1)
    holder = await make_limiter(limits=limits, slot_lease=0.3)
    other = await make_limiter(limits=limits, slot_lease=0.3)

    async def create() -> None:
        async with other.call_creation():
            pass

    async with holder.call_creation():
        assert await times_out(create(), 1.5)


async def test_a_429_pause_reaches_every_process(
    make_limiter: LimiterFactory, pg_schema: str
) -> None:
    """After one process is told to pause, no process gets a token until the pause is over."""
    paused, other = await make_limiter(), await make_limiter()
    await asyncio.wait_for(other.acquire(), 10)
    paused.pause(30)
    await wait_until(
        lambda: fetch(pg_schema, "SELECT 1 FROM rate_buckets WHERE paused_until > now()"),
        timeout=10, message="the pause to reach the database",
    )
    assert await times_out(other.acquire())
    late = await make_limiter()
    assert await times_out(late.acquire())


async def test_one_key_one_budget(make_limiter: LimiterFactory) -> None:
    """Two processes with the same key draw on one bucket."""
    first, second = await make_limiter(limits=SLOW), await make_limiter(limits=SLOW)
    await asyncio.wait_for(first.acquire(), 10)
    await asyncio.wait_for(second.acquire(), 10)
    assert await times_out(first.acquire())
    assert await times_out(second.acquire())


async def test_different_keys_get_separate_budgets(
    make_limiter: LimiterFactory, pg_schema: str
) -> None:
    """A key that spent its budget does not hold back another key on the same database."""
    spent = await make_limiter(KEY, limits=SLOW)
    other = await make_limiter(OTHER_KEY, limits=SLOW)
    for _ in range(2):
        await asyncio.wait_for(spent.acquire(), 10)
    assert await times_out(spent.acquire())
    for _ in range(2):
        await asyncio.wait_for(other.acquire(), 10)
    names = {r["name"] for r in await fetch(pg_schema, "SELECT name FROM rate_buckets")}
    assert names == {budget_name(KEY), budget_name(OTHER_KEY)}


async def test_the_key_is_not_stored(make_limiter: LimiterFactory, pg_schema: str) -> None:
    """Budget rows are named by a hash of the key; the key itself appears nowhere."""
    limiter = await make_limiter()
    async with limiter.call_creation():
        await limiter.acquire()
    rows = await fetch(pg_schema, "SELECT name FROM rate_buckets UNION ALL "
                                  "SELECT name || coalesce(holder, '') FROM call_slots")
    assert rows
    assert not any(KEY in r["name"] for r in rows)


async def test_server_headers_cap_the_shared_bucket(
    make_limiter: LimiterFactory, pg_schema: str
) -> None:
    """A server saying no requests remain empties the bucket every process draws on."""
    limiter = await make_limiter()
    loop = asyncio.get_running_loop()
    limiter.observe({"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0"}, loop.time())
    await asyncio.wait_for(limiter.acquire(), 10)
    rows = await fetch(pg_schema, "SELECT tokens FROM rate_buckets")
    assert rows[0]["tokens"] < 5


async def test_client_takes_limits_or_a_limiter(make_limiter: LimiterFactory) -> None:
    """Giving the client both its own limits and a shared limiter is a configuration mistake."""
    limiter = await make_limiter()
    with pytest.raises(ConfigError, match="not both"):
        OdygyClient(api_key=KEY, limits=RateLimits(), limiter=limiter)


async def start_service(url: str) -> Service:
    settings = Settings(api_key=Secret(KEY), webhook_secrets=(Secret("whsec_x"),),
                        database_url=url)
    service = Service(settings, RunOptions(port=0, role="receiver"))
    await service.start()
    return service


async def test_service_shares_limits_on_postgres(database: str) -> None:
    """agentkit run on PostgreSQL gives its client the limiter shared through the database."""
    service = await start_service(database)
    try:
        assert service.client is not None
        assert isinstance(service.limiter, PostgresRateLimiter)
        assert service.client._transport.limiter is service.limiter
    finally:
        await service.stop()


async def test_service_keeps_its_own_limits_on_sqlite(tmp_path: Path) -> None:
    """agentkit run on SQLite (one process) keeps the client's limits in memory."""
    service = await start_service(f"sqlite:///{tmp_path / 'agentkit.db'}")
    try:
        assert service.client is not None
        assert service.limiter is None
        assert isinstance(service.client._transport.limiter, ClientRateLimiter)
    finally:
        await service.stop()
