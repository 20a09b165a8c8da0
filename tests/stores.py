"""A store of each engine for each test: a fresh SQLite file, a fresh PostgreSQL schema.

Without a PostgreSQL server at ``AGENTKIT_TEST_POSTGRES_URL`` the PostgreSQL tests
skip; with ``AGENTKIT_REQUIRE_POSTGRES=1`` (as CI runs) they fail instead.

Tests in parallel (pytest-xdist's workers, other runs) share the one server. A test
marked ``restarts_postgres`` has it to itself: it waits for the tests using it to
finish, and tests that ask for it meanwhile wait until the restart test is over.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from agentkit.store import Store
from agentkit.store.sqlite import SqliteStore

POSTGRES_URL = os.environ.get(
    "AGENTKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = "AGENTKIT_REQUIRE_POSTGRES"
RESTARTS = "restarts_postgres"
# Fixtures that restart the server, in test files that do not mark their tests themselves.
RESTARTING_FIXTURES = {"restartable_store"}

StoreFactory = Callable[[], Awaitable[Store]]


async def postgres_reachable() -> str | None:
    """None if PostgreSQL answers at POSTGRES_URL, else why not."""
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"no PostgreSQL at {POSTGRES_URL} ({type(exc).__name__}: {exc})"
    await conn.close()
    return None


def postgres_required() -> bool:
    """True when AGENTKIT_REQUIRE_POSTGRES asks for PostgreSQL tests to fail, not skip."""
    return os.environ.get(REQUIRE_POSTGRES, "").strip().lower() in {"1", "true", "yes", "on"}


class ServerTurns:
    """Who may use the PostgreSQL server now, across pytest processes on this machine.

    Two ``flock`` files in a folder named after the server, so that the workers of a
    run (pytest-xdist) and other runs at the same time all take turns: ``server``,
    held shared by each test using the server and exclusively by a test restarting
    it; and ``turnstile``, held by a restarting test while it waits, so that tests
    coming after it queue behind it instead of keeping the server busy forever. A
    test's turn ends with the test (``end``), after its fixtures dropped what they made.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: list[int] = []

    def _lock(self, name: str, how: int) -> int:
        self.folder.mkdir(exist_ok=True)
        descriptor = os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, how)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    def share(self) -> None:
        """Wait for a turn to use the server alongside other tests (blocking)."""
        if self._held:
            return
        os.close(self._lock("turnstile", fcntl.LOCK_EX))  # closing unlocks
        self._held.append(self._lock("server", fcntl.LOCK_SH))

    def alone(self) -> None:
        """Wait until no other test uses the server, and keep them off it (blocking)."""
        if self._held:
            raise RuntimeError("a test takes the PostgreSQL server alone before using it")
        self._held.append(self._lock("turnstile", fcntl.LOCK_EX))
        self._held.append(self._lock("server", fcntl.LOCK_EX))

    def end(self) -> None:
        """The test is over: let others have the server."""
        while self._held:
            os.close(self._held.pop())


def _server_turns() -> ServerTurns:
    parts = urlsplit(POSTGRES_URL)
    server = f"{parts.hostname or 'localhost'}-{parts.port or 5432}"
    return ServerTurns(Path(tempfile.gettempdir()) / f"agentkit-tests-postgres-{server}")


TURNS = _server_turns()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that restart the server through one of RESTARTING_FIXTURES."""
    for item in items:
        if RESTARTING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(RESTARTS)


@pytest.fixture(autouse=True)
def _postgres_turn(request: pytest.FixtureRequest) -> Iterator[None]:
    """A restarting test waits for the server to itself; every test gives its turn back.

    Autouse, so set up before and torn down after the fixtures that use the server.
    """
    if request.node.get_closest_marker(RESTARTS):
        TURNS.alone()
    try:
        yield
    finally:
        TURNS.end()


async def need_postgres() -> None:
    """Skip the calling test without a PostgreSQL server, or fail it if one is required.

    Otherwise wait for the test's turn at the server (see ServerTurns).
    """
    await asyncio.to_thread(TURNS.share)
    reason = await postgres_reachable()
    if reason is None:
        return
    if postgres_required():
        pytest.fail(f"PostgreSQL tests need a server: {reason}; {REQUIRE_POSTGRES} is set, "
                    "so this fails instead of skipping", pytrace=False)
    pytest.skip(f"PostgreSQL tests need a server: {reason}")


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    """Opens stores of one engine on one database; every store it opens is closed after."""
    opened: list[Store] = []
    schema = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "postgres":
        await need_postgres()
        from agentkit.store.postgres import PostgresStore

        def build() -> Store:
            return PostgresStore(POSTGRES_URL, schema=schema)
    else:

        def build() -> Store:
            return SqliteStore(tmp_path / "agentkit.db")

    async def factory() -> Store:
        store = build()
        await store.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()
    if request.param == "postgres":
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> Store:
    """An open store of the engine under test."""
    return await make_store()


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new PostgreSQL database for one run, dropped after it; yields its URL."""
    name = f"agentkit_t_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    finally:
        admin = await _connect_with_patience(POSTGRES_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _connect_with_patience(url: str) -> asyncpg.Connection:
    """A connection, waiting out a PostgreSQL restarted by a test."""
    from agentkit.testing import wait_until

    async def connect() -> asyncpg.Connection | None:
        try:
            return await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return None

    connection: asyncpg.Connection = await wait_until(
        connect, timeout=60, interval=0.2, message="PostgreSQL to take connections"
    )
    return connection


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test (see need_postgres), dropped after."""
    await need_postgres()
    async with fresh_database() as url:
        yield url
