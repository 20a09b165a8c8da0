"""The SQLite engine (aiosqlite): the embedded default, for one machine.

WAL journal with ``synchronous=FULL``: a transaction is on disk when its
commit returns, so an acknowledged delivery survives a power loss
(docs/durability.md says why and what it costs). Writes from this process are
serialised on one connection; other processes wait on SQLite's lock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

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
from agentkit.store.schema import LEASE_KINDS, NOT_BLOCKED, SQLITE_MIGRATIONS

# Without statistics SQLite prefers jobs_due, which makes a lease of one kind
# step over every due job of the other.
_PENDING_INDEX = {"all": "", "route": "INDEXED BY jobs_routes_due",
                  "work": "INDEXED BY jobs_work_due"}

_JOB_COLUMNS = (
    "j.id, j.kind, j.event_id, j.seq, j.call_id, j.bot, j.name, j.payload, j.attempts, "
    "j.max_attempts, j.run_at, j.lease_owner, j.last_error"
)



def _ts(moment: datetime | None, default: float) -> float:
    return default if moment is None else moment.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqliteStore(Store):
    """The store in one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_attempts: int = Store.default_max_attempts,
        busy_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.default_max_attempts = max_attempts
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # connection and transactions

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            await self._db.execute("PRAGMA journal_mode = WAL")
            await self._db.execute("PRAGMA synchronous = FULL")
            await self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the SQLite store at {self.path}: {exc}") from None
        await self._migrate()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def _tx(self, *, write: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        if self._db is None:
            raise StoreUnavailable("the store is not open")
        async with self._lock:
            db = self._db
            try:
                await db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the SQLite store is busy or failing: {exc}") from None
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException as exc:
                try:
                    await db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreUnavailable(f"the SQLite store could not write: {exc}") from None
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"the SQLite store refused the change: {exc}") from None
                raise

    async def _migrate(self) -> None:
        async with self._tx() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS agentkit_schema (version INTEGER NOT NULL)"
            )
            rows = list(await db.execute_fetchall("SELECT version FROM agentkit_schema"))
            version = int(rows[0][0]) if rows else 0
            if not rows:
                await db.execute("INSERT INTO agentkit_schema (version) VALUES (0)")
            if version > len(SQLITE_MIGRATIONS):
                raise StoreError(
                    f"the store's schema is version {version}, newer than this agentkit knows "
                    f"({len(SQLITE_MIGRATIONS)}): upgrade agentkit"
                )
            for number, script in enumerate(SQLITE_MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    await db.execute(statement)
                await db.execute("UPDATE agentkit_schema SET version = ?", (number,))

    async def schema_version(self) -> int:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall("SELECT version FROM agentkit_schema"))
        return int(rows[0][0])

    async def ping(self) -> None:
        async with self._tx() as db:
            await db.execute("SELECT 1 FROM agentkit_schema")

    # events

    async def add_events(self, events: Sequence[NewEvent]) -> list[bool]:
        if not events:
            return []
        now = self._clock()
        async with self._tx() as db:
            placeholders = ",".join("(?, ?, ?, ?, ?, ?, ?)" for _ in events)
            values: list[Any] = []
            for event in events:
                values += [event.id, event.type, event.created_at.timestamp(), now,
                           event.call_id, int(event.routable), event.body]
            inserted = {
                row[0]: (row[1], row[2], row[3])
                for row in await db.execute_fetchall(
                    "INSERT INTO events (id, type, created_at, received_at, call_id, routable, "
                    f"body) VALUES {placeholders} ON CONFLICT (id) DO NOTHING "
                    "RETURNING id, seq, call_id, routable",
                    values,
                )
            }
            routes = [(eid, seq, call_id) for eid, (seq, call_id, routable) in inserted.items()
                      if routable]
            if routes:
                await db.executemany(
                    "INSERT INTO jobs (kind, event_id, seq, call_id, state, max_attempts, run_at, "
                    "created_at, updated_at) VALUES ('route', ?, ?, ?, 'pending', ?, ?, ?, ?)",
                    [(eid, seq, call_id, self.default_max_attempts, now, now, now)
                     for eid, seq, call_id in routes],
                )
        seen: set[str] = set()
        fresh = []
        for event in events:
            fresh.append(event.id in inserted and event.id not in seen)
            seen.add(event.id)
        return fresh

    async def get_event(self, event_id: str) -> StoredEvent | None:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall(
                "SELECT id, seq, type, created_at, received_at, call_id, body, routable "
                "FROM events WHERE id = ?", (event_id,)
            ))
        if not rows:
            return None
        r = rows[0]
        return StoredEvent(id=r[0], seq=r[1], type=r[2], created_at=_dt(r[3]),
                           received_at=_dt(r[4]), call_id=r[5], body=bytes(r[6]),
                           routable=bool(r[7]))

    async def count_events(self) -> int:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall("SELECT COUNT(*) FROM events"))
        return int(rows[0][0])

    # jobs

    async def lease(self, owner: str, limit: int, lease_seconds: float, *,
                    kinds: LeaseKinds = "all") -> list[Job]:
        if limit <= 0:
            return []
        now = self._clock()
        kind = LEASE_KINDS[kinds]
        async with self._tx() as db:
            await db.execute(
                "UPDATE jobs SET state = 'dead', lease_owner = NULL, updated_at = ?, "
                "last_error = 'its worker stopped during the last attempt (lease expired)' "
                "WHERE state = 'running' AND lease_expires_at < ? AND attempts >= max_attempts",
                (now, now),
            )
            # Two queries rather than one with OR: each reads its index in order
            # and stops at the limit, where the OR read and sorted every open job.
            due = [row[0] for row in await db.execute_fetchall(
                "SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_expires_at < ? "
                f"AND {kind} AND {NOT_BLOCKED} ORDER BY j.run_at, j.id LIMIT ?",
                (now, limit),
            )]
            if len(due) < limit:
                due += [row[0] for row in await db.execute_fetchall(
                    f"SELECT j.id FROM jobs j {_PENDING_INDEX[kinds]} "
                    f"WHERE j.state = 'pending' AND {kind} "
                    f"AND j.run_at <= ? AND {NOT_BLOCKED} ORDER BY j.run_at, j.id LIMIT ?",
                    (now, limit - len(due)),
                )]
            if not due:
                return []
            marks = ",".join("?" for _ in due)
            await db.execute(
                "UPDATE jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?, "
                f"attempts = attempts + 1, updated_at = ? WHERE id IN ({marks})",
                (owner, now + lease_seconds, now, *due),
            )
            rows = await db.execute_fetchall(
                f"SELECT {_JOB_COLUMNS}, e.body FROM jobs j JOIN events e ON e.id = j.event_id "
                f"WHERE j.id IN ({marks}) ORDER BY j.run_at, j.id",
                due,
            )
        return [_job(row) for row in rows]

    async def _guarded(self, db: aiosqlite.Connection, job: Job, sql: str,
                       params: Sequence[Any]) -> bool:
        cursor = await db.execute(
            f"{sql} WHERE id = ? AND state = 'running' AND lease_owner = ? AND attempts = ?",
            (*params, job.id, job.lease_owner, job.attempts),
        )
        return cursor.rowcount == 1

    async def extend(self, job: Job, lease_seconds: float) -> bool:
        now = self._clock()
        async with self._tx() as db:
            return await self._guarded(
                db, job, "UPDATE jobs SET lease_expires_at = ?, updated_at = ?",
                (now + lease_seconds, now),
            )

    async def finish(self, job: Job, *, follow_ups: Sequence[JobSpec] = ()) -> bool:
        now = self._clock()
        async with self._tx() as db:
            ok = await self._guarded(
                db, job, "UPDATE jobs SET state = 'done', lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = ?", (now,),
            )
            if ok and follow_ups:
                await self._insert_jobs(db, follow_ups, now)
            return ok

    async def finish_many(self, done: Sequence[tuple[Job, Sequence[JobSpec]]]) -> list[bool]:
        if not done:
            return []
        now = self._clock()
        finished: set[int] = set()
        async with self._tx() as db:
            for start in range(0, len(done), 500):  # SQLite's bound-parameter limit
                chunk = done[start:start + 500]
                held = ",".join("(?, ?, ?)" for _ in chunk)
                rows = await db.execute_fetchall(
                    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, "
                    "updated_at = ? WHERE state = 'running' AND (id, lease_owner, attempts) IN "
                    f"(VALUES {held}) RETURNING id",
                    (now, *(v for job, _ in chunk for v in (job.id, job.lease_owner,
                                                            job.attempts))),
                )
                finished.update(int(row[0]) for row in rows)
            follow_ups = [spec for job, specs in done if job.id in finished for spec in specs]
            if follow_ups:
                await self._insert_jobs(db, follow_ups, now)
        return [job.id in finished for job, _ in done]

    async def retry(self, job: Job, error: str, run_at: datetime) -> bool:
        now = self._clock()
        async with self._tx() as db:
            return await self._guarded(
                db, job, "UPDATE jobs SET state = 'pending', lease_owner = NULL, "
                "lease_expires_at = NULL, run_at = ?, last_error = ?, updated_at = ?",
                (run_at.timestamp(), error, now),
            )

    async def dead_letter(self, job: Job, error: str) -> bool:
        now = self._clock()
        async with self._tx() as db:
            return await self._guarded(
                db, job, "UPDATE jobs SET state = 'dead', lease_owner = NULL, "
                "lease_expires_at = NULL, last_error = ?, updated_at = ?", (error, now),
            )

    async def hand_back(self, job: Job) -> bool:
        now = self._clock()
        async with self._tx() as db:
            return await self._guarded(
                db, job, "UPDATE jobs SET state = 'pending', lease_owner = NULL, "
                "lease_expires_at = NULL, attempts = attempts - 1, run_at = ?, updated_at = ?",
                (now, now),
            )

    async def add_jobs(self, jobs: Sequence[JobSpec]) -> list[int]:
        now = self._clock()
        async with self._tx() as db:
            return await self._insert_jobs(db, jobs, now)

    async def _insert_jobs(
        self, db: aiosqlite.Connection, jobs: Sequence[JobSpec], now: float
    ) -> list[int]:
        ids = []
        for spec in jobs:
            rows = list(await db.execute_fetchall(
                "INSERT INTO jobs (kind, event_id, seq, call_id, bot, name, payload, state, "
                "max_attempts, run_at, created_at, updated_at) "
                "SELECT ?, e.id, e.seq, e.call_id, ?, ?, ?, 'pending', ?, ?, ?, ? "
                "FROM events e WHERE e.id = ? "
                "ON CONFLICT DO NOTHING RETURNING id",
                (spec.kind, spec.bot, spec.name, json.dumps(spec.payload),
                 spec.max_attempts or self.default_max_attempts, _ts(spec.run_at, now), now, now,
                 spec.event_id),
            ))
            if not rows:
                rows = list(await db.execute_fetchall(
                    "SELECT id FROM jobs WHERE event_id = ? AND kind = ? "
                    "AND COALESCE(bot, '') = ? AND name = ?",
                    (spec.event_id, spec.kind, spec.bot or "", spec.name),
                ))
            if not rows:
                raise StoreError(f"no event {spec.event_id!r} to attach a job to")
            ids.append(int(rows[0][0]))
        return ids

    async def jobs_in_state(self, state: str, limit: int = 100) -> list[JobRecord]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "SELECT id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, "
                "last_error FROM jobs WHERE state = ? ORDER BY updated_at DESC, id DESC LIMIT ?",
                (state, limit),
            )
        return [_record(r) for r in rows]

    async def count_due(self, within: float = 0.0) -> int:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall(
                "SELECT COUNT(*) FROM jobs WHERE state = 'running' "
                "OR (state = 'pending' AND run_at <= ?)", (self._clock() + within,),
            ))
        return int(rows[0][0])

    async def scheduled(self, name_prefix: str = "") -> list[JobRecord]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "SELECT id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, "
                "last_error FROM jobs WHERE state = 'pending' AND run_at > ? "
                "AND substr(name, 1, ?) = ? ORDER BY run_at, id",
                (self._clock(), len(name_prefix), name_prefix),
            )
        return [_record(r) for r in rows]

    async def reschedule(self, job_id: int, run_at: datetime) -> bool:
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE jobs SET run_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                (run_at.timestamp(), self._clock(), job_id),
            )
            return cursor.rowcount == 1

    async def job_counts(self) -> dict[str, int]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        counts = {"pending": 0, "running": 0, "done": 0, "dead": 0}
        counts.update({state: int(n) for state, n in rows})
        return counts

    async def jobs_for_event(self, event_id: str) -> list[JobRecord]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "SELECT id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, "
                "last_error FROM jobs WHERE event_id = ? ORDER BY id", (event_id,),
            )
        return [_record(r) for r in rows]

    # bot runs and actions

    async def record_bot_run(self, run: BotRun) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO bot_runs (job_id, event_id, bot, attempt, started_at, finished_at, "
                "outcome, error, prompt_tokens, completion_tokens, cost_usd) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.job_id, run.event_id, run.bot, run.attempt, run.started_at.timestamp(),
                 run.finished_at.timestamp(), run.outcome, run.error, run.prompt_tokens,
                 run.completion_tokens, run.cost_usd),
            )

    async def bot_runs(self, event_id: str) -> list[BotRun]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "SELECT job_id, event_id, bot, attempt, started_at, finished_at, outcome, error, "
                "prompt_tokens, completion_tokens, cost_usd FROM bot_runs WHERE event_id = ? "
                "ORDER BY id", (event_id,),
            )
        return [BotRun(job_id=r[0], event_id=r[1], bot=r[2], attempt=r[3],
                       started_at=_dt(r[4]), finished_at=_dt(r[5]), outcome=r[6], error=r[7],
                       prompt_tokens=r[8], completion_tokens=r[9], cost_usd=r[10])
                for r in rows]

    async def claim_action(
        self, key: str, *, event_id: str, bot: str, kind: str, detail: dict[str, Any]
    ) -> tuple[ActionRecord, bool]:
        now = self._clock()
        async with self._tx() as db:
            cursor = await db.execute(
                "INSERT INTO actions (key, event_id, bot, kind, state, detail, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'started', ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, event_id, bot, kind, json.dumps(detail), now, now),
            )
            created = cursor.rowcount == 1
            record = await self._action(db, key)
        assert record is not None
        return record, created

    async def settle_action(
        self, key: str, state: ActionState, detail: dict[str, Any]
    ) -> ActionRecord:
        now = self._clock()
        async with self._tx() as db:
            current = await self._action(db, key)
            if current is None:
                raise StoreError(f"no action {key!r} to settle: claim it first")
            await db.execute(
                "UPDATE actions SET state = ?, detail = ?, updated_at = ? WHERE key = ?",
                (state, json.dumps({**current.detail, **detail}), now, key),
            )
            record = await self._action(db, key)
        assert record is not None
        return record

    async def get_action(self, key: str) -> ActionRecord | None:
        async with self._tx(write=False) as db:
            return await self._action(db, key)

    async def actions_for_event(self, event_id: str) -> list[ActionRecord]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                f"SELECT {_ACTION_COLUMNS} FROM actions WHERE event_id = ? "
                "ORDER BY created_at, key",
                (event_id,),
            )
        return [_action(row) for row in rows]

    # model answers, joins, placed calls

    async def cached_answer(self, key: str) -> CachedAnswer | None:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall(
                "SELECT key, model, answer, prompt_tokens, completion_tokens FROM llm_cache "
                "WHERE key = ?", (key,),
            ))
        return CachedAnswer(*rows[0]) if rows else None

    async def cache_answer(self, answer: CachedAnswer) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO llm_cache (key, model, answer, prompt_tokens, completion_tokens, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (answer.key, answer.model, answer.answer, answer.prompt_tokens,
                 answer.completion_tokens, self._clock()),
            )

    async def join_arrive(self, key: str, event_type: str, event_id: str) -> JoinState:
        now = self._clock()
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO joins (key, created_at, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING", (key, now, now),
            )
            await db.execute(
                "UPDATE joins SET events = json_set(events, '$.' || json_quote(?), ?), "
                "updated_at = ? WHERE key = ?", (event_type, event_id, now, key),
            )
            state = await self._join(db, key)
        assert state is not None
        return state

    async def join_fire(self, key: str, claimant: str) -> bool:
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE joins SET fired = 1, fired_by = ?, updated_at = ? "
                "WHERE key = ? AND (fired = 0 OR fired_by = ?)",
                (claimant, self._clock(), key, claimant),
            )
            return cursor.rowcount == 1

    async def next_in_rotation(self, name: str) -> int:
        async with self._tx() as db:
            rows = list(await db.execute_fetchall(
                "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) "
                "DO UPDATE SET value = value + 1 RETURNING value", (name,),
            ))
        return int(rows[0][0]) - 1

    async def join_state(self, key: str) -> JoinState | None:
        async with self._tx(write=False) as db:
            return await self._join(db, key)

    async def _join(self, db: aiosqlite.Connection, key: str) -> JoinState | None:
        rows = list(await db.execute_fetchall(
            "SELECT key, events, fired FROM joins WHERE key = ?", (key,)
        ))
        if not rows:
            return None
        return JoinState(key=rows[0][0], events=json.loads(rows[0][1]), fired=bool(rows[0][2]))

    async def record_placed_call(self, call: PlacedCall) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO placed_calls (call_id, action_key, number, attempt, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
                (call.call_id, call.action_key, call.number, call.attempt,
                 call.created_at.timestamp()),
            )

    async def placed_call(self, call_id: str) -> PlacedCall | None:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall(
                "SELECT call_id, action_key, number, attempt, created_at FROM placed_calls "
                "WHERE call_id = ?", (call_id,),
            ))
        if not rows:
            return None
        r = rows[0]
        return PlacedCall(call_id=r[0], action_key=r[1], number=r[2], attempt=r[3],
                          created_at=_dt(r[4]))

    async def call_completed_event(self, call_id: str) -> str | None:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall(
                "SELECT id FROM events WHERE type = 'call.completed' AND call_id = ? "
                "AND routable = 1 ORDER BY seq LIMIT 1", (call_id,),
            ))
        return str(rows[0][0]) if rows else None

    async def count_placed_calls(self, number: str, since: datetime) -> int:
        async with self._tx(write=False) as db:
            rows = list(await db.execute_fetchall(
                "SELECT COUNT(*) FROM placed_calls WHERE number = ? AND created_at >= ?",
                (number, since.timestamp()),
            ))
        return int(rows[0][0])

    async def actions_of_kind(
        self, kind: str, *, bot: str | None = None, limit: int = 100
    ) -> list[ActionRecord]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                f"SELECT {_ACTION_COLUMNS} FROM actions WHERE kind = ? "
                "AND (? IS NULL OR bot = ?) ORDER BY updated_at DESC, key LIMIT ?",
                (kind, bot, bot, limit),
            )
        return [_action(row) for row in rows]

    async def _action(self, db: aiosqlite.Connection, key: str) -> ActionRecord | None:
        rows = list(await db.execute_fetchall(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = ?", (key,)
        ))
        return _action(rows[0]) if rows else None


_ACTION_COLUMNS = "key, event_id, bot, kind, state, detail, created_at, updated_at"


def _action(r: Any) -> ActionRecord:
    return ActionRecord(key=r[0], event_id=r[1], bot=r[2], kind=r[3], state=r[4],
                        detail=json.loads(r[5]), created_at=_dt(r[6]), updated_at=_dt(r[7]))


def _record(r: Any) -> JobRecord:
    return JobRecord(id=r[0], kind=r[1], event_id=r[2], bot=r[3], name=r[4], state=r[5],
                     attempts=r[6], max_attempts=r[7], run_at=_dt(r[8]), last_error=r[9])


def _job(r: Any) -> Job:
    return Job(id=r[0], kind=r[1], event_id=r[2], seq=r[3], call_id=r[4], bot=r[5], name=r[6],
               payload=json.loads(r[7]), attempts=r[8], max_attempts=r[9], run_at=_dt(r[10]),
               lease_owner=r[11], last_error=r[12], event_body=bytes(r[13]))


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
