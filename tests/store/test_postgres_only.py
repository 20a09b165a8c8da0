"""PostgreSQL-only behaviour of the store: errors, schema checks, a server restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import pytest

from agentkit.store import NewEvent, StoreError, StoreUnavailable
from agentkit.store.postgres import PostgresStore
from agentkit.store.schema import CURRENT_VERSION
from agentkit.testing import wait_until
from tests.stores import POSTGRES_URL, need_postgres, postgres_reachable

CLUSTERS = "/etc/postgresql"


def event(name: str) -> NewEvent:
    return NewEvent(id=f"evt_{name}", type="call.completed", created_at=datetime.now(UTC),
                    call_id="cal_1", body=b"{}", routable=True)


def cluster_version() -> str | None:
    """The one PostgreSQL version pg_ctlcluster manages here, or None."""
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir(CLUSTERS):
        return None
    versions = os.listdir(CLUSTERS)
    return versions[0] if len(versions) == 1 else None


async def pg_ctlcluster(action: str) -> tuple[int, str]:
    """Run ``pg_ctlcluster <version> main <action>``; its exit code and output."""
    version = cluster_version()
    assert version is not None
    proc = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace").strip()


async def why_not_restartable() -> str | None:
    """None if the test may restart the PostgreSQL at POSTGRES_URL, else why not."""
    if reason := await postgres_reachable():
        return reason
    if urlsplit(POSTGRES_URL).hostname not in {"127.0.0.1", "localhost", "::1"}:
        return f"{POSTGRES_URL} is not a local server this test could restart"
    if cluster_version() is None:
        return f"it needs pg_ctlcluster and exactly one PostgreSQL version in {CLUSTERS}"
    code, out = await pg_ctlcluster("status")
    if code != 0:
        return f"pg_ctlcluster cannot control the main cluster here: {out}"
    return None


async def ensure_running() -> None:
    """Start the server if it is down, and wait until it answers."""
    if await postgres_reachable() is None:
        return
    await pg_ctlcluster("start")
    await wait_until(_reachable, timeout=60, interval=0.1,
                     message="PostgreSQL to answer after starting it")


async def _reachable() -> bool:
    return await postgres_reachable() is None


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A fresh schema name on the test server, dropped after the test."""
    await need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    conn = await asyncpg.connect(POSTGRES_URL)
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await conn.close()


@pytest.fixture
async def restartable_store() -> AsyncIterator[PostgresStore]:
    """An open store in a fresh schema on a local server the test may restart."""
    await need_postgres()
    if reason := await why_not_restartable():
        pytest.skip(f"the restart test needs a local PostgreSQL it may restart: {reason}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(POSTGRES_URL, schema=schema, connect_timeout=2)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        await ensure_running()
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


async def test_store_recovers_across_a_restart(restartable_store: PostgresStore) -> None:
    """Calls during a restart fail only with StoreUnavailable; after it, the same store works."""
    store = restartable_store
    assert await store.add_events([event("before")]) == [True]
    acknowledged: list[str] = []
    failures: list[Exception] = []
    restart = asyncio.create_task(pg_ctlcluster("restart"))
    try:
        n = 0
        while not restart.done():
            n += 1
            try:
                if await store.add_events([event(f"during_{n}")]) == [True]:
                    acknowledged.append(f"evt_during_{n}")
            except Exception as exc:
                failures.append(exc)
            await asyncio.wait([restart], timeout=0.01)
        code, out = await restart
        assert code == 0, f"pg_ctlcluster restart failed: {out}"

        async def stored_again() -> bool:
            try:
                await store.add_events([event("after")])
            except StoreUnavailable as exc:
                failures.append(exc)
                return False
            return True

        await wait_until(stored_again, timeout=30, interval=0.05,
                         message="the store to take events again after the restart")
    finally:
        await asyncio.gather(restart, return_exceptions=True)
        await ensure_running()

    wrong = [f"{type(f).__name__}: {f}" for f in failures if not isinstance(f, StoreUnavailable)]
    assert wrong == [], "calls during the restart raised something else than StoreUnavailable"
    assert failures, "no call saw the server down: the restart was not exercised"
    # Refused ("PostgreSQL at ... is unavailable") or, on a slow machine, not connected in
    # time ("no connection to PostgreSQL at ..."): either way it names the server.
    assert all("PostgreSQL at " in str(f) for f in failures)
    assert await store.get_event("evt_before") is not None
    assert await store.get_event("evt_after") is not None
    for event_id in acknowledged:
        assert await store.get_event(event_id) is not None, f"{event_id} acknowledged, then lost"
    await store.ping()


async def test_unreachable_server_is_unavailable() -> None:
    """Opening a store on a port nobody listens on raises StoreUnavailable, naming where."""
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    with pytest.raises(StoreUnavailable, match=r"PostgreSQL at 127\.0\.0\.1:1/test"):
        await store.open()
    with pytest.raises(StoreUnavailable, match="not open"):
        await store.ping()


def test_schema_name_is_checked() -> None:
    """A schema name that is not a plain identifier is refused before any SQL is built."""
    with pytest.raises(StoreError, match="not a plain identifier"):
        PostgresStore(POSTGRES_URL, schema='x"; DROP TABLE events; --')


async def test_newer_schema_is_refused(pg_schema: str) -> None:
    """A schema migrated by a newer agentkit makes open() fail, telling to upgrade."""
    store = PostgresStore(POSTGRES_URL, schema=pg_schema)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(POSTGRES_URL)
    await conn.execute(f"UPDATE {pg_schema}.agentkit_schema SET version = $1",
                       CURRENT_VERSION + 1)
    await conn.close()
    with pytest.raises(StoreError, match="upgrade agentkit"):
        await PostgresStore(POSTGRES_URL, schema=pg_schema).open()


async def test_exhausted_pool_is_unavailable(pg_schema: str) -> None:
    """A call that waits too long for a free connection raises StoreUnavailable, not a timeout."""
    # Long enough to open the pool on a slow machine; the wait below then runs it out.
    store = PostgresStore(POSTGRES_URL, schema=pg_schema, max_connections=1,
                          connect_timeout=1.0)
    await store.open()
    blocker = await asyncpg.connect(POSTGRES_URL)
    try:
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute(f"LOCK TABLE {pg_schema}.jobs")
        stuck = asyncio.create_task(store.job_counts())
        await wait_until(
            lambda: blocker.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"),
            message="the store's only connection to wait on the lock",
        )
        with pytest.raises(StoreUnavailable, match=r"no connection .* within 1\.0 s"):
            await store.count_events()
        await locked.rollback()
        assert (await stuck)["pending"] == 0
        assert await store.count_events() == 0
    finally:
        await blocker.close()
        await store.close()
