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
from datetime import UTC, datetime
from functools import partial
from typing import Any, NoReturn, Protocol, TypeVar
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from agentkit.store.base import (
    CALLS_PAUSED,
    DEADLINE_PASSED,
    JOIN_TIMER_PREFIX,
    ActionRecord,
    ActionState,
    ApiRead,
    Approval,
    ApprovalDecision,
    BotRun,
    CachedAnswer,
    CallActivity,
    CallCursor,
    CallQuery,
    CallRow,
    DayFigures,
    DeadGroup,
    DialClaim,
    DialGrant,
    DoNotCallEntry,
    EventRecord,
    Job,
    JobRecord,
    JobSpec,
    JoinState,
    LeaseKinds,
    ModelAnswer,
    NewApproval,
    NewEvent,
    PlacedCall,
    Store,
    StoredEvent,
    StoreError,
    StoreHealth,
    StoreUnavailable,
)
from agentkit.store.calls import (
    CALL_COLUMNS,
    call_activity,
    first_of_each,
    list_calls_sql,
    redelivered,
)
from agentkit.store.figures import figures_sql, tally
from agentkit.store.privacy import (
    ERASE_COUNTS,
    ERASED,
    ERASED_BY,
    ERASED_REASON,
    PURGE_BATCH,
    PURGE_COUNTS,
    erase_in_detail,
    mask_detail,
    mentions,
    number_pattern,
)
from agentkit.store.schema import (
    JOIN_TIMER,
    LEASE_KINDS,
    NOT_BLOCKED,
    POSTGRES_DEAD_ERROR,
    POSTGRES_MIGRATIONS,
    POSTGRES_OUTCOME,
)

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

# One statement: the new events, their route jobs, and their calls' rows, one upsert
# per call (ON CONFLICT DO UPDATE may touch a row once per statement), in call id order
# so that racing batches lock calls in one order. A call keeps the first numbers and
# direction it was given, by seq.
_ADD_EVENTS = """
    WITH new AS (
        INSERT INTO events (id, type, created_at, received_at, call_id, routable, body)
        SELECT u.id, u.type, u.created_at, now(), u.call_id, u.routable, u.body
        FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bool[],
                    $6::bytea[]) WITH ORDINALITY AS u(id, type, created_at, call_id, routable,
                                                      body, n)
        ORDER BY u.n
        ON CONFLICT (id) DO NOTHING
        RETURNING id, seq, call_id, routable, created_at, received_at
    ), routes AS (
        INSERT INTO jobs (kind, event_id, seq, call_id, state, max_attempts, run_at,
                          created_at, updated_at)
        SELECT 'route', id, seq, call_id, 'pending', $7, now(), now(), now()
        FROM new WHERE routable ORDER BY seq
    ), said AS (
        SELECT n.call_id, min(n.created_at) AS started_at, max(n.received_at) AS last_at,
               (array_agg(p.from_number ORDER BY n.seq)
                    FILTER (WHERE p.from_number IS NOT NULL))[1] AS from_number,
               (array_agg(p.to_number ORDER BY n.seq)
                    FILTER (WHERE p.to_number IS NOT NULL))[1] AS to_number,
               (array_agg(p.direction ORDER BY n.seq)
                    FILTER (WHERE p.direction IS NOT NULL))[1] AS direction,
               count(*) AS events
        FROM new n
        JOIN unnest($1::text[], $8::text[], $9::text[], $10::text[])
             AS p(id, from_number, to_number, direction) ON p.id = n.id
        WHERE n.call_id IS NOT NULL
        GROUP BY n.call_id
    ), calls_seen AS (
        INSERT INTO calls (call_id, started_at, last_at, from_number, to_number, direction,
                           events)
        SELECT call_id, started_at, last_at, from_number, to_number, direction, events
        FROM said ORDER BY call_id
        ON CONFLICT (call_id) DO UPDATE SET
            started_at = LEAST(calls.started_at, excluded.started_at),
            last_at = GREATEST(calls.last_at, excluded.last_at),
            from_number = COALESCE(calls.from_number, excluded.from_number),
            to_number = COALESCE(calls.to_number, excluded.to_number),
            direction = COALESCE(calls.direction, excluded.direction),
            events = calls.events + excluded.events
    )
    SELECT id FROM new
"""

_COUNT_DUPLICATES = """
    UPDATE events e SET duplicates = e.duplicates + d.n
    FROM unnest($1::text[], $2::int[]) AS d(id, n) WHERE e.id = d.id
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

_APPROVAL_FIELDS = ("id", "action_key", "event_id", "call_id", "bot", "kind", "what", "why",
                    "deadline", "state", "decided_by", "decided_at", "reason", "created_at",
                    "message")
_APPROVAL_COLUMNS = ", ".join(_APPROVAL_FIELDS)
# The same, on approvals aliased ``a`` (an update joined to another table).
_A_APPROVAL_COLUMNS = ", ".join(f"a.{name}" for name in _APPROVAL_FIELDS)

# One statement decides: the deadline is checked on the row it changes, and a racing
# decide waits for this one, then finds the row no longer pending and changes nothing.
_DECIDE = f"""
    WITH moment AS (SELECT COALESCE($5::timestamptz, now()) AS at)
    UPDATE approvals a SET
        state = CASE WHEN a.deadline > m.at THEN $2::text ELSE 'expired' END,
        decided_by = CASE WHEN a.deadline > m.at THEN $3::text END,
        reason = CASE WHEN a.deadline > m.at THEN $4::text ELSE $6::text END,
        decided_at = m.at
    FROM moment m WHERE a.id = $1 AND a.state = 'pending'
    RETURNING {_A_APPROVAL_COLUMNS}
"""

# Pending approvals past their deadline, each taken by one caller (SKIP LOCKED: a row a
# racing decide or expire holds is theirs to settle).
_EXPIRE = f"""
    WITH moment AS (SELECT COALESCE($1::timestamptz, now()) AS at), due AS (
        SELECT p.id FROM approvals p, moment m
        WHERE p.state = 'pending' AND p.deadline <= m.at
        ORDER BY p.id FOR UPDATE OF p SKIP LOCKED
    )
    UPDATE approvals a SET state = 'expired', decided_at = m.at, reason = $2
    FROM due, moment m WHERE a.id = due.id
    RETURNING {_A_APPROVAL_COLUMNS}
"""

# Each figure from an index: jobs_due counts by state, jobs_join_timers the timers left out
# of the queue, jobs_done_by_time the jobs done lately, model_answers_by_age today's spend.
_HEALTH = f"""
    WITH moment AS (SELECT COALESCE($1::timestamptz, now()) AS at)
    SELECT
        (SELECT count(*) FROM jobs WHERE state = 'pending'),
        (SELECT count(*) FROM jobs, moment WHERE {JOIN_TIMER} AND run_at > moment.at),
        (SELECT count(*) FROM jobs WHERE state = 'running'),
        (SELECT count(*) FROM jobs WHERE state = 'dead'),
        (SELECT count(*) FROM jobs, moment WHERE state = 'done'
            AND updated_at >= moment.at - interval '60 seconds' AND updated_at <= moment.at),
        (SELECT COALESCE(sum(cost_usd), 0) FROM model_answers, moment
            WHERE created_at >= date_trunc('day', moment.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
              AND created_at <= moment.at),
        (SELECT count(*) FROM dial_claims, moment
            WHERE created_at >= moment.at - interval '24 hours' AND created_at <= moment.at)
"""
# A body read as JSON; a NUL escape (which json cannot make text of, failing the whole
# statement) becomes U+FFFD, keeping the text valid JSON, backslashes and all.
_BODY_JSON = r"replace(convert_from(body, 'UTF8'), '\u0000', '\ufffd')::json"
_FIGURES = figures_sql(
    start="$1", end="$2",
    call_data=lambda field: f"{_BODY_JSON} -> 'data' ->> '{field}'",
    detail=lambda field: f"detail ->> '{field}'",
)
_BOT_RUN_COLUMNS = (
    "job_id, event_id, bot, attempt, started_at, finished_at, outcome, error, "
    "prompt_tokens, completion_tokens, cost_usd"
)


class _Connection(Protocol):
    """The part of asyncpg's Connection this module uses (asyncpg has no type hints)."""

    async def execute(self, query: str, *args: Any) -> str: ...
    async def executemany(self, query: str, args: Any) -> None: ...
    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def prepare(self, query: str, *, name: str | bool | None = None) -> Any: ...
    def transaction(self, **options: Any) -> Any: ...
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
        ordered = sorted(first_of_each(events), key=lambda e: e.id)
        async with self._transaction() as conn:
            rows = await conn.fetch(
                _ADD_EVENTS,
                [e.id for e in ordered], [e.type for e in ordered],
                [e.created_at for e in ordered], [e.call_id for e in ordered],
                [e.routable for e in ordered], [e.body for e in ordered],
                self.default_max_attempts, [e.from_number for e in ordered],
                [e.to_number for e in ordered], [e.direction for e in ordered],
            )
            inserted = {row[0] for row in rows}
            again = redelivered(events, inserted)
            if again:
                ids = sorted(again)
                await conn.execute(_COUNT_DUPLICATES, ids, [again[i] for i in ids])
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

    async def retry_dead(self, job_id: int) -> bool:
        revived = await self._write_one(lambda conn: conn.fetchval(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(), lease_owner = NULL, "
            "lease_expires_at = NULL, updated_at = now() WHERE id = $1 AND state = 'dead' "
            "RETURNING true", job_id,
        ))
        return bool(revived)

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
        rows = await self._read(lambda c: c.fetch(
            "SELECT state, COUNT(*) FROM jobs WHERE NOT (state = 'pending' AND run_at > now() "
            "AND kind = 'task' AND starts_with(name, $1)) GROUP BY state", JOIN_TIMER_PREFIX,
        ))
        counts = {"pending": 0, "running": 0, "done": 0, "dead": 0, "discarded": 0}
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    async def jobs_for_event(self, event_id: str) -> list[JobRecord]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE event_id = $1 ORDER BY id", event_id,
        ))
        return [_record(r) for r in rows]

    async def jobs_in_state(self, state: str, limit: int = 100) -> list[JobRecord]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM jobs "
            "WHERE state = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
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
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE state = 'pending' AND run_at > now() "
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
        return [_bot_run(r) for r in rows]

    async def claim_action(
        self, key: str, *, event_id: str, bot: str, kind: str, detail: dict[str, Any]
    ) -> tuple[ActionRecord, bool]:
        async with self._transaction() as conn:
            created = await conn.fetchval(
                "INSERT INTO actions (key, event_id, bot, kind, state, detail, created_at, "
                "updated_at, call_id) VALUES ($1, $2, $3, $4, 'started', $5::jsonb, now(), now(), "
                "(SELECT call_id FROM events WHERE id = $2)) ON CONFLICT (key) DO NOTHING "
                "RETURNING true",
                key, event_id, bot, kind, json.dumps(detail),
            )
            row = await conn.fetchrow(f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = $1", key)
        return _action(row), bool(created)

    async def settle_action(
        self, key: str, state: ActionState, detail: dict[str, Any]
    ) -> ActionRecord:
        async with self._transaction() as conn:
            # A finished action is never started again (a late "placed" after the outcome).
            row = await conn.fetchrow(
                "UPDATE actions SET state = $2, detail = detail || $3::jsonb, updated_at = now() "
                "WHERE key = $1 AND NOT ($2 = 'started' AND state IN ('done', 'failed')) "
                f"RETURNING {_ACTION_COLUMNS}",
                key, state, json.dumps(detail),
            )
            if row is None:
                row = await conn.fetchrow(
                    f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = $1", key
                )
        if row is None:
            raise StoreError(f"no action {key!r} to settle: claim it first")
        return _action(row)

    async def get_action(self, key: str) -> ActionRecord | None:
        row = await self._read(lambda c: c.fetchrow(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = $1", key
        ))
        return None if row is None else _action(row)

    async def actions_for_call(self, call_id: str) -> list[ActionRecord]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE event_id IN "
            "(SELECT id FROM events WHERE call_id = $1) ORDER BY created_at, key",
            call_id,
        ))
        return [_action(row) for row in rows]

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

    async def open_actions(self, kinds: Sequence[str], *, limit: int = 100) -> list[ActionRecord]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE state = 'started' "
            "AND kind = ANY($1::text[]) ORDER BY created_at, key LIMIT $2",
            list(kinds), limit,
        ))
        return [_action(row) for row in rows]

    # the console's reads

    async def list_calls(
        self, query: CallQuery, *, limit: int = 50, before: CallCursor | None = None
    ) -> list[CallRow]:
        params: list[Any] = []

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        sql = list_calls_sql(query, limit, before, param=param,
                             detail_outcome=f"({POSTGRES_OUTCOME})",
                             cursor=lambda c: (c.started_at, c.call_id))

        async def read(conn: _Connection) -> list[Any]:
            # Unnamed, so planned for these values each time: whether to walk the calls
            # newest first or start from a bot's jobs depends on how rare the bot (or the
            # outcome) is, which a cached generic plan cannot know.
            statement = await conn.prepare(sql, name=False)
            rows: list[Any] = await statement.fetch(*params)
            return rows

        return [CallRow(*row) for row in await self._read(read)]

    async def get_call(self, call_id: str) -> CallRow | None:
        row = await self._read(lambda c: c.fetchrow(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id = $1", call_id
        ))
        return None if row is None else CallRow(*row)

    async def call_activity(self, call_ids: Sequence[str]) -> dict[str, CallActivity]:
        ids = list(dict.fromkeys(call_ids))
        if not ids:
            return {}

        async def read(conn: _Connection) -> tuple[list[Any], list[Any]]:
            actions = await conn.fetch(
                f"SELECT {_ACTION_COLUMNS}, call_id FROM actions "
                "WHERE call_id = ANY($1::text[]) ORDER BY created_at, key", ids,
            )
            jobs = await conn.fetch(
                "SELECT call_id, bot, count(*) FILTER (WHERE state = 'dead') FROM jobs "
                "WHERE call_id = ANY($1::text[]) GROUP BY call_id, bot", ids,
            )
            return actions, jobs

        actions, jobs = await self._read(read)
        return call_activity(ids, [(row[8], _action(row)) for row in actions],
                             [(row[0], row[1], row[2]) for row in jobs])

    async def events_of_call(self, call_id: str) -> list[EventRecord]:
        rows = await self._read(lambda c: c.fetch(
            "SELECT id, type, created_at, received_at, duplicates, routable FROM events "
            "WHERE call_id = $1 ORDER BY seq", call_id,
        ))
        return [EventRecord(*row) for row in rows]

    async def jobs_of_call(self, call_id: str) -> list[JobRecord]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE call_id = $1 ORDER BY id", call_id,
        ))
        return [_record(r) for r in rows]

    async def get_job(self, job_id: int) -> JobRecord | None:
        row = await self._read(lambda c: c.fetchrow(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE id = $1", job_id,
        ))
        return None if row is None else _record(row)

    async def bot_runs_of_call(self, call_id: str) -> list[BotRun]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_BOT_RUN_COLUMNS} FROM bot_runs WHERE event_id IN "
            "(SELECT id FROM events WHERE call_id = $1) ORDER BY started_at, id", call_id,
        ))
        return [_bot_run(r) for r in rows]

    async def record_model_answer(self, answer: ModelAnswer) -> None:
        await self._write_one(lambda conn: conn.execute(
            "INSERT INTO model_answers (event_id, call_id, bot, task, model, prompt_tokens, "
            "completion_tokens, cost_usd, cached, answer, created_at) "
            "VALUES ($1, (SELECT call_id FROM events WHERE id = $1), $2, $3, $4, $5, $6, $7, "
            "$8, $9, $10)",
            answer.event_id, answer.bot, answer.task, answer.model, answer.prompt_tokens,
            answer.completion_tokens, answer.cost_usd, answer.cached, answer.answer,
            answer.created_at,
        ))

    async def model_answers_of_call(self, call_id: str) -> list[ModelAnswer]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_ANSWER_COLUMNS} FROM model_answers WHERE call_id = $1 "
            "ORDER BY created_at, id", call_id,
        ))
        return [ModelAnswer(*row) for row in rows]

    async def dead_groups(self, *, limit: int = 100) -> list[DeadGroup]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT bot, {POSTGRES_DEAD_ERROR}, count(*), max(updated_at) FROM jobs "
            "WHERE state = 'dead' GROUP BY 1, 2 ORDER BY 3 DESC, 4 DESC LIMIT $1", limit,
        ))
        return [DeadGroup(*row) for row in rows]

    async def dead_in_group(self, bot: str | None, error: str, *,
                            limit: int = 100) -> list[JobRecord]:
        # Two forms rather than IS NOT DISTINCT FROM, which no index serves.
        which = "bot IS NULL AND $1::text IS NULL" if bot is None else "bot = $1"
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE state = 'dead' AND {which} "
            f"AND {POSTGRES_DEAD_ERROR} = $2 ORDER BY updated_at DESC, id DESC LIMIT $3",
            bot, error, limit,
        ))
        return [_record(r) for r in rows]

    async def discard_dead(self, job_id: int) -> bool:
        discarded = await self._write_one(lambda conn: conn.fetchval(
            "UPDATE jobs SET state = 'discarded', updated_at = now() "
            "WHERE id = $1 AND state = 'dead' RETURNING true", job_id,
        ))
        return bool(discarded)

    async def discard_pending(self, event_id: str, name_prefix: str) -> int:
        return _count(await self._write_one(lambda conn: conn.execute(
            "UPDATE jobs SET state = 'discarded', updated_at = now() "
            "WHERE event_id = $1 AND state = 'pending' AND starts_with(name, $2)",
            event_id, name_prefix,
        )))

    async def health(self, *, now: datetime | None = None) -> StoreHealth:
        row = await self._read(lambda c: c.fetchrow(_HEALTH, now))
        return StoreHealth(pending=row[0] - row[1], running=row[2], dead=row[3],
                           done_last_minute=row[4], model_spend_today_usd=float(row[5]),
                           dial_claims_24h=row[6])

    async def day_figures(self, start: datetime, end: datetime) -> DayFigures:
        async def read(conn: _Connection) -> DayFigures:
            # One snapshot, so that the figures agree with each other.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                counts = await conn.fetchrow(_FIGURES.counts, start, end)
                outcomes = await conn.fetch(_FIGURES.outcomes, start, end)
                answers = await conn.fetch(_FIGURES.topics, start, end)
            return tally(counts, outcomes, [row[0] for row in answers])

        return await self._read(read)

    # replay

    async def replay_calls(
        self, *, since: datetime | None = None, until: datetime | None = None,
        after: CallCursor | None = None, limit: int = 500,
    ) -> list[CallRow]:
        params: list[Any] = []

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        terms: list[str] = []
        # One lower bound, the later (the other follows from it), as SQLite needs.
        if after is not None and since is not None:
            since, after = (None, after) if after.started_at >= since else (since, None)
        if since is not None:
            terms.append(f"started_at >= {param(since)}")
        if until is not None:
            terms.append(f"started_at < {param(until)}")
        if after is not None:
            terms.append(f"(started_at, call_id) > ({param(after.started_at)}, "
                         f"{param(after.call_id)})")
        sql = (f"SELECT {CALL_COLUMNS} FROM calls WHERE {' AND '.join(terms) or 'TRUE'} "
               f"ORDER BY started_at, call_id LIMIT {param(limit)}")
        rows = await self._read(lambda c: c.fetch(sql, *params))
        return [CallRow(*row) for row in rows]

    async def call_events(self, call_id: str) -> list[StoredEvent]:
        rows = await self._read(lambda c: c.fetch(
            "SELECT id, seq, type, created_at, received_at, call_id, body, routable "
            "FROM events WHERE call_id = $1 ORDER BY seq", call_id,
        ))
        return [StoredEvent(id=r[0], seq=r[1], type=r[2], created_at=r[3], received_at=r[4],
                            call_id=r[5], body=bytes(r[6]), routable=r[7]) for r in rows]

    async def record_api_reads(self, reads: Sequence[ApiRead]) -> None:
        if not reads:
            return
        await self._write_one(lambda conn: conn.executemany(
            "INSERT INTO api_reads (path, call_id, body, read_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (path) DO UPDATE SET call_id = excluded.call_id, "
            "body = excluded.body, read_at = excluded.read_at "
            "WHERE excluded.read_at >= api_reads.read_at",
            [(r.path, r.call_id, r.body, r.read_at) for r in reads],
        ))

    async def api_read(self, path: str) -> ApiRead | None:
        row = await self._read(lambda c: c.fetchrow(
            "SELECT path, call_id, body, read_at FROM api_reads WHERE path = $1", path,
        ))
        if row is None:
            return None
        return ApiRead(path=row[0], call_id=row[1], body=bytes(row[2]), read_at=row[3])

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

    # dialling

    async def claim_dial(self, claim: DialClaim) -> DialGrant:
        async with self._transaction() as conn:
            # One claim at a time in the whole deployment: the caps are counts over
            # every number, read and then written.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._dial_lock)
            if await conn.fetchval("SELECT value FROM switches WHERE name = $1", CALLS_PAUSED):
                return DialGrant(False, "paused")
            if await conn.fetchval("SELECT 1 FROM do_not_call WHERE number = $1", claim.number):
                return DialGrant(False, "do_not_call")
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE number = $1), count(*) "
                "FROM dial_claims WHERE created_at >= $2",
                claim.number, claim.since,
            )
            to_number, in_all = int(row[0]), int(row[1])
            if await conn.fetchval(
                "SELECT 1 FROM dial_claims WHERE action_key = $1 AND attempt = $2",
                claim.action_key, claim.attempt,
            ):
                return DialGrant(True, None, to_number, in_all)
            if to_number >= claim.number_limit:
                return DialGrant(False, "number_cap", to_number, in_all)
            if in_all >= claim.daily_limit:
                return DialGrant(False, "daily_max", to_number, in_all)
            await conn.execute(
                "INSERT INTO dial_claims (action_key, attempt, number, bot, created_at) "
                "VALUES ($1, $2, $3, $4, now())",
                claim.action_key, claim.attempt, claim.number, claim.bot,
            )
            return DialGrant(True, None, to_number + 1, in_all + 1)

    @property
    def _dial_lock(self) -> int:
        return int.from_bytes(
            hashlib.blake2b(f"agentkit:dial:{self.schema or ''}".encode(),
                            digest_size=8).digest(),
            "big", signed=True,
        )

    async def count_dial_claims(self, number: str, since: datetime,
                                until: datetime | None = None) -> int:
        return int(await self._read(lambda c: c.fetchval(
            "SELECT COUNT(*) FROM dial_claims WHERE number = $1 AND created_at >= $2 "
            "AND ($3::timestamptz IS NULL OR created_at < $3)",
            number, since, until,
        )))

    async def add_do_not_call(self, number: str, *, reason: str, added_by: str) -> bool:
        added = await self._write_one(lambda conn: conn.fetchval(
            "INSERT INTO do_not_call (number, reason, added_by, created_at) "
            "VALUES ($1, $2, $3, now()) ON CONFLICT (number) DO NOTHING RETURNING true",
            number, reason, added_by,
        ))
        return bool(added)

    async def remove_do_not_call(self, number: str) -> bool:
        removed = await self._write_one(lambda conn: conn.fetchval(
            "DELETE FROM do_not_call WHERE number = $1 RETURNING true", number
        ))
        return bool(removed)

    async def do_not_call(self, number: str) -> DoNotCallEntry | None:
        row = await self._read(lambda c: c.fetchrow(
            "SELECT number, reason, added_by, created_at FROM do_not_call WHERE number = $1",
            number,
        ))
        return None if row is None else DoNotCallEntry(*row)

    async def do_not_call_list(self) -> list[DoNotCallEntry]:
        rows = await self._read(lambda c: c.fetch(
            "SELECT number, reason, added_by, created_at FROM do_not_call ORDER BY number"
        ))
        return [DoNotCallEntry(*row) for row in rows]

    async def set_switch(self, name: str, on: bool, *, changed_by: str) -> bool:
        async with self._transaction() as conn:
            current = await conn.fetchval(
                "SELECT value FROM switches WHERE name = $1 FOR UPDATE", name
            )
            if bool(current) == on:
                return False
            await conn.execute(
                "INSERT INTO switches (name, value, changed_by, updated_at) "
                "VALUES ($1, $2, $3, now()) ON CONFLICT (name) DO UPDATE SET "
                "value = excluded.value, changed_by = excluded.changed_by, updated_at = now()",
                name, on, changed_by,
            )
            return True

    async def switch(self, name: str) -> bool:
        value = await self._read(lambda c: c.fetchval(
            "SELECT value FROM switches WHERE name = $1", name
        ))
        return bool(value)

    async def hold_callback(
        self, number: str, kind: str, action_key: str, *, asked_at: datetime
    ) -> str:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO open_callbacks (number, kind, action_key, created_at) "
                "VALUES ($1, $2, $3, now()) ON CONFLICT (number, kind) DO NOTHING",
                number, kind, action_key,
            )
            row = await conn.fetchrow(
                "SELECT o.action_key, a.state, o.reached_at FROM open_callbacks o "
                "LEFT JOIN actions a ON a.key = o.action_key "
                "WHERE o.number = $1 AND o.kind = $2 FOR UPDATE OF o",
                number, kind,
            )
            if row[0] == action_key or row[1] == "started" or (
                    row[2] is not None and row[2] >= asked_at):
                return str(row[0])
            await conn.execute(
                "UPDATE open_callbacks SET action_key = $3, created_at = now(), reached_at = NULL "
                "WHERE number = $1 AND kind = $2",
                number, kind, action_key,
            )
            return action_key

    async def release_callback(
        self, number: str, kind: str, action_key: str, *, reached: bool
    ) -> None:
        sql = ("UPDATE open_callbacks SET reached_at = now() " if reached
               else "DELETE FROM open_callbacks ")
        await self._write_one(lambda conn: conn.execute(
            sql + "WHERE number = $1 AND kind = $2 AND action_key = $3",
            number, kind, action_key,
        ))

    async def append_to_action(self, key: str, field: str, item: dict[str, Any]) -> ActionRecord:
        row = await self._write_one(lambda conn: conn.fetchrow(
            "UPDATE actions SET detail = jsonb_set(detail, ARRAY[$2::text], "
            "COALESCE(detail -> $2::text, '[]'::jsonb) || jsonb_build_array($3::jsonb)), "
            f"updated_at = now() WHERE key = $1 RETURNING {_ACTION_COLUMNS}",
            key, field, json.dumps(item),
        ))
        if row is None:
            raise StoreError(f"no action {key!r} to add to: claim it first")
        return _action(row)


    # approvals

    async def add_approval(self, new: NewApproval) -> tuple[Approval, bool]:
        async with self._transaction() as conn:
            created = await conn.fetchval(
                f"INSERT INTO approvals ({_APPROVAL_COLUMNS}) VALUES ($1, $2, $3, "
                "(SELECT call_id FROM events WHERE id = $3), $4, $5, $6::jsonb, $7::jsonb, $8, "
                "'pending', NULL, NULL, NULL, now(), '{}') ON CONFLICT (action_key) DO NOTHING "
                "RETURNING true",
                new.id, new.action_key, new.event_id, new.bot, new.kind, json.dumps(new.what),
                json.dumps(new.why), new.deadline,
            )
            row = await conn.fetchrow(
                f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE action_key = $1",
                new.action_key,
            )
        return _approval(row), bool(created)

    async def get_approval(self, approval_id: str) -> Approval | None:
        row = await self._read(lambda c: c.fetchrow(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE id = $1", approval_id
        ))
        return None if row is None else _approval(row)

    async def decide_approval(
        self, approval_id: str, decision: ApprovalDecision, *, by: str,
        now: datetime | None = None, reason: str = "",
    ) -> tuple[Approval, bool]:
        if decision not in ("approved", "rejected"):
            raise StoreError(f"an approval is approved or rejected, not {decision!r}")
        async with self._transaction() as conn:
            row = await conn.fetchrow(_DECIDE, approval_id, decision, by, reason or None, now,
                                      DEADLINE_PASSED)
            decided = row is not None and row["state"] != "expired"
            if row is None:
                row = await conn.fetchrow(
                    f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE id = $1", approval_id
                )
        if row is None:
            raise StoreError(f"no approval {approval_id!r} to decide")
        return _approval(row), decided

    async def pending_approvals(self, *, limit: int = 100) -> list[Approval]:
        rows = await self._read(lambda c: c.fetch(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE state = 'pending' "
            "ORDER BY created_at, id LIMIT $1", limit,
        ))
        return [_approval(row) for row in rows]

    async def expire_approvals(self, now: datetime | None = None) -> list[Approval]:
        rows = await self._write_one(lambda conn: conn.fetch(_EXPIRE, now, DEADLINE_PASSED))
        return sorted((_approval(row) for row in rows), key=lambda a: (a.deadline, a.id))

    async def set_approval_message(self, approval_id: str, message: dict[str, Any]) -> None:
        status = await self._write_one(lambda conn: conn.execute(
            "UPDATE approvals SET message = $2::jsonb WHERE id = $1",
            approval_id, json.dumps(message),
        ))
        if not _count(status):
            raise StoreError(f"no approval {approval_id!r} to record a message for")


    # retention and erasure

    async def claim_once(self, name: str) -> bool:
        claimed = await self._write_one(lambda conn: conn.fetchval(
            "INSERT INTO once_claims (name, claimed_at) VALUES ($1, now()) "
            "ON CONFLICT (name) DO NOTHING RETURNING true", name,
        ))
        return bool(claimed)

    async def purge_older_than(self, cutoff: datetime, *,
                               batch_size: int = PURGE_BATCH) -> dict[str, int]:
        counts = dict.fromkeys(PURGE_COUNTS, 0)
        seq, last = 0, False
        while not last:
            async with self._transaction() as conn:
                rows = await conn.fetch(
                    "SELECT seq, received_at FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    seq, batch_size,
                )
                if not rows:
                    break
                window = (seq, int(rows[-1][0]), cutoff)
                # Receipt times rise with seq: the window that reaches a kept event
                # is the last. An event received out of step goes the next day.
                last = len(rows) < batch_size or rows[-1][1] >= cutoff
                for table, column in (("jobs", "event_id"), ("bot_runs", "event_id"),
                                      ("events", "id")):
                    counts[table] += _count(await conn.execute(
                        f"DELETE FROM {table} WHERE {column} IN ({_OLD_EVENTS})", *window
                    ))
            seq = window[1]
        for table, key, older in _AGED:
            while True:
                n = _count(await self._write_one(partial(
                    lambda conn, sql: conn.execute(sql, cutoff, batch_size),
                    sql=f"DELETE FROM {table} WHERE {key} IN "
                        f"(SELECT {key} FROM {table} WHERE {older} LIMIT $2)",
                )))
                counts[table] += n
                if n < batch_size:
                    break
        cursor: tuple[datetime, str] = (_EPOCH, "")
        while True:
            async with self._transaction() as conn:
                rows = await conn.fetch(_ACTIONS_TO_MASK, cutoff, *cursor, batch_size)
                await conn.execute(
                    "UPDATE actions a SET detail = u.detail::jsonb, masked = true "
                    "FROM unnest($1::text[], $2::text[]) AS u(key, detail) WHERE a.key = u.key",
                    [row[0] for row in rows],
                    [json.dumps(mask_detail(json.loads(row[1]))) for row in rows],
                )
            counts["actions_masked"] += len(rows)
            if len(rows) < batch_size:
                break
            cursor = (rows[-1][2], rows[-1][0])
        while True:
            n = _count(await self._write_one(lambda conn: conn.execute(
                "DELETE FROM dial_claims WHERE ctid IN (SELECT ctid FROM dial_claims "
                "WHERE created_at < $1 LIMIT $2)", cutoff, batch_size,
            )))
            counts["dial_claims"] += n
            if n < batch_size:
                break
        return counts

    async def erase_number(self, forms: Sequence[str], *,
                           batch_size: int = PURGE_BATCH) -> dict[str, int]:
        pattern = number_pattern(forms)
        texts = sorted(set(forms))
        counts = dict.fromkeys(ERASE_COUNTS, 0)
        seq = 0
        while True:
            rows = await self._read(_fetching(
                "SELECT seq, id, body FROM events e WHERE seq > $1 AND EXISTS "
                "(SELECT 1 FROM unnest($2::bytea[]) f WHERE position(f IN e.body) > 0) "
                "ORDER BY seq LIMIT $3", seq, [form.encode() for form in texts], batch_size,
            ))
            if not rows:
                break
            seq = rows[-1][0]
            ids = [row[1] for row in rows if mentions(bytes(row[2]), pattern)]
            if not ids:
                continue
            async with self._transaction() as conn:
                counts["api_reads"] += _count(await conn.execute(
                    "DELETE FROM api_reads WHERE call_id IN (SELECT call_id FROM events "
                    "WHERE id = ANY($1::text[]) AND call_id IS NOT NULL)", ids,
                ))
                for table, column in (("jobs", "event_id"), ("bot_runs", "event_id"),
                                      ("events", "id")):
                    counts[table] += _count(await conn.execute(
                        f"DELETE FROM {table} WHERE {column} = ANY($1::text[])", ids
                    ))
        path = ""
        while True:
            paths = [row[0] for row in await self._read(_fetching(
                "SELECT path FROM api_reads WHERE path > $1 AND EXISTS "
                "(SELECT 1 FROM unnest($2::bytea[]) f WHERE position(f IN body) > 0) "
                "ORDER BY path LIMIT $3", path, [form.encode() for form in texts], batch_size,
            ))]
            if not paths:
                break
            path = paths[-1]
            async with self._transaction() as conn:
                counts["api_reads"] += await _delete_reads(conn, paths, pattern)
        for table, key_column, column in _MENTIONING:
            key: str | int = 0 if table == "model_answers" else ""
            while True:
                found = [row[0] for row in await self._read(_fetching(
                    f"SELECT {key_column} FROM {table} WHERE {key_column} > $1 AND EXISTS "
                    f"(SELECT 1 FROM unnest($2::text[]) f WHERE position(f IN {column}) > 0) "
                    f"ORDER BY {key_column} LIMIT $3", key, texts, batch_size,
                ))]
                if not found:
                    break
                key = found[-1]
                async with self._transaction() as conn:
                    if table == "actions":
                        counts[table] += await _erase_in_actions(conn, found, pattern)
                    elif table == "approvals":
                        counts[table] += await _erase_in_approvals(conn, found, pattern)
                    else:
                        counts[table] += await _delete_answers(conn, table, key_column, found,
                                                               pattern)
        for table in ("placed_calls", "dial_claims"):
            counts[table] = _count(await self._write_one(partial(
                lambda conn, table: conn.execute(
                    f"UPDATE {table} SET number = $1 WHERE number = ANY($2::text[])",
                    ERASED, texts,
                ), table=table)))
        counts["open_callbacks"] = _count(await self._write_one(lambda conn: conn.execute(
            "DELETE FROM open_callbacks WHERE number = ANY($1::text[])", texts,
        )))
        async with self._transaction() as conn:
            # The reads of the number's calls first: the calls no longer name it after.
            counts["api_reads"] += _count(await conn.execute(
                "DELETE FROM api_reads WHERE call_id IN (SELECT call_id FROM calls "
                "WHERE from_number = ANY($1::text[]) OR to_number = ANY($1::text[]))", texts,
            ))
            counts["calls"] = _count(await conn.execute(
                "UPDATE calls SET "
                "from_number = CASE WHEN from_number = ANY($2::text[]) THEN $1 "
                "ELSE from_number END, "
                "to_number = CASE WHEN to_number = ANY($2::text[]) THEN $1 ELSE to_number END "
                "WHERE from_number = ANY($2::text[]) OR to_number = ANY($2::text[])",
                ERASED, texts,
            ))
        return counts


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


_RECORD_COLUMNS = (
    "id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, last_error, updated_at"
)
_ANSWER_COLUMNS = (
    "event_id, bot, task, model, prompt_tokens, completion_tokens, cost_usd, cached, answer, "
    "created_at"
)


def _approval(r: Any) -> Approval:
    return Approval(id=r[0], action_key=r[1], event_id=r[2], call_id=r[3], bot=r[4], kind=r[5],
                    what=json.loads(r[6]), why=json.loads(r[7]), deadline=r[8], state=r[9],
                    decided_by=r[10], decided_at=r[11], reason=r[12], created_at=r[13],
                    message=json.loads(r[14]))


def _record(r: Any) -> JobRecord:
    return JobRecord(id=r[0], kind=r[1], event_id=r[2], bot=r[3], name=r[4], state=r[5],
                     attempts=r[6], max_attempts=r[7], run_at=r[8], last_error=r[9],
                     updated_at=r[10])


def _bot_run(r: Any) -> BotRun:
    return BotRun(job_id=r[0], event_id=r[1], bot=r[2], attempt=r[3], started_at=r[4],
                  finished_at=r[5], outcome=r[6], error=r[7], prompt_tokens=r[8],
                  completion_tokens=r[9], cost_usd=r[10])


def _job(r: Any) -> Job:
    return Job(id=r[0], kind=r[1], event_id=r[2], seq=r[3], call_id=r[4], bot=r[5], name=r[6],
               payload=json.loads(r[7]), attempts=r[8], max_attempts=r[9], run_at=r[10],
               lease_owner=r[11], last_error=r[12], event_body=bytes(r[13]))


# retention and erasure

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What retention deletes by age alone: (table, key, which rows are older than the cutoff).
# A call goes once it was last heard of before the cutoff; it started before then too,
# which lets the walk read calls_newest.
_AGED = (
    ("llm_cache", "key", "created_at < $1"),
    ("model_answers", "id", "created_at < $1"),
    ("joins", "key", "updated_at < $1"),
    ("calls", "call_id", "started_at < $1 AND last_at < $1"),
    ("approvals", "id", "state <> 'pending' AND decided_at < $1"),
    ("api_reads", "path", "read_at < $1"),
)
# What erasure searches for a number's forms: (table, key, the text searched).
_MENTIONING = (("llm_cache", "key", "answer"), ("model_answers", "id", "answer"),
               ("actions", "key", "detail::text"),
               ("approvals", "id", "what::text || ' ' || why::text"))

# Old events whose jobs have all finished, in one window of seq.
_OLD_EVENTS = (
    "SELECT e.id FROM events e WHERE e.seq > $1 AND e.seq <= $2 AND e.received_at < $3 "
    "AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.event_id = e.id "
    "AND o.state IN ('pending', 'running'))"
)

# The next old actions after a cursor (updated_at, key) whose event's jobs are done.
_ACTIONS_TO_MASK = """
    SELECT a.key, a.detail, a.updated_at FROM actions a
    WHERE NOT a.masked AND a.updated_at < $1 AND (a.updated_at, a.key) > ($2, $3)
      AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.event_id = a.event_id
                      AND o.state IN ('pending', 'running'))
    ORDER BY a.updated_at, a.key LIMIT $4
    FOR UPDATE OF a
"""


def _count(status: str) -> int:
    """The row count of a command's status (``DELETE 12``)."""
    return int(status.rsplit(" ", 1)[-1])


def _fetching(sql: str, *args: Any) -> Callable[[_Connection], Awaitable[list[Any]]]:
    return lambda conn: conn.fetch(sql, *args)


async def _delete_answers(conn: _Connection, table: str, key: str, keys: list[Any],
                          pattern: re.Pattern[str]) -> int:
    kind = "bigint" if key == "id" else "text"
    rows = await conn.fetch(
        f"SELECT {key}, answer FROM {table} WHERE {key} = ANY($1::{kind}[]) FOR UPDATE", keys
    )
    gone = [row[0] for row in rows if mentions(row[1], pattern)]
    await conn.execute(f"DELETE FROM {table} WHERE {key} = ANY($1::{kind}[])", gone)
    return len(gone)


async def _delete_reads(conn: _Connection, paths: list[str],
                        pattern: re.Pattern[str]) -> int:
    rows = await conn.fetch(
        "SELECT path, body FROM api_reads WHERE path = ANY($1::text[]) FOR UPDATE", paths
    )
    gone = [row[0] for row in rows if mentions(bytes(row[1]), pattern)]
    await conn.execute("DELETE FROM api_reads WHERE path = ANY($1::text[])", gone)
    return len(gone)


async def _erase_in_actions(conn: _Connection, keys: list[str],
                            pattern: re.Pattern[str]) -> int:
    rows = await conn.fetch(
        "SELECT key, detail FROM actions WHERE key = ANY($1::text[]) FOR UPDATE", keys
    )
    changed = [(row[0], json.dumps(erase_in_detail(json.loads(row[1]), pattern)))
               for row in rows if mentions(row[1], pattern)]
    await conn.execute(
        "UPDATE actions a SET detail = u.detail::jsonb "
        "FROM unnest($1::text[], $2::text[]) AS u(key, detail) WHERE a.key = u.key",
        [key for key, _ in changed], [detail for _, detail in changed],
    )
    return len(changed)


async def _erase_in_approvals(conn: _Connection, ids: list[str],
                              pattern: re.Pattern[str]) -> int:
    """Erase the number from approvals' what and why; a pending one is rejected."""
    rows = await conn.fetch(
        "SELECT id, what, why FROM approvals WHERE id = ANY($1::text[]) FOR UPDATE", ids
    )
    changed = [(row[0], json.dumps(erase_in_detail(json.loads(row[1]), pattern)),
                json.dumps(erase_in_detail(json.loads(row[2]), pattern)))
               for row in rows if mentions(row[1], pattern) or mentions(row[2], pattern)]
    await conn.execute(
        "UPDATE approvals a SET what = u.what::jsonb, why = u.why::jsonb, "
        "state = CASE WHEN a.state = 'pending' THEN 'rejected' ELSE a.state END, "
        "decided_by = CASE WHEN a.state = 'pending' THEN $4 ELSE a.decided_by END, "
        "decided_at = CASE WHEN a.state = 'pending' THEN now() ELSE a.decided_at END, "
        "reason = CASE WHEN a.state = 'pending' THEN $5 ELSE a.reason END "
        "FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, what, why) WHERE a.id = u.id",
        [c[0] for c in changed], [c[1] for c in changed], [c[2] for c in changed],
        ERASED_BY, ERASED_REASON,
    )
    return len(changed)
