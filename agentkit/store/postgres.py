"""The PostgreSQL engine (asyncpg): for several workers on several machines.

Every time the store keeps (receipt, leases, updates) is the database's clock,
so workers on machines with drifting clocks agree on what is due. Leasing
locks the rows it takes (``FOR UPDATE SKIP LOCKED``), so any number of workers
can lease at once without sharing a job or waiting on each other.

A connection the server dropped (a restart, a failover) surfaces as
StoreUnavailable; the pool replaces it, so later calls work again by themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Any, NoReturn, Protocol, TypeVar
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from agentkit.store.base import (
    ActionRecord,
    ActionState,
    BotRun,
    CachedAnswer,
    Job,
    JobRecord,
    JobSpec,
    JoinState,
    LeaseKinds,
    NewEvent,
    PlacedCall,
    Store,
    StoredEvent,
    StoreError,
    StoreUnavailable,
)
from agentkit.store.schema import LEASE_KINDS, NOT_BLOCKED, POSTGRES_MIGRATIONS

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_CLOSE_TIMEOUT = 10.0

_pg = asyncpg.exceptions

# The connection went away under us (or asyncpg lost track of it, as when the
# server ends an idle session): nothing was done if it happens on BEGIN.
_LOST: tuple[type[BaseException], ...] = (
    ConnectionError,
    _pg.InternalClientError,
    _pg.PostgresConnectionError,
    _pg.AdminShutdownError,
    _pg.CrashShutdownError,
    _pg.IdleSessionTimeoutError,
)

# The server cannot serve us right now, but may soon: try again later.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    *_LOST,
    OSError,
    TimeoutError,
    _pg.PostgresConnectionError,
    _pg.OperatorInterventionError,
    _pg.InsufficientResourcesError,
    _pg.TransactionRollbackError,
    _pg.LockNotAvailableError,
    _pg.ReadOnlySQLTransactionError,
)

_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

_JOB_COLUMNS = (
    "j.id, j.kind, j.event_id, j.seq, j.call_id, j.bot, j.name, j.payload, j.attempts, "
    "j.max_attempts, j.run_at, j.lease_owner, j.last_error"
)


_DEAD_LETTER_LOST = """
    UPDATE jobs SET state = 'dead', lease_owner = NULL, updated_at = now(),
        last_error = 'its worker stopped during the last attempt (lease expired)'
    WHERE id IN (
        SELECT id FROM jobs
        WHERE state = 'running' AND lease_expires_at < now() AND attempts >= max_attempts
        FOR UPDATE SKIP LOCKED)
"""

def _lease_sql(kinds: str) -> str:
    # Expired leases first, then pending jobs: two index-friendly reads rather
    # than one OR that reads and sorts every open job.
    kind = LEASE_KINDS[kinds]
    return f"""
    WITH expired AS (
        SELECT j.id FROM jobs j
        WHERE j.state = 'running' AND j.lease_expires_at < now() AND {kind} AND {NOT_BLOCKED}
        ORDER BY j.run_at, j.id
        LIMIT $2
        FOR UPDATE OF j SKIP LOCKED
    ), pending AS (
        SELECT j.id FROM jobs j
        WHERE j.state = 'pending' AND {kind} AND j.run_at <= now() AND {NOT_BLOCKED}
        ORDER BY j.run_at, j.id
        LIMIT $2
        FOR UPDATE OF j SKIP LOCKED
    ), due AS (
        (SELECT id FROM expired) UNION ALL (SELECT id FROM pending) LIMIT $2
    ), taken AS (
        UPDATE jobs j SET state = 'running', lease_owner = $1,
            lease_expires_at = now() + $3::float8 * interval '1 second',
            attempts = j.attempts + 1, updated_at = now()
        FROM due WHERE j.id = due.id
        RETURNING {_JOB_COLUMNS}
    )
    SELECT t.*, e.body FROM taken t JOIN events e ON e.id = t.event_id ORDER BY t.run_at, t.id
"""


_LEASE = {kinds: _lease_sql(kinds) for kinds in LEASE_KINDS}

_FINISH_MANY = """
    UPDATE jobs j SET state = 'done', lease_owner = NULL, lease_expires_at = NULL,
        updated_at = now()
    FROM unnest($1::bigint[], $2::text[], $3::int[]) AS h(id, owner, attempts)
    WHERE j.id = h.id AND j.state = 'running' AND j.lease_owner = h.owner
      AND j.attempts = h.attempts
    RETURNING j.id
"""

_ADD_EVENTS = """
    WITH new AS (
        INSERT INTO events (id, type, created_at, received_at, call_id, routable, body)
        SELECT u.id, u.type, u.created_at, now(), u.call_id, u.routable, u.body
        FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bool[],
                    $6::bytea[]) WITH ORDINALITY AS u(id, type, created_at, call_id, routable,
                                                      body, n)
        ORDER BY u.n
        ON CONFLICT (id) DO NOTHING
        RETURNING id, seq, call_id, routable
    ), routes AS (
        INSERT INTO jobs (kind, event_id, seq, call_id, state, max_attempts, run_at,
                          created_at, updated_at)
        SELECT 'route', id, seq, call_id, 'pending', $7, now(), now(), now()
        FROM new WHERE routable ORDER BY seq
    )
    SELECT id FROM new
"""

_INSERT_JOBS = """
    INSERT INTO jobs (kind, event_id, seq, call_id, bot, name, payload, state, max_attempts,
                      run_at, created_at, updated_at)
    SELECT s.kind, e.id, e.seq, e.call_id, s.bot, s.name, s.payload::jsonb, 'pending',
           s.max_attempts, COALESCE(s.run_at, now()), now(), now()
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                $7::timestamptz[]) WITH ORDINALITY
         AS s(kind, event_id, bot, name, payload, max_attempts, run_at, n)
    JOIN events e ON e.id = s.event_id
    ORDER BY s.n
    ON CONFLICT DO NOTHING
    RETURNING id, event_id, kind, COALESCE(bot, ''), name
"""

_EXISTING_JOBS = """
    SELECT id, event_id, kind, COALESCE(bot, ''), name FROM jobs
    WHERE (event_id, kind, COALESCE(bot, ''), name) IN (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]))
"""

_ACTION_COLUMNS = "key, event_id, bot, kind, state, detail, created_at, updated_at"
_BOT_RUN_COLUMNS = (
    "job_id, event_id, bot, attempt, started_at, finished_at, outcome, error, "
    "prompt_tokens, completion_tokens, cost_usd"
)


class _Connection(Protocol):
    """The part of asyncpg's Connection this module uses (asyncpg has no type hints)."""

    async def execute(self, query: str, *args: Any) -> str: ...
    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    def transaction(self) -> Any: ...
    def is_closed(self) -> bool: ...
    def terminate(self) -> None: ...


class PostgresStore(Store):
    """The store in a PostgreSQL database, optionally in a schema of its own."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        max_attempts: int = Store.default_max_attempts,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise StoreError(
                f"PostgreSQL schema name {schema!r} is not a plain identifier: "
                "use letters, digits and underscores, not starting with a digit"
            )
        self._url = url
        self.schema = schema
        self.default_max_attempts = max_attempts
        self._min_connections = min_connections
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: Any = None
        parts = urlsplit(url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        if schema:
            self._where += f" (schema {schema})"

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    @property
    def url(self) -> str:
        """The database URL the store connects to (for others sharing the database)."""
        return self._url

    # connections and transactions

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"search_path": f'"{self.schema}"'} if self.schema else {}
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._min_connections,
                max_size=self._max_connections,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings=settings,
                reset=keep_session,
            )
        except Exception as exc:
            self._raise(exc)
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
        except Exception:
            pool.terminate()

    def _raise(self, exc: BaseException) -> NoReturn:
        """Raise ``exc`` as a StoreError if it is the database's or the network's, else as is."""
        error = self._translate(exc)
        if error is exc:
            raise exc
        raise error from None

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, TimeoutError):
            return StoreUnavailable(
                f"no connection to PostgreSQL at {self._where} within {self._connect_timeout} s "
                f"(it is down or slow, or all {self._max_connections} connections are busy); "
                "try again later"
            )
        if isinstance(exc, _UNAVAILABLE) or _closed_error(exc):
            return StoreUnavailable(
                f"PostgreSQL at {self._where} is unavailable "
                f"({type(exc).__name__}: {exc}); try again later"
            )
        if isinstance(exc, _DATABASE_ERRORS):
            return StoreError(
                f"PostgreSQL at {self._where} refused the operation ({type(exc).__name__}: {exc})"
            )
        return exc

    async def _acquire(self) -> _Connection:
        if self._pool is None:
            raise StoreUnavailable(f"the PostgreSQL store at {self._where} is not open")
        try:
            conn: _Connection = await self._pool.acquire(timeout=self._connect_timeout)
        except Exception as exc:
            self._raise(exc)
        return conn

    async def _release(self, conn: _Connection, *, broken: bool = False) -> None:
        """Give a connection back to the pool, closed first if it is ``broken``."""
        try:
            if broken or self._pool is None:
                conn.terminate()
            else:
                await self._pool.release(conn)
        except Exception:
            with suppress(Exception):
                conn.terminate()

    async def _retrying(
        self, work: Callable[[_Connection], Awaitable[T]], *, keep: bool = False,
        again: bool = True,
    ) -> tuple[_Connection, T]:
        """Run ``work`` on a pooled connection, again on another while connections turn out dead.

        Run again only work that changes nothing (BEGIN, a read); ``again=False``
        for the rest. With ``keep`` the connection stays acquired, for the caller
        to release.
        """
        attempt = 0
        while True:
            conn = await self._acquire()
            try:
                result = await work(conn)
            except Exception as exc:
                lost = _lost_connection(exc)
                await self._release(conn, broken=lost)
                if not lost or not again or attempt >= self._max_connections:
                    self._raise(exc)
                attempt += 1
                continue
            except BaseException:
                await self._release(conn, broken=True)
                raise
            if not keep:
                await self._release(conn)
            return conn, result

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Connection]:
        """One transaction; on any failure it is rolled back and raised as a StoreError."""
        conn, tx = await self._retrying(_begin, keep=True)
        try:
            yield conn
            await tx.commit()
        except BaseException as exc:
            await _roll_back(conn, tx)
            self._raise(exc)
        finally:
            await self._release(conn)

    async def _write_one(self, work: Callable[[_Connection], Awaitable[T]]) -> T:
        """Run one statement that changes something, as a transaction of its own.

        Two round trips fewer than BEGIN ... COMMIT. Never run again on another
        connection: a lost answer may mean the change was made.
        """
        _, result = await self._retrying(work, again=False)
        return result

    async def _read(self, work: Callable[[_Connection], Awaitable[T]]) -> T:
        """Run a read outside a transaction."""
        _, result = await self._retrying(work)
        return result

    async def _migrate(self) -> None:
        key = int.from_bytes(
            hashlib.blake2b(f"agentkit:{self.schema or ''}".encode(), digest_size=8).digest(),
            "big", signed=True,
        )
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
            if self.schema and not await conn.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema
            ):
                await conn.execute(f'CREATE SCHEMA "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS agentkit_schema (version INTEGER NOT NULL)"
            )
            version = await conn.fetchval("SELECT version FROM agentkit_schema")
            if version is None:
                version = 0
                await conn.execute("INSERT INTO agentkit_schema (version) VALUES (0)")
            if version > len(POSTGRES_MIGRATIONS):
                raise StoreError(
                    f"the store's schema is version {version}, newer than this agentkit knows "
                    f"({len(POSTGRES_MIGRATIONS)}): upgrade agentkit"
                )
            for number, script in enumerate(POSTGRES_MIGRATIONS[version:], start=version + 1):
                await conn.execute(script)
                await conn.execute("UPDATE agentkit_schema SET version = $1", number)

    async def schema_version(self) -> int:
        version = await self._read(lambda c: c.fetchval("SELECT version FROM agentkit_schema"))
        return int(version)

    async def ping(self) -> None:
        async with self._transaction() as conn:
            read_only = await conn.fetchval(
                "SELECT current_setting('transaction_read_only'), "
                "(SELECT count(*) FROM agentkit_schema)"
            )
        if read_only != "off":
            raise StoreUnavailable(
                f"PostgreSQL at {self._where} is read-only (a standby?); it cannot store events"
            )

    # events

    async def add_events(self, events: Sequence[NewEvent]) -> list[bool]:
        if not events:
            return []
        # In id order, so that two processes writing overlapping batches (racing
        # redeliveries) take row locks in one order and never deadlock. Ids are
        # time-ordered, so this is close to arrival order too.
        ordered = sorted(events, key=lambda e: e.id)
        async with self._transaction() as conn:
            rows = await conn.fetch(
                _ADD_EVENTS,
                [e.id for e in ordered], [e.type for e in ordered],
                [e.created_at for e in ordered], [e.call_id for e in ordered],
                [e.routable for e in ordered], [e.body for e in ordered],
                self.default_max_attempts,
            )
        inserted = {row[0] for row in rows}
        seen: set[str] = set()
        fresh = []
        for event in events:
            fresh.append(event.id in inserted and event.id not in seen)
            seen.add(event.id)
        return fresh

    async def get_event(self, event_id: str) -> StoredEvent | None:
        r = await self._read(lambda c: c.fetchrow(
            "SELECT id, seq, type, created_at, received_at, call_id, body, routable "
            "FROM events WHERE id = $1", event_id,
        ))
        if r is None:
            return None
        return StoredEvent(id=r[0], seq=r[1], type=r[2], created_at=r[3], received_at=r[4],
                           call_id=r[5], body=bytes(r[6]), routable=r[7])

    async def count_events(self) -> int:
        return int(await self._read(lambda c: c.fetchval("SELECT COUNT(*) FROM events")))

    # jobs

    async def lease(self, owner: str, limit: int, lease_seconds: float, *,
                    kinds: LeaseKinds = "all") -> list[Job]:
        if limit <= 0:
            return []
        async with self._transaction() as conn:
            await conn.execute(_DEAD_LETTER_LOST)
            rows = await conn.fetch(_LEASE[kinds], owner, limit, lease_seconds)
        return [_job(row) for row in rows]

    async def _guarded(self, job: Job, sql: str, *params: Any) -> bool:
        return await self._write_one(lambda conn: self._guarded_on(conn, job, sql, *params))

    @staticmethod
    async def _guarded_on(conn: _Connection, job: Job, sql: str, *params: Any) -> bool:
        n = len(params)
        changed = await conn.fetchval(
            f"{sql} WHERE id = ${n + 1} AND state = 'running' AND lease_owner = ${n + 2} "
            f"AND attempts = ${n + 3} RETURNING id",
            *params, job.id, job.lease_owner, job.attempts,
        )
        return changed is not None

    async def extend(self, job: Job, lease_seconds: float) -> bool:
        return await self._guarded(
            job, "UPDATE jobs SET lease_expires_at = now() + $1::float8 * interval '1 second', "
            "updated_at = now()", lease_seconds,
        )

    async def finish(self, job: Job, *, follow_ups: Sequence[JobSpec] = ()) -> bool:
        async with self._transaction() as conn:
            ok = await self._guarded_on(
                conn, job, "UPDATE jobs SET state = 'done', lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = now()",
            )
            if ok and follow_ups:
                await self._insert_jobs(conn, follow_ups)
            return ok

    async def finish_many(self, done: Sequence[tuple[Job, Sequence[JobSpec]]]) -> list[bool]:
        if not done:
            return []
        async with self._transaction() as conn:
            rows = await conn.fetch(
                _FINISH_MANY, [job.id for job, _ in done],
                [job.lease_owner for job, _ in done], [job.attempts for job, _ in done],
            )
            finished = {int(row[0]) for row in rows}
            follow_ups = [spec for job, specs in done if job.id in finished for spec in specs]
            if follow_ups:
                await self._insert_jobs(conn, follow_ups)
        return [job.id in finished for job, _ in done]

    async def retry(self, job: Job, error: str, run_at: datetime) -> bool:
        return await self._guarded(
            job, "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, "
            "run_at = $1, last_error = $2, updated_at = now()", run_at, error,
        )

    async def dead_letter(self, job: Job, error: str) -> bool:
        return await self._guarded(
            job, "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_expires_at = NULL, "
            "last_error = $1, updated_at = now()", error,
        )

    async def hand_back(self, job: Job) -> bool:
        return await self._guarded(
            job, "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, "
            "attempts = attempts - 1, run_at = now(), updated_at = now()",
        )

    async def add_jobs(self, jobs: Sequence[JobSpec]) -> list[int]:
        if not jobs:
            return []
        # One INSERT; the look-up of jobs that were there already reads committed rows.
        return await self._write_one(lambda conn: self._insert_jobs(conn, jobs))

    async def _insert_jobs(self, conn: _Connection, jobs: Sequence[JobSpec]) -> list[int]:
        keys = [(s.event_id, s.kind, s.bot or "", s.name) for s in jobs]
        rows = await conn.fetch(
            _INSERT_JOBS,
            [s.kind for s in jobs], [s.event_id for s in jobs], [s.bot for s in jobs],
            [s.name for s in jobs], [json.dumps(s.payload) for s in jobs],
            [s.max_attempts or self.default_max_attempts for s in jobs],
            [s.run_at for s in jobs],
        )
        ids = {(r[1], r[2], r[3], r[4]): int(r[0]) for r in rows}
        missing = [key for key in keys if key not in ids]
        if missing:
            columns = [list(column) for column in zip(*missing, strict=True)]
            rows = await conn.fetch(_EXISTING_JOBS, *columns)
            ids.update({(r[1], r[2], r[3], r[4]): int(r[0]) for r in rows})
        for key in keys:
            if key not in ids:
                raise StoreError(f"no event {key[0]!r} to attach a job to")
        return [ids[key] for key in keys]

    async def job_counts(self) -> dict[str, int]:
        rows = await self._read(
            lambda c: c.fetch("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        )
        counts = {"pending": 0, "running": 0, "done": 0, "dead": 0}
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    async def jobs_for_event(self, event_id: str) -> list[JobRecord]:
        rows = await self._read(lambda c: c.fetch(
            "SELECT id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, "
            "last_error FROM jobs WHERE event_id = $1 ORDER BY id", event_id,
        ))
        return [_record(r) for r in rows]

    async def jobs_in_state(self, state: str, limit: int = 100) -> list[JobRecord]:
        rows = await self._read(lambda c: c.fetch(
            "SELECT id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, "
            "last_error FROM jobs WHERE state = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
            state, limit,
        ))
        return [_record(r) for r in rows]

    async def count_due(self, within: float = 0.0) -> int:
        return int(await self._read(lambda c: c.fetchval(
            "SELECT COUNT(*) FROM jobs WHERE state = 'running' "
            "OR (state = 'pending' AND run_at <= now() + make_interval(secs => $1))", within,
        )))

    async def scheduled(self, name_prefix: str = "") -> list[JobRecord]:
        rows = await self._read(lambda c: c.fetch(
            "SELECT id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, "
            "last_error FROM jobs WHERE state = 'pending' AND run_at > now() "
            "AND starts_with(name, $1) ORDER BY run_at, id", name_prefix,
        ))
        return [_record(r) for r in rows]

    async def reschedule(self, job_id: int, run_at: datetime) -> bool:
        moved = await self._write_one(lambda conn: conn.fetchval(
            "UPDATE jobs SET run_at = $2, updated_at = now() "
            "WHERE id = $1 AND state = 'pending' RETURNING true", job_id, run_at,
        ))
        return bool(moved)

    # bot runs and actions

    async def record_bot_run(self, run: BotRun) -> None:
        await self._write_one(lambda conn: conn.execute(
            f"INSERT INTO bot_runs ({_BOT_RUN_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            run.job_id, run.event_id, run.bot, run.attempt, run.started_at,
            run.finished_at, run.outcome, run.error, run.prompt_tokens,
            run.completion_tokens, run.cost_usd,
        ))

    async def bot_runs(self, event_id: str) -> list[BotRun]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_BOT_RUN_COLUMNS} FROM bot_runs WHERE event_id = $1 ORDER BY id", event_id,
        ))
        return [BotRun(job_id=r[0], event_id=r[1], bot=r[2], attempt=r[3], started_at=r[4],
                       finished_at=r[5], outcome=r[6], error=r[7], prompt_tokens=r[8],
                       completion_tokens=r[9], cost_usd=r[10])
                for r in rows]

    async def claim_action(
        self, key: str, *, event_id: str, bot: str, kind: str, detail: dict[str, Any]
    ) -> tuple[ActionRecord, bool]:
        async with self._transaction() as conn:
            created = await conn.fetchval(
                "INSERT INTO actions (key, event_id, bot, kind, state, detail, created_at, "
                "updated_at) VALUES ($1, $2, $3, $4, 'started', $5::jsonb, now(), now()) "
                "ON CONFLICT (key) DO NOTHING RETURNING true",
                key, event_id, bot, kind, json.dumps(detail),
            )
            row = await conn.fetchrow(f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = $1", key)
        return _action(row), bool(created)

    async def settle_action(
        self, key: str, state: ActionState, detail: dict[str, Any]
    ) -> ActionRecord:
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE actions SET state = $2, detail = detail || $3::jsonb, updated_at = now() "
                f"WHERE key = $1 RETURNING {_ACTION_COLUMNS}",
                key, state, json.dumps(detail),
            )
        if row is None:
            raise StoreError(f"no action {key!r} to settle: claim it first")
        return _action(row)

    async def get_action(self, key: str) -> ActionRecord | None:
        row = await self._read(lambda c: c.fetchrow(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = $1", key
        ))
        return None if row is None else _action(row)

    async def actions_for_event(self, event_id: str) -> list[ActionRecord]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE event_id = $1 ORDER BY created_at, key",
            event_id,
        ))
        return [_action(row) for row in rows]


    async def actions_of_kind(
        self, kind: str, *, bot: str | None = None, limit: int = 100
    ) -> list[ActionRecord]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE kind = $1 "
            "AND ($2::text IS NULL OR bot = $2) ORDER BY updated_at DESC, key LIMIT $3",
            kind, bot, limit,
        ))
        return [_action(row) for row in rows]

    # model answers, joins, placed calls

    async def cached_answer(self, key: str) -> CachedAnswer | None:
        row = await self._read(lambda c: c.fetchrow(
            "SELECT key, model, answer, prompt_tokens, completion_tokens FROM llm_cache "
            "WHERE key = $1", key,
        ))
        return None if row is None else CachedAnswer(*row)

    async def cache_answer(self, answer: CachedAnswer) -> None:
        await self._write_one(lambda conn: conn.execute(
            "INSERT INTO llm_cache (key, model, answer, prompt_tokens, completion_tokens, "
            "created_at) VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (key) DO NOTHING",
            answer.key, answer.model, answer.answer, answer.prompt_tokens,
            answer.completion_tokens,
        ))

    async def join_arrive(self, key: str, event_type: str, event_id: str) -> JoinState:
        row = await self._write_one(lambda conn: conn.fetchrow(
            "INSERT INTO joins (key, events, created_at, updated_at) "
            "VALUES ($1, jsonb_build_object($2::text, $3::text), now(), now()) "
            "ON CONFLICT (key) DO UPDATE SET "
            "events = joins.events || jsonb_build_object($2::text, $3::text), "
            "updated_at = now() RETURNING key, events, fired",
            key, event_type, event_id,
        ))
        return JoinState(key=row[0], events=json.loads(row[1]), fired=bool(row[2]))

    async def join_fire(self, key: str, claimant: str) -> bool:
        fired = await self._write_one(lambda conn: conn.fetchval(
            "UPDATE joins SET fired = true, fired_by = $2, updated_at = now() "
            "WHERE key = $1 AND (NOT fired OR fired_by = $2) RETURNING true", key, claimant,
        ))
        return bool(fired)

    async def next_in_rotation(self, name: str) -> int:
        value = await self._write_one(lambda conn: conn.fetchval(
            "INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) "
            "DO UPDATE SET value = counters.value + 1 RETURNING value", name,
        ))
        return int(value) - 1

    async def join_state(self, key: str) -> JoinState | None:
        row = await self._read(lambda c: c.fetchrow(
            "SELECT key, events, fired FROM joins WHERE key = $1", key
        ))
        if row is None:
            return None
        return JoinState(key=row[0], events=json.loads(row[1]), fired=bool(row[2]))

    async def record_placed_call(self, call: PlacedCall) -> None:
        await self._write_one(lambda conn: conn.execute(
            "INSERT INTO placed_calls (call_id, action_key, number, attempt, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (call_id) DO NOTHING",
            call.call_id, call.action_key, call.number, call.attempt, call.created_at,
        ))

    async def placed_call(self, call_id: str) -> PlacedCall | None:
        row = await self._read(lambda c: c.fetchrow(
            "SELECT call_id, action_key, number, attempt, created_at FROM placed_calls "
            "WHERE call_id = $1", call_id,
        ))
        if row is None:
            return None
        return PlacedCall(call_id=row[0], action_key=row[1], number=row[2], attempt=row[3],
                          created_at=row[4])

    async def call_completed_event(self, call_id: str) -> str | None:
        found = await self._read(lambda c: c.fetchval(
            "SELECT id FROM events WHERE type = 'call.completed' AND call_id = $1 "
            "AND routable ORDER BY seq LIMIT 1", call_id,
        ))
        return None if found is None else str(found)

    async def count_placed_calls(self, number: str, since: datetime) -> int:
        return int(await self._read(lambda c: c.fetchval(
            "SELECT COUNT(*) FROM placed_calls WHERE number = $1 AND created_at >= $2",
            number, since,
        )))

def _lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection was gone before or while it was used."""
    return isinstance(exc, _LOST) or _closed_error(exc)


def _closed_error(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncpg saying a connection or the pool is closed."""
    return isinstance(exc, asyncpg.InterfaceError) and any(
        words in str(exc) for words in ("closed", "closing", "released back to the pool")
    )


async def keep_session(conn: _Connection) -> None:
    """The pool's reset of a released connection: nothing past the rollback asyncpg does itself.

    agentkit sets no session state (its search_path is a connection-time
    setting, its advisory locks are transaction-scoped), so asyncpg's default
    reset query would be one more round trip per release for nothing.
    """


async def _begin(conn: _Connection) -> Any:
    tx = conn.transaction()
    await tx.start()
    return tx


async def _roll_back(conn: _Connection, tx: Any) -> None:
    try:
        if not conn.is_closed():
            await asyncio.wait_for(tx.rollback(), _CLOSE_TIMEOUT)
    except Exception:
        with suppress(Exception):
            conn.terminate()


def _action(r: Any) -> ActionRecord:
    return ActionRecord(key=r[0], event_id=r[1], bot=r[2], kind=r[3], state=r[4],
                        detail=json.loads(r[5]), created_at=r[6], updated_at=r[7])


def _record(r: Any) -> JobRecord:
    return JobRecord(id=r[0], kind=r[1], event_id=r[2], bot=r[3], name=r[4], state=r[5],
                     attempts=r[6], max_attempts=r[7], run_at=r[8], last_error=r[9])


def _job(r: Any) -> Job:
    return Job(id=r[0], kind=r[1], event_id=r[2], seq=r[3], call_id=r[4], bot=r[5], name=r[6],
               payload=json.loads(r[7]), attempts=r[8], max_attempts=r[9], run_at=r[10],
               lease_owner=r[11], last_error=r[12], event_body=bytes(r[13]))
