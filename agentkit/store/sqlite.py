"""The SQLite engine: the embedded default, for one machine.

WAL journal with ``synchronous=FULL``: a transaction is on disk when its
commit returns, so an acknowledged delivery survives a power loss
(docs/durability.md says why and what it costs). Each transaction is one
function run whole on the store's own thread, so the event loop hands it over
once and no transaction waits on the event loop while it holds SQLite's lock.
Transactions of this process run one at a time in the order they were asked
for; other processes wait on SQLite's lock. Those asked for while the store's
thread is busy commit together (group commit): each in a savepoint of its own,
so one that fails is undone alone, then one COMMIT and one sync of the journal
for all of them. None is answered before that COMMIT returns.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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
    SQLITE_DEAD_ERROR,
    SQLITE_MIGRATIONS,
    SQLITE_OUTCOME,
)

T = TypeVar("T")
Db = sqlite3.Connection

# Without statistics SQLite prefers jobs_due, which makes a lease of one kind
# step over every due job of the other.
_PENDING_INDEX = {"all": "", "route": "INDEXED BY jobs_routes_due",
                  "work": "INDEXED BY jobs_work_due"}

_JOB_COLUMNS = (
    "j.id, j.kind, j.event_id, j.seq, j.call_id, j.bot, j.name, j.payload, j.attempts, "
    "j.max_attempts, j.run_at, j.lease_owner, j.last_error"
)


_BODY = "CAST(body AS TEXT)"
# A stored body that is not JSON (never one the receiver took) reads as no field.
_FIGURES = figures_sql(
    start="?1", end="?2",
    call_data=lambda field: (f"CASE WHEN json_valid({_BODY}) "
                             f"THEN json_extract({_BODY}, '$.data.{field}') END"),
    detail=lambda field: f"json_extract(detail, '$.{field}')",
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
        inline: bool = False,
    ) -> None:
        """``inline``: run each transaction on the calling thread, holding up the event loop
        while it runs. For a process doing one thing at a time (a replay), where handing
        each statement to the store's thread costs more than the statement."""
        self.path = str(path)
        self._inline = inline
        self.default_max_attempts = max_attempts
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._clock = clock
        self._db: Db | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._asked: deque[_Asked] = deque()
        self._asked_lock = threading.Lock()
        self._draining = False

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # connection and transactions

    async def open(self) -> None:
        if self._thread is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentkit-sqlite")
        try:
            self._db = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._connect
            )
        except sqlite3.Error as exc:
            await self.close()
            raise StoreUnavailable(f"cannot open the SQLite store at {self.path}: {exc}") from None
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> Db:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            db.close()
            raise
        return db

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        db, self._db = self._db, None
        if thread is None:
            return
        if db is not None:
            # Queued after every transaction asked for before: they finish first.
            await asyncio.get_running_loop().run_in_executor(thread, db.close)
        thread.shutdown(wait=False)

    async def _write(self, transaction: Callable[[Db], T]) -> T:
        """Run ``transaction(db)`` on the store's thread between BEGIN IMMEDIATE and COMMIT."""
        return await self._run(transaction, "BEGIN IMMEDIATE")

    async def _read(self, transaction: Callable[[Db], T]) -> T:
        """Run ``transaction(db)`` on the store's thread in a read transaction."""
        return await self._run(transaction, "BEGIN")

    async def _run(self, transaction: Callable[[Db], T], begin: str) -> T:
        if self._thread is None or self._db is None:
            raise StoreUnavailable("the store is not open")
        if self._inline:
            return _transaction(self._db, begin, transaction)
        loop = asyncio.get_running_loop()
        asked = _Asked(transaction, begin != "BEGIN", loop, loop.create_future())
        with self._asked_lock:
            self._asked.append(asked)
            start, self._draining = not self._draining, True
        if start:
            self._thread.submit(self._drain, self._db)
        result: T = await asked.future
        return result

    def _drain(self, db: Db) -> None:
        """On the store's thread: commit what was asked for, in groups, until none is left."""
        while True:
            with self._asked_lock:
                if not self._asked:
                    self._draining = False
                    return
                group = [self._asked.popleft()
                         for _ in range(min(len(self._asked), MAX_GROUP))]
            try:
                _commit_together(db, group)
            except BaseException as exc:  # a caller left waiting would wait for ever
                _fail_all(group, StoreUnavailable(f"the SQLite store failed: {exc}"))

    async def _migrate(self) -> None:
        def migrate(db: Db) -> None:
            db.execute("CREATE TABLE IF NOT EXISTS agentkit_schema (version INTEGER NOT NULL)")
            rows = db.execute("SELECT version FROM agentkit_schema").fetchall()
            version = int(rows[0][0]) if rows else 0
            if not rows:
                db.execute("INSERT INTO agentkit_schema (version) VALUES (0)")
            if version > len(SQLITE_MIGRATIONS):
                raise StoreError(
                    f"the store's schema is version {version}, newer than this agentkit knows "
                    f"({len(SQLITE_MIGRATIONS)}): upgrade agentkit"
                )
            for number, script in enumerate(SQLITE_MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    db.execute(statement)
                db.execute("UPDATE agentkit_schema SET version = ?", (number,))

        await self._write(migrate)

    async def schema_version(self) -> int:
        return await self._read(
            lambda db: int(db.execute("SELECT version FROM agentkit_schema").fetchone()[0])
        )

    async def ping(self) -> None:
        await self._write(lambda db: db.execute("SELECT 1 FROM agentkit_schema").fetchall())

    # events

    async def add_events(self, events: Sequence[NewEvent]) -> list[bool]:
        if not events:
            return []
        now = self._clock()
        default_max = self.default_max_attempts
        unique = first_of_each(events)

        def add(db: Db) -> dict[str, tuple[int, str | None, int]]:
            placeholders = ",".join("(?, ?, ?, ?, ?, ?, ?)" for _ in unique)
            values: list[Any] = []
            for event in unique:
                values += [event.id, event.type, event.created_at.timestamp(), now,
                           event.call_id, int(event.routable), event.body]
            inserted = {
                row[0]: (row[1], row[2], row[3])
                for row in db.execute(
                    "INSERT INTO events (id, type, created_at, received_at, call_id, routable, "
                    f"body) VALUES {placeholders} ON CONFLICT (id) DO NOTHING "
                    "RETURNING id, seq, call_id, routable",
                    values,
                ).fetchall()
            }
            routes = [(eid, seq, call_id) for eid, (seq, call_id, routable) in inserted.items()
                      if routable]
            if routes:
                db.executemany(
                    "INSERT INTO jobs (kind, event_id, seq, call_id, state, max_attempts, run_at, "
                    "created_at, updated_at) VALUES ('route', ?, ?, ?, 'pending', ?, ?, ?, ?)",
                    [(eid, seq, call_id, default_max, now, now, now)
                     for eid, seq, call_id in routes],
                )
            _upsert_calls(db, [e for e in unique if e.id in inserted], now)
            again = redelivered(events, inserted)
            if again:
                db.executemany("UPDATE events SET duplicates = duplicates + ? WHERE id = ?",
                               [(n, eid) for eid, n in again.items()])
            return inserted

        inserted = await self._write(add)
        seen: set[str] = set()
        fresh = []
        for event in events:
            fresh.append(event.id in inserted and event.id not in seen)
            seen.add(event.id)
        return fresh

    async def get_event(self, event_id: str) -> StoredEvent | None:
        r = await self._read(lambda db: db.execute(
            "SELECT id, seq, type, created_at, received_at, call_id, body, routable "
            "FROM events WHERE id = ?", (event_id,)
        ).fetchone())
        if r is None:
            return None
        return StoredEvent(id=r[0], seq=r[1], type=r[2], created_at=_dt(r[3]),
                           received_at=_dt(r[4]), call_id=r[5], body=bytes(r[6]),
                           routable=bool(r[7]))

    async def count_events(self) -> int:
        return await self._read(
            lambda db: int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        )

    # jobs

    async def lease(self, owner: str, limit: int, lease_seconds: float, *,
                    kinds: LeaseKinds = "all") -> list[Job]:
        if limit <= 0:
            return []
        now = self._clock()
        kind = LEASE_KINDS[kinds]

        def lease(db: Db) -> list[Any]:
            db.execute(
                "UPDATE jobs SET state = 'dead', lease_owner = NULL, updated_at = ?, "
                "last_error = 'its worker stopped during the last attempt (lease expired)' "
                "WHERE state = 'running' AND lease_expires_at < ? AND attempts >= max_attempts",
                (now, now),
            )
            # Two queries rather than one with OR: each reads its index in order
            # and stops at the limit, where the OR read and sorted every open job.
            due = [row[0] for row in db.execute(
                "SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_expires_at < ? "
                f"AND {kind} AND {NOT_BLOCKED} ORDER BY j.run_at, j.id LIMIT ?",
                (now, limit),
            )]
            if len(due) < limit:
                due += [row[0] for row in db.execute(
                    f"SELECT j.id FROM jobs j {_PENDING_INDEX[kinds]} "
                    f"WHERE j.state = 'pending' AND {kind} "
                    f"AND j.run_at <= ? AND {NOT_BLOCKED} ORDER BY j.run_at, j.id LIMIT ?",
                    (now, limit - len(due)),
                )]
            if not due:
                return []
            marks = ",".join("?" for _ in due)
            db.execute(
                "UPDATE jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?, "
                f"attempts = attempts + 1, updated_at = ? WHERE id IN ({marks})",
                (owner, now + lease_seconds, now, *due),
            )
            return db.execute(
                f"SELECT {_JOB_COLUMNS}, e.body FROM jobs j JOIN events e ON e.id = j.event_id "
                f"WHERE j.id IN ({marks}) ORDER BY j.run_at, j.id",
                due,
            ).fetchall()

        return [_job(row) for row in await self._write(lease)]

    async def extend(self, job: Job, lease_seconds: float) -> bool:
        now = self._clock()
        return await self._write(lambda db: _guarded(
            db, job, "UPDATE jobs SET lease_expires_at = ?, updated_at = ?",
            (now + lease_seconds, now),
        ))

    async def finish(self, job: Job, *, follow_ups: Sequence[JobSpec] = ()) -> bool:
        now = self._clock()
        default_max = self.default_max_attempts

        def finish(db: Db) -> bool:
            ok = _guarded(
                db, job, "UPDATE jobs SET state = 'done', lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = ?", (now,),
            )
            if ok and follow_ups:
                _insert_jobs(db, follow_ups, now, default_max)
            return ok

        return await self._write(finish)

    async def finish_many(self, done: Sequence[tuple[Job, Sequence[JobSpec]]]) -> list[bool]:
        if not done:
            return []
        now = self._clock()
        default_max = self.default_max_attempts

        def finish_many(db: Db) -> set[int]:
            finished: set[int] = set()
            for start in range(0, len(done), 500):  # SQLite's bound-parameter limit
                chunk = done[start:start + 500]
                held = ",".join("(?, ?, ?)" for _ in chunk)
                rows = db.execute(
                    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, "
                    "updated_at = ? WHERE state = 'running' AND (id, lease_owner, attempts) IN "
                    f"(VALUES {held}) RETURNING id",
                    (now, *(v for job, _ in chunk for v in (job.id, job.lease_owner,
                                                            job.attempts))),
                ).fetchall()
                finished.update(int(row[0]) for row in rows)
            follow_ups = [spec for job, specs in done if job.id in finished for spec in specs]
            if follow_ups:
                _insert_jobs(db, follow_ups, now, default_max)
            return finished

        finished = await self._write(finish_many)
        return [job.id in finished for job, _ in done]

    async def retry(self, job: Job, error: str, run_at: datetime) -> bool:
        now = self._clock()
        return await self._write(lambda db: _guarded(
            db, job, "UPDATE jobs SET state = 'pending', lease_owner = NULL, "
            "lease_expires_at = NULL, run_at = ?, last_error = ?, updated_at = ?",
            (run_at.timestamp(), error, now),
        ))

    async def dead_letter(self, job: Job, error: str) -> bool:
        now = self._clock()
        return await self._write(lambda db: _guarded(
            db, job, "UPDATE jobs SET state = 'dead', lease_owner = NULL, "
            "lease_expires_at = NULL, last_error = ?, updated_at = ?", (error, now),
        ))

    async def retry_dead(self, job_id: int) -> bool:
        now = self._clock()
        return await self._write(lambda db: db.execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, lease_owner = NULL, "
            "lease_expires_at = NULL, updated_at = ? WHERE id = ? AND state = 'dead'",
            (now, now, job_id),
        ).rowcount == 1)

    async def hand_back(self, job: Job) -> bool:
        now = self._clock()
        return await self._write(lambda db: _guarded(
            db, job, "UPDATE jobs SET state = 'pending', lease_owner = NULL, "
            "lease_expires_at = NULL, attempts = attempts - 1, run_at = ?, updated_at = ?",
            (now, now),
        ))

    async def add_jobs(self, jobs: Sequence[JobSpec]) -> list[int]:
        now = self._clock()
        default_max = self.default_max_attempts
        return await self._write(lambda db: _insert_jobs(db, jobs, now, default_max))

    async def jobs_in_state(self, state: str, limit: int = 100) -> list[JobRecord]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM jobs "
            "WHERE state = ? ORDER BY updated_at DESC, id DESC LIMIT ?",
            (state, limit),
        ).fetchall())
        return [_record(r) for r in rows]

    async def count_due(self, within: float = 0.0) -> int:
        until = self._clock() + within
        return await self._read(lambda db: int(db.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = 'running' "
            "OR (state = 'pending' AND run_at <= ?)", (until,),
        ).fetchone()[0]))

    async def scheduled(self, name_prefix: str = "") -> list[JobRecord]:
        now = self._clock()
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE state = 'pending' AND run_at > ? "
            "AND substr(name, 1, ?) = ? ORDER BY run_at, id",
            (now, len(name_prefix), name_prefix),
        ).fetchall())
        return [_record(r) for r in rows]

    async def reschedule(self, job_id: int, run_at: datetime) -> bool:
        now = self._clock()
        return await self._write(lambda db: db.execute(
            "UPDATE jobs SET run_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
            (run_at.timestamp(), now, job_id),
        ).rowcount == 1)

    async def job_counts(self) -> dict[str, int]:
        now = self._clock()
        rows = await self._read(lambda db: db.execute(
            "SELECT state, COUNT(*) FROM jobs WHERE NOT (state = 'pending' AND run_at > ? "
            "AND kind = 'task' AND substr(name, 1, ?) = ?) GROUP BY state",
            (now, len(JOIN_TIMER_PREFIX), JOIN_TIMER_PREFIX),
        ).fetchall())
        counts = {"pending": 0, "running": 0, "done": 0, "dead": 0, "discarded": 0}
        counts.update({state: int(n) for state, n in rows})
        return counts

    async def jobs_for_event(self, event_id: str) -> list[JobRecord]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE event_id = ? ORDER BY id", (event_id,),
        ).fetchall())
        return [_record(r) for r in rows]

    # bot runs and actions

    async def record_bot_run(self, run: BotRun) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO bot_runs (job_id, event_id, bot, attempt, started_at, finished_at, "
            "outcome, error, prompt_tokens, completion_tokens, cost_usd) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.job_id, run.event_id, run.bot, run.attempt, run.started_at.timestamp(),
             run.finished_at.timestamp(), run.outcome, run.error, run.prompt_tokens,
             run.completion_tokens, run.cost_usd),
        ))

    async def bot_runs(self, event_id: str) -> list[BotRun]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_BOT_RUN_COLUMNS} FROM bot_runs WHERE event_id = ? ORDER BY id",
            (event_id,),
        ).fetchall())
        return [_bot_run(r) for r in rows]

    async def claim_action(
        self, key: str, *, event_id: str, bot: str, kind: str, detail: dict[str, Any]
    ) -> tuple[ActionRecord, bool]:
        now = self._clock()

        def claim(db: Db) -> tuple[ActionRecord | None, bool]:
            created = db.execute(
                "INSERT INTO actions (key, event_id, bot, kind, state, detail, created_at, "
                "updated_at, call_id) VALUES (?, ?, ?, ?, 'started', ?, ?, ?, "
                "(SELECT call_id FROM events WHERE id = ?)) ON CONFLICT (key) DO NOTHING",
                (key, event_id, bot, kind, json.dumps(detail), now, now, event_id),
            ).rowcount == 1
            return _action_by_key(db, key), created

        record, created = await self._write(claim)
        assert record is not None
        return record, created

    async def settle_action(
        self, key: str, state: ActionState, detail: dict[str, Any]
    ) -> ActionRecord:
        now = self._clock()

        def settle(db: Db) -> ActionRecord | None:
            current = _action_by_key(db, key)
            if current is None:
                raise StoreError(f"no action {key!r} to settle: claim it first")
            if state == "started" and current.state in _SETTLED:
                return current
            db.execute(
                "UPDATE actions SET state = ?, detail = ?, updated_at = ? WHERE key = ?",
                (state, json.dumps({**current.detail, **detail}), now, key),
            )
            return _action_by_key(db, key)

        record = await self._write(settle)
        assert record is not None
        return record

    async def get_action(self, key: str) -> ActionRecord | None:
        return await self._read(lambda db: _action_by_key(db, key))

    async def actions_for_call(self, call_id: str) -> list[ActionRecord]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE event_id IN "
            "(SELECT id FROM events WHERE call_id = ?) ORDER BY created_at, key",
            (call_id,),
        ).fetchall())
        return [_action(row) for row in rows]

    async def actions_for_event(self, event_id: str) -> list[ActionRecord]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE event_id = ? "
            "ORDER BY created_at, key",
            (event_id,),
        ).fetchall())
        return [_action(row) for row in rows]

    # model answers, joins, placed calls

    async def cached_answer(self, key: str) -> CachedAnswer | None:
        row = await self._read(lambda db: db.execute(
            "SELECT key, model, answer, prompt_tokens, completion_tokens FROM llm_cache "
            "WHERE key = ?", (key,),
        ).fetchone())
        return CachedAnswer(*row) if row else None

    async def cache_answer(self, answer: CachedAnswer) -> None:
        now = self._clock()
        await self._write(lambda db: db.execute(
            "INSERT INTO llm_cache (key, model, answer, prompt_tokens, completion_tokens, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (answer.key, answer.model, answer.answer, answer.prompt_tokens,
             answer.completion_tokens, now),
        ))

    async def join_arrive(self, key: str, event_type: str, event_id: str) -> JoinState:
        now = self._clock()

        def arrive(db: Db) -> JoinState | None:
            db.execute(
                "INSERT INTO joins (key, created_at, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING", (key, now, now),
            )
            db.execute(
                "UPDATE joins SET events = json_set(events, '$.' || json_quote(?), ?), "
                "updated_at = ? WHERE key = ?", (event_type, event_id, now, key),
            )
            return _join_by_key(db, key)

        state = await self._write(arrive)
        assert state is not None
        return state

    async def join_fire(self, key: str, claimant: str) -> bool:
        now = self._clock()
        return await self._write(lambda db: db.execute(
            "UPDATE joins SET fired = 1, fired_by = ?, updated_at = ? "
            "WHERE key = ? AND (fired = 0 OR fired_by = ?)",
            (claimant, now, key, claimant),
        ).rowcount == 1)

    async def next_in_rotation(self, name: str) -> int:
        value = await self._write(lambda db: int(db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) "
            "DO UPDATE SET value = value + 1 RETURNING value", (name,),
        ).fetchone()[0]))
        return value - 1

    async def join_state(self, key: str) -> JoinState | None:
        return await self._read(lambda db: _join_by_key(db, key))

    async def record_placed_call(self, call: PlacedCall) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO placed_calls (call_id, action_key, number, attempt, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
            (call.call_id, call.action_key, call.number, call.attempt,
             call.created_at.timestamp()),
        ))

    async def placed_call(self, call_id: str) -> PlacedCall | None:
        r = await self._read(lambda db: db.execute(
            "SELECT call_id, action_key, number, attempt, created_at FROM placed_calls "
            "WHERE call_id = ?", (call_id,),
        ).fetchone())
        if r is None:
            return None
        return PlacedCall(call_id=r[0], action_key=r[1], number=r[2], attempt=r[3],
                          created_at=_dt(r[4]))

    async def call_completed_event(self, call_id: str) -> str | None:
        row = await self._read(lambda db: db.execute(
            "SELECT id FROM events WHERE type = 'call.completed' AND call_id = ? "
            "AND routable = 1 ORDER BY seq LIMIT 1", (call_id,),
        ).fetchone())
        return str(row[0]) if row else None

    async def count_placed_calls(self, number: str, since: datetime) -> int:
        return await self._read(lambda db: int(db.execute(
            "SELECT COUNT(*) FROM placed_calls WHERE number = ? AND created_at >= ?",
            (number, since.timestamp()),
        ).fetchone()[0]))

    async def actions_of_kind(
        self, kind: str, *, bot: str | None = None, limit: int = 100
    ) -> list[ActionRecord]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_ACTION_COLUMNS} FROM actions WHERE kind = ? "
            "AND (? IS NULL OR bot = ?) ORDER BY updated_at DESC, key LIMIT ?",
            (kind, bot, bot, limit),
        ).fetchall())
        return [_action(row) for row in rows]

    async def open_actions(self, kinds: Sequence[str], *, limit: int = 100) -> list[ActionRecord]:
        if not kinds:
            return []
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_ACTION_COLUMNS} FROM actions INDEXED BY actions_open "
            f"WHERE state = 'started' AND kind IN ({_marks(kinds)}) "
            "ORDER BY created_at, key LIMIT ?",
            (*kinds, limit),
        ).fetchall())
        return [_action(row) for row in rows]

    # the console's reads

    async def list_calls(
        self, query: CallQuery, *, limit: int = 50, before: CallCursor | None = None
    ) -> list[CallRow]:
        params: list[Any] = []

        def param(value: Any) -> str:
            params.append(value)
            return "?"

        sql = list_calls_sql(query, limit, before, param=param,
                             detail_outcome=SQLITE_OUTCOME,
                             call_jobs="jobs j INDEXED BY jobs_by_call",
                             cursor=lambda c: (c.started_at.timestamp(), c.call_id))
        rows = await self._read(lambda db: db.execute(sql, params).fetchall())
        return [_call(row) for row in rows]

    async def get_call(self, call_id: str) -> CallRow | None:
        row = await self._read(lambda db: db.execute(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id = ?", (call_id,)
        ).fetchone())
        return None if row is None else _call(row)

    async def call_activity(self, call_ids: Sequence[str]) -> dict[str, CallActivity]:
        ids = list(dict.fromkeys(call_ids))
        if not ids:
            return {}

        def read(db: Db) -> tuple[list[Any], list[Any]]:
            actions = db.execute(
                f"SELECT {_ACTION_COLUMNS}, call_id FROM actions WHERE call_id IN ({_marks(ids)}) "
                "ORDER BY created_at, key", ids,
            ).fetchall()
            jobs = db.execute(
                "SELECT call_id, bot, SUM(state = 'dead') FROM jobs "
                f"WHERE call_id IN ({_marks(ids)}) GROUP BY call_id, bot ORDER BY call_id, bot",
                ids,
            ).fetchall()
            return actions, jobs

        actions, jobs = await self._read(read)
        return call_activity(ids, [(row[8], _action(row)) for row in actions], jobs)

    async def events_of_call(self, call_id: str) -> list[EventRecord]:
        rows = await self._read(lambda db: db.execute(
            "SELECT id, type, created_at, received_at, duplicates, routable FROM events "
            "WHERE call_id = ? ORDER BY seq", (call_id,),
        ).fetchall())
        return [EventRecord(id=r[0], type=r[1], created_at=_dt(r[2]), received_at=_dt(r[3]),
                            duplicates=r[4], routable=bool(r[5])) for r in rows]

    async def jobs_of_call(self, call_id: str) -> list[JobRecord]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE call_id = ? ORDER BY id", (call_id,),
        ).fetchall())
        return [_record(r) for r in rows]

    async def get_job(self, job_id: int) -> JobRecord | None:
        row = await self._read(lambda db: db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE id = ?", (job_id,),
        ).fetchone())
        return None if row is None else _record(row)

    async def bot_runs_of_call(self, call_id: str) -> list[BotRun]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_BOT_RUN_COLUMNS} FROM bot_runs WHERE event_id IN "
            "(SELECT id FROM events WHERE call_id = ?) ORDER BY started_at, id", (call_id,),
        ).fetchall())
        return [_bot_run(r) for r in rows]

    async def record_model_answer(self, answer: ModelAnswer) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO model_answers (event_id, call_id, bot, task, model, prompt_tokens, "
            "completion_tokens, cost_usd, cached, answer, created_at) "
            "VALUES (?, (SELECT call_id FROM events WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (answer.event_id, answer.event_id, answer.bot, answer.task, answer.model,
             answer.prompt_tokens, answer.completion_tokens, answer.cost_usd,
             int(answer.cached), answer.answer, answer.created_at.timestamp()),
        ))

    async def model_answers_of_call(self, call_id: str) -> list[ModelAnswer]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_ANSWER_COLUMNS} FROM model_answers WHERE call_id = ? "
            "ORDER BY created_at, id", (call_id,),
        ).fetchall())
        return [ModelAnswer(event_id=r[0], bot=r[1], task=r[2], model=r[3], prompt_tokens=r[4],
                            completion_tokens=r[5], cost_usd=r[6], cached=bool(r[7]),
                            answer=r[8], created_at=_dt(r[9])) for r in rows]

    async def dead_groups(self, *, limit: int = 100) -> list[DeadGroup]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT bot, {SQLITE_DEAD_ERROR}, COUNT(*), MAX(updated_at) FROM jobs "
            "INDEXED BY jobs_dead WHERE state = 'dead' GROUP BY 1, 2 "
            "ORDER BY 3 DESC, 4 DESC LIMIT ?", (limit,),
        ).fetchall())
        return [DeadGroup(bot=r[0], error=r[1], count=r[2], latest=_dt(r[3])) for r in rows]

    async def dead_in_group(self, bot: str | None, error: str, *,
                            limit: int = 100) -> list[JobRecord]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM jobs INDEXED BY jobs_dead WHERE state = 'dead' "
            f"AND bot IS ? AND {SQLITE_DEAD_ERROR} = ? ORDER BY updated_at DESC, id DESC LIMIT ?",
            (bot, error, limit),
        ).fetchall())
        return [_record(r) for r in rows]

    async def discard_dead(self, job_id: int) -> bool:
        now = self._clock()
        return await self._write(lambda db: db.execute(
            "UPDATE jobs SET state = 'discarded', updated_at = ? WHERE id = ? AND state = 'dead'",
            (now, job_id),
        ).rowcount == 1)

    async def discard_pending(self, event_id: str, name_prefix: str) -> int:
        now = self._clock()
        return await self._write(lambda db: db.execute(
            "UPDATE jobs SET state = 'discarded', updated_at = ? WHERE event_id = ? "
            "AND state = 'pending' AND substr(name, 1, ?) = ?",
            (now, event_id, len(name_prefix), name_prefix),
        ).rowcount)

    async def health(self, *, now: datetime | None = None) -> StoreHealth:
        at = self._clock() if now is None else now.timestamp()
        midnight = _dt(at).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

        def read(db: Db) -> StoreHealth:
            def count(sql: str, *params: Any) -> Any:
                return db.execute(sql, params).fetchone()[0]

            return StoreHealth(
                pending=count("SELECT COUNT(*) FROM jobs WHERE state = 'pending'")
                - count("SELECT COUNT(*) FROM jobs INDEXED BY jobs_join_timers "
                        f"WHERE {JOIN_TIMER} AND run_at > ?", at),
                running=count("SELECT COUNT(*) FROM jobs WHERE state = 'running'"),
                dead=count("SELECT COUNT(*) FROM jobs WHERE state = 'dead'"),
                done_last_minute=count(
                    "SELECT COUNT(*) FROM jobs INDEXED BY jobs_done_by_time WHERE state = 'done' "
                    "AND updated_at >= ? AND updated_at <= ?", at - 60, at),
                model_spend_today_usd=float(count(
                    "SELECT TOTAL(cost_usd) FROM model_answers "
                    "WHERE created_at >= ? AND created_at <= ?", midnight, at)),
                dial_claims_24h=count(
                    "SELECT COUNT(*) FROM dial_claims WHERE created_at >= ? AND created_at <= ?",
                    at - 86400, at),
            )

        return await self._read(read)

    async def day_figures(self, start: datetime, end: datetime) -> DayFigures:
        window = (start.timestamp(), end.timestamp())

        def read(db: Db) -> DayFigures:
            return tally(db.execute(_FIGURES.counts, window).fetchone(),
                         db.execute(_FIGURES.outcomes, window).fetchall(),
                         [row[0] for row in db.execute(_FIGURES.topics, window)])

        return await self._read(read)

    # replay

    async def replay_calls(
        self, *, since: datetime | None = None, until: datetime | None = None,
        after: CallCursor | None = None, limit: int = 500,
    ) -> list[CallRow]:
        terms: list[str] = []
        params: list[Any] = []
        # One lower bound, the later: with both, SQLite seeks by one and scans past the other.
        if after is not None and since is not None:
            since, after = (None, after) if after.started_at >= since else (since, None)
        if since is not None:
            terms.append("started_at >= ?")
            params.append(since.timestamp())
        if until is not None:
            terms.append("started_at < ?")
            params.append(until.timestamp())
        if after is not None:
            terms.append("(started_at, call_id) > (?, ?)")
            params += [after.started_at.timestamp(), after.call_id]
        rows = await self._read(lambda db: db.execute(
            f"SELECT {CALL_COLUMNS} FROM calls INDEXED BY calls_newest "
            f"WHERE {' AND '.join(terms) or 'TRUE'} ORDER BY started_at, call_id LIMIT ?",
            (*params, limit),
        ).fetchall())
        return [_call(row) for row in rows]

    async def call_events(self, call_id: str) -> list[StoredEvent]:
        rows = await self._read(lambda db: db.execute(
            "SELECT id, seq, type, created_at, received_at, call_id, body, routable "
            "FROM events WHERE call_id = ? ORDER BY seq", (call_id,),
        ).fetchall())
        return [StoredEvent(id=r[0], seq=r[1], type=r[2], created_at=_dt(r[3]),
                            received_at=_dt(r[4]), call_id=r[5], body=bytes(r[6]),
                            routable=bool(r[7])) for r in rows]

    async def record_api_reads(self, reads: Sequence[ApiRead]) -> None:
        if not reads:
            return
        await self._write(lambda db: db.executemany(
            "INSERT INTO api_reads (path, call_id, body, read_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET call_id = excluded.call_id, "
            "body = excluded.body, read_at = excluded.read_at "
            "WHERE excluded.read_at >= api_reads.read_at",
            [(r.path, r.call_id, r.body, r.read_at.timestamp()) for r in reads],
        ))

    async def api_read(self, path: str) -> ApiRead | None:
        row = await self._read(lambda db: db.execute(
            "SELECT path, call_id, body, read_at FROM api_reads WHERE path = ?", (path,),
        ).fetchone())
        if row is None:
            return None
        return ApiRead(path=row[0], call_id=row[1], body=bytes(row[2]), read_at=_dt(row[3]))

    # dialling

    async def claim_dial(self, claim: DialClaim) -> DialGrant:
        now = self._clock()
        since = claim.since.timestamp()

        def decide(db: Db) -> DialGrant:
            # BEGIN IMMEDIATE: every process's claims run one at a time.
            if _switch_on(db, CALLS_PAUSED):
                return DialGrant(False, "paused")
            if db.execute("SELECT 1 FROM do_not_call WHERE number = ?",
                          (claim.number,)).fetchone():
                return DialGrant(False, "do_not_call")
            to_number = int(db.execute(
                "SELECT COUNT(*) FROM dial_claims WHERE number = ? AND created_at >= ?",
                (claim.number, since),
            ).fetchone()[0])
            in_all = int(db.execute(
                "SELECT COUNT(*) FROM dial_claims WHERE created_at >= ?", (since,)
            ).fetchone()[0])
            if db.execute("SELECT 1 FROM dial_claims WHERE action_key = ? AND attempt = ?",
                          (claim.action_key, claim.attempt)).fetchone():
                return DialGrant(True, None, to_number, in_all)
            if to_number >= claim.number_limit:
                return DialGrant(False, "number_cap", to_number, in_all)
            if in_all >= claim.daily_limit:
                return DialGrant(False, "daily_max", to_number, in_all)
            db.execute(
                "INSERT INTO dial_claims (action_key, attempt, number, bot, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (claim.action_key, claim.attempt, claim.number, claim.bot, now),
            )
            return DialGrant(True, None, to_number + 1, in_all + 1)

        return await self._write(decide)

    async def count_dial_claims(self, number: str, since: datetime,
                                until: datetime | None = None) -> int:
        end = until.timestamp() if until is not None else float("inf")
        return await self._read(lambda db: int(db.execute(
            "SELECT COUNT(*) FROM dial_claims WHERE number = ? AND created_at >= ? "
            "AND created_at < ?", (number, since.timestamp(), end),
        ).fetchone()[0]))

    async def add_do_not_call(self, number: str, *, reason: str, added_by: str) -> bool:
        now = self._clock()
        return await self._write(lambda db: db.execute(
            "INSERT INTO do_not_call (number, reason, added_by, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (number) DO NOTHING", (number, reason, added_by, now),
        ).rowcount == 1)

    async def remove_do_not_call(self, number: str) -> bool:
        return await self._write(lambda db: db.execute(
            "DELETE FROM do_not_call WHERE number = ?", (number,)
        ).rowcount == 1)

    async def do_not_call(self, number: str) -> DoNotCallEntry | None:
        row = await self._read(lambda db: db.execute(
            "SELECT number, reason, added_by, created_at FROM do_not_call WHERE number = ?",
            (number,),
        ).fetchone())
        return None if row is None else DoNotCallEntry(row[0], row[1], row[2], _dt(row[3]))

    async def do_not_call_list(self) -> list[DoNotCallEntry]:
        rows = await self._read(lambda db: db.execute(
            "SELECT number, reason, added_by, created_at FROM do_not_call ORDER BY number"
        ).fetchall())
        return [DoNotCallEntry(r[0], r[1], r[2], _dt(r[3])) for r in rows]

    async def set_switch(self, name: str, on: bool, *, changed_by: str) -> bool:
        now = self._clock()

        def flip(db: Db) -> bool:
            if _switch_on(db, name) == on:
                return False
            db.execute(
                "INSERT INTO switches (name, value, changed_by, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "changed_by = excluded.changed_by, updated_at = excluded.updated_at",
                (name, int(on), changed_by, now),
            )
            return True

        return await self._write(flip)

    async def switch(self, name: str) -> bool:
        return await self._read(lambda db: _switch_on(db, name))

    async def hold_callback(
        self, number: str, kind: str, action_key: str, *, asked_at: datetime
    ) -> str:
        now = self._clock()

        def hold(db: Db) -> str:
            row = db.execute(
                "SELECT o.action_key, a.state, o.reached_at FROM open_callbacks o "
                "LEFT JOIN actions a ON a.key = o.action_key WHERE o.number = ? AND o.kind = ?",
                (number, kind),
            ).fetchone()
            if row is not None and (row[1] == "started" or (
                    row[2] is not None and row[2] >= asked_at.timestamp())):
                return str(row[0])
            db.execute(
                "INSERT INTO open_callbacks (number, kind, action_key, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (number, kind) DO UPDATE SET "
                "action_key = excluded.action_key, created_at = excluded.created_at, "
                "reached_at = NULL",
                (number, kind, action_key, now),
            )
            return action_key

        return await self._write(hold)

    async def release_callback(
        self, number: str, kind: str, action_key: str, *, reached: bool
    ) -> None:
        now = self._clock()
        if reached:
            await self._write(lambda db: db.execute(
                "UPDATE open_callbacks SET reached_at = ? "
                "WHERE number = ? AND kind = ? AND action_key = ?",
                (now, number, kind, action_key),
            ))
            return
        await self._write(lambda db: db.execute(
            "DELETE FROM open_callbacks WHERE number = ? AND kind = ? AND action_key = ?",
            (number, kind, action_key),
        ))

    async def append_to_action(self, key: str, field: str, item: dict[str, Any]) -> ActionRecord:
        now = self._clock()

        def append(db: Db) -> ActionRecord | None:
            current = _action_by_key(db, key)
            if current is None:
                raise StoreError(f"no action {key!r} to add to: claim it first")
            items = [*current.detail.get(field, []), item]
            db.execute("UPDATE actions SET detail = ?, updated_at = ? WHERE key = ?",
                       (json.dumps({**current.detail, field: items}), now, key))
            return _action_by_key(db, key)

        record = await self._write(append)
        assert record is not None
        return record


    # approvals

    async def add_approval(self, new: NewApproval) -> tuple[Approval, bool]:
        now = self._clock()

        def add(db: Db) -> tuple[Approval | None, bool]:
            created = db.execute(
                f"INSERT INTO approvals ({_APPROVAL_COLUMNS}) VALUES (?, ?, ?, "
                "(SELECT call_id FROM events WHERE id = ?), ?, ?, ?, ?, ?, 'pending', NULL, "
                "NULL, NULL, ?, '{}') ON CONFLICT (action_key) DO NOTHING",
                (new.id, new.action_key, new.event_id, new.event_id, new.bot, new.kind,
                 json.dumps(new.what), json.dumps(new.why), new.deadline.timestamp(), now),
            ).rowcount == 1
            row = db.execute(f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE action_key = ?",
                             (new.action_key,)).fetchone()
            return (_approval(row) if row else None), created

        approval, created = await self._write(add)
        assert approval is not None
        return approval, created

    async def get_approval(self, approval_id: str) -> Approval | None:
        return await self._read(lambda db: _approval_by_id(db, approval_id))

    async def decide_approval(
        self, approval_id: str, decision: ApprovalDecision, *, by: str,
        now: datetime | None = None, reason: str = "",
    ) -> tuple[Approval, bool]:
        if decision not in ("approved", "rejected"):
            raise StoreError(f"an approval is approved or rejected, not {decision!r}")
        at = _ts(now, self._clock())

        def decide(db: Db) -> tuple[Approval | None, bool]:
            # One statement: the deadline is checked on the row it changes.
            rows = db.execute(
                f"UPDATE approvals SET "
                "state = CASE WHEN deadline > :at THEN :decision ELSE 'expired' END, "
                "decided_by = CASE WHEN deadline > :at THEN :by END, "
                "reason = CASE WHEN deadline > :at THEN :reason ELSE :passed END, "
                "decided_at = :at WHERE id = :id AND state = 'pending' "
                f"RETURNING {_APPROVAL_COLUMNS}",
                {"at": at, "decision": decision, "by": by, "reason": reason or None,
                 "passed": DEADLINE_PASSED, "id": approval_id},
            ).fetchall()
            if rows:
                changed = _approval(rows[0])
                return changed, changed.state != "expired"
            return _approval_by_id(db, approval_id), False

        approval, decided = await self._write(decide)
        if approval is None:
            raise StoreError(f"no approval {approval_id!r} to decide")
        return approval, decided

    async def pending_approvals(self, *, limit: int = 100) -> list[Approval]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE state = 'pending' "
            "ORDER BY created_at, id LIMIT ?", (limit,),
        ).fetchall())
        return [_approval(row) for row in rows]

    async def expire_approvals(self, now: datetime | None = None) -> list[Approval]:
        at = _ts(now, self._clock())
        rows = await self._write(lambda db: db.execute(
            "UPDATE approvals SET state = 'expired', decided_at = ?, reason = ? "
            f"WHERE state = 'pending' AND deadline <= ? RETURNING {_APPROVAL_COLUMNS}",
            (at, DEADLINE_PASSED, at),
        ).fetchall())
        return sorted((_approval(row) for row in rows), key=lambda a: (a.deadline, a.id))

    async def set_approval_message(self, approval_id: str, message: dict[str, Any]) -> None:
        changed = await self._write(lambda db: db.execute(
            "UPDATE approvals SET message = ? WHERE id = ?", (json.dumps(message), approval_id),
        ).rowcount)
        if not changed:
            raise StoreError(f"no approval {approval_id!r} to record a message for")


    # retention and erasure

    async def claim_once(self, name: str) -> bool:
        now = self._clock()
        return await self._write(lambda db: db.execute(
            "INSERT INTO once_claims (name, claimed_at) VALUES (?, ?) "
            "ON CONFLICT (name) DO NOTHING", (name, now),
        ).rowcount == 1)

    async def purge_older_than(self, cutoff: datetime, *,
                               batch_size: int = PURGE_BATCH) -> dict[str, int]:
        before = cutoff.timestamp()
        counts = dict.fromkeys(PURGE_COUNTS, 0)
        seq, last = 0, False
        while not last:
            seq, last, removed = await self._write(
                partial(_purge_events, after=seq, before=before, limit=batch_size))
            _add(counts, removed)
        for table, key, older in _AGED:
            while True:
                n = await self._write(partial(_purge_table, table=table, key=key, older=older,
                                              before=before, limit=batch_size))
                counts[table] += n
                if n < batch_size:
                    break
        cursor, last = (0.0, ""), False
        while not last:
            cursor, last, masked = await self._write(
                partial(_mask_actions, after=cursor, before=before, limit=batch_size))
            counts["actions_masked"] += masked
        while True:
            n = await self._write(lambda db: db.execute(
                "DELETE FROM dial_claims WHERE rowid IN (SELECT rowid FROM dial_claims "
                "WHERE created_at < ? LIMIT ?)", (before, batch_size),
            ).rowcount)
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
            rows = await self._read(partial(_events_mentioning, after=seq, forms=texts,
                                            limit=batch_size))
            if not rows:
                break
            seq = rows[-1][0]
            ids = [row[1] for row in rows if mentions(bytes(row[2]), pattern)]
            if ids:
                _add(counts, await self._write(partial(_delete_events, ids=ids)))
        path = ""
        while True:
            paths = await self._read(partial(_reads_mentioning, after=path, forms=texts,
                                             limit=batch_size))
            if not paths:
                break
            path = paths[-1]
            counts["api_reads"] += await self._write(partial(_delete_reads, paths=paths,
                                                             pattern=pattern))
        for table, key_column, column in _MENTIONING:
            key: str | int = 0 if table == "model_answers" else ""
            while True:
                found = await self._read(partial(
                    _keys_mentioning, table=table, key=key_column, column=column, after=key,
                    forms=texts, limit=batch_size))
                if not found:
                    break
                key = found[-1]
                change: Callable[[Db], int]
                if table == "actions":
                    change = partial(_erase_in_actions, keys=found, pattern=pattern)
                elif table == "approvals":
                    change = partial(_erase_in_approvals, ids=found, pattern=pattern,
                                     now=self._clock())
                else:
                    change = partial(_delete_answers, table=table, key=key_column, keys=found,
                                     pattern=pattern)
                counts[table] += await self._write(change)
        for table in ("placed_calls", "dial_claims"):
            counts[table] = await self._write(partial(
                lambda db, table: db.execute(
                    f"UPDATE {table} SET number = ? WHERE number IN ({_marks(texts)})",
                    (ERASED, *texts),
                ).rowcount, table=table))
        counts["open_callbacks"] = await self._write(lambda db: db.execute(
            f"DELETE FROM open_callbacks WHERE number IN ({_marks(texts)})", texts,
        ).rowcount)
        _add(counts, await self._write(partial(_erase_in_calls, texts=texts)))
        return counts


# Run on the store's thread.

# The most transactions committed together: bounds how long the first one waits.
MAX_GROUP = 64


class _Asked:
    """One transaction asked for, and where its answer goes."""

    __slots__ = ("future", "loop", "transaction", "write")

    def __init__(self, transaction: Callable[[Db], Any], write: bool,
                 loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.transaction, self.write, self.loop, self.future = transaction, write, loop, future

    def answer(self, result: Any, error: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future, result, error)
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting any more


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return  # the caller was cancelled; what it asked for happened all the same
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _commit_together(db: Db, group: list[_Asked]) -> None:
    """Run ``group`` in one transaction, each in a savepoint, and answer each after COMMIT."""
    if len(group) == 1:
        asked = group[0]
        try:
            result = _transaction(db, "BEGIN IMMEDIATE" if asked.write else "BEGIN",
                                  asked.transaction)
        except BaseException as exc:
            asked.answer(None, exc)
        else:
            asked.answer(result, None)
        return
    try:
        db.execute("BEGIN IMMEDIATE" if any(a.write for a in group) else "BEGIN")
    except sqlite3.Error as exc:
        _fail_all(group, StoreUnavailable(f"the SQLite store is busy or failing: {exc}"))
        return
    answers: list[tuple[_Asked, Any, BaseException | None]] = []
    for asked in group:
        try:
            db.execute("SAVEPOINT asked")
            result = asked.transaction(db)
            db.execute("RELEASE asked")
        except BaseException as exc:
            # Some errors (a full disk, I/O) end the whole transaction: then none stands.
            if not db.in_transaction or not _undo_savepoint(db):
                _abandon(db, group, exc)
                return
            answers.append((asked, None, _store_error(exc)))
        else:
            answers.append((asked, result, None))
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        _abandon(db, group, exc)
        return
    for asked, result, error in answers:
        asked.answer(result, error)


def _undo_savepoint(db: Db) -> bool:
    try:
        db.execute("ROLLBACK TO asked")
        db.execute("RELEASE asked")
    except sqlite3.Error:
        return False
    return True


def _abandon(db: Db, group: list[_Asked], exc: BaseException) -> None:
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    _fail_all(group, StoreUnavailable(f"the SQLite store could not write: {exc}"))


def _fail_all(group: list[_Asked], error: Exception) -> None:
    for asked in group:
        asked.answer(None, error)


def _store_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"the SQLite store could not write: {exc}")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"the SQLite store refused the change: {exc}")
    return exc


def _transaction(db: Db, begin: str, transaction: Callable[[Db], T]) -> T:
    try:
        db.execute(begin)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"the SQLite store is busy or failing: {exc}") from None
    try:
        result = transaction(db)
        db.execute("COMMIT")
        return result
    except BaseException as exc:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        if isinstance(exc, sqlite3.OperationalError):
            raise StoreUnavailable(f"the SQLite store could not write: {exc}") from None
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"the SQLite store refused the change: {exc}") from None
        raise


def _switch_on(db: Db, name: str) -> bool:
    row = db.execute("SELECT value FROM switches WHERE name = ?", (name,)).fetchone()
    return bool(row and row[0])


def _guarded(db: Db, job: Job, sql: str, params: Sequence[Any]) -> bool:
    cursor = db.execute(
        f"{sql} WHERE id = ? AND state = 'running' AND lease_owner = ? AND attempts = ?",
        (*params, job.id, job.lease_owner, job.attempts),
    )
    return cursor.rowcount == 1


def _insert_jobs(db: Db, jobs: Sequence[JobSpec], now: float, default_max: int) -> list[int]:
    ids = []
    for spec in jobs:
        row = db.execute(
            "INSERT INTO jobs (kind, event_id, seq, call_id, bot, name, payload, state, "
            "max_attempts, run_at, created_at, updated_at) "
            "SELECT ?, e.id, e.seq, e.call_id, ?, ?, ?, 'pending', ?, ?, ?, ? "
            "FROM events e WHERE e.id = ? "
            "ON CONFLICT DO NOTHING RETURNING id",
            (spec.kind, spec.bot, spec.name, json.dumps(spec.payload),
             spec.max_attempts or default_max, _ts(spec.run_at, now), now, now,
             spec.event_id),
        ).fetchone()
        if row is None:
            row = db.execute(
                "SELECT id FROM jobs WHERE event_id = ? AND kind = ? "
                "AND COALESCE(bot, '') = ? AND name = ?",
                (spec.event_id, spec.kind, spec.bot or "", spec.name),
            ).fetchone()
        if row is None:
            raise StoreError(f"no event {spec.event_id!r} to attach a job to")
        ids.append(int(row[0]))
    return ids


def _action_by_key(db: Db, key: str) -> ActionRecord | None:
    row = db.execute(f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = ?", (key,)).fetchone()
    return _action(row) if row else None


def _approval_by_id(db: Db, approval_id: str) -> Approval | None:
    row = db.execute(f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE id = ?",
                     (approval_id,)).fetchone()
    return _approval(row) if row else None


def _approval(r: Any) -> Approval:
    return Approval(id=r[0], action_key=r[1], event_id=r[2], call_id=r[3], bot=r[4], kind=r[5],
                    what=json.loads(r[6]), why=json.loads(r[7]), deadline=_dt(r[8]), state=r[9],
                    decided_by=r[10], decided_at=None if r[11] is None else _dt(r[11]),
                    reason=r[12], created_at=_dt(r[13]), message=json.loads(r[14]))


def _join_by_key(db: Db, key: str) -> JoinState | None:
    row = db.execute("SELECT key, events, fired FROM joins WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    return JoinState(key=row[0], events=json.loads(row[1]), fired=bool(row[2]))


_ACTION_COLUMNS = "key, event_id, bot, kind, state, detail, created_at, updated_at"
_APPROVAL_COLUMNS = (
    "id, action_key, event_id, call_id, bot, kind, what, why, deadline, state, decided_by, "
    "decided_at, reason, created_at, message"
)
# A finished action is never started again (a late "placed" after the outcome, say).
_SETTLED = ("done", "failed")


def _action(r: Any) -> ActionRecord:
    return ActionRecord(key=r[0], event_id=r[1], bot=r[2], kind=r[3], state=r[4],
                        detail=json.loads(r[5]), created_at=_dt(r[6]), updated_at=_dt(r[7]))


_BOT_RUN_COLUMNS = (
    "job_id, event_id, bot, attempt, started_at, finished_at, outcome, error, "
    "prompt_tokens, completion_tokens, cost_usd"
)
_ANSWER_COLUMNS = (
    "event_id, bot, task, model, prompt_tokens, completion_tokens, cost_usd, cached, answer, "
    "created_at"
)


def _bot_run(r: Any) -> BotRun:
    return BotRun(job_id=r[0], event_id=r[1], bot=r[2], attempt=r[3], started_at=_dt(r[4]),
                  finished_at=_dt(r[5]), outcome=r[6], error=r[7], prompt_tokens=r[8],
                  completion_tokens=r[9], cost_usd=r[10])


def _call(r: Any) -> CallRow:
    return CallRow(call_id=r[0], started_at=_dt(r[1]), last_at=_dt(r[2]), from_number=r[3],
                   to_number=r[4], direction=r[5], events=r[6])


def _upsert_calls(db: Db, fresh: Sequence[NewEvent], now: float) -> None:
    """Add a batch's new events to their calls' rows: one upsert per call."""
    calls: dict[str, list[Any]] = {}
    for event in fresh:
        if event.call_id is None:
            continue
        at = event.created_at.timestamp()
        row = calls.setdefault(event.call_id, [event.call_id, at, now, None, None, None, 0])
        row[1] = min(row[1], at)
        row[3] = row[3] or event.from_number
        row[4] = row[4] or event.to_number
        row[5] = row[5] or event.direction
        row[6] += 1
    db.executemany(
        "INSERT INTO calls (call_id, started_at, last_at, from_number, to_number, direction, "
        "events) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET "
        "started_at = min(calls.started_at, excluded.started_at), "
        "last_at = max(calls.last_at, excluded.last_at), "
        "from_number = coalesce(calls.from_number, excluded.from_number), "
        "to_number = coalesce(calls.to_number, excluded.to_number), "
        "direction = coalesce(calls.direction, excluded.direction), "
        "events = calls.events + excluded.events",
        [calls[call_id] for call_id in sorted(calls)],
    )


_RECORD_COLUMNS = (
    "id, kind, event_id, bot, name, state, attempts, max_attempts, run_at, last_error, updated_at"
)


def _record(r: Any) -> JobRecord:
    return JobRecord(id=r[0], kind=r[1], event_id=r[2], bot=r[3], name=r[4], state=r[5],
                     attempts=r[6], max_attempts=r[7], run_at=_dt(r[8]), last_error=r[9],
                     updated_at=_dt(r[10]))


def _job(r: Any) -> Job:
    return Job(id=r[0], kind=r[1], event_id=r[2], seq=r[3], call_id=r[4], bot=r[5], name=r[6],
               payload=json.loads(r[7]), attempts=r[8], max_attempts=r[9], run_at=_dt(r[10]),
               lease_owner=r[11], last_error=r[12], event_body=bytes(r[13]))


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# retention and erasure (run on the store's thread)

# Old events whose jobs have all finished, in one window of seq.
_OLD_EVENTS = (
    "SELECT e.id FROM events e WHERE e.seq > ? AND e.seq <= ? AND e.received_at < ? "
    "AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.event_id = e.id "
    "AND o.state IN ('pending', 'running'))"
)


def _add(counts: dict[str, int], more: dict[str, int]) -> None:
    for name, n in more.items():
        counts[name] += n


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" for _ in values)


def _purge_events(db: Db, *, after: int, before: float,
                  limit: int) -> tuple[int, bool, dict[str, int]]:
    """Purge the next window of ``limit`` events after seq ``after``; True when it was the last."""
    rows = db.execute(
        "SELECT seq, received_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    ).fetchall()
    if not rows:
        return after, True, {}
    upto = int(rows[-1][0])
    # Receipt times rise with seq: the window that reaches a kept event is the
    # last. An event received out of step goes with the next day's purge.
    last = len(rows) < limit or rows[-1][1] >= before
    window = (after, upto, before)
    return upto, last, {
        "jobs": db.execute(f"DELETE FROM jobs WHERE event_id IN ({_OLD_EVENTS})", window).rowcount,
        "bot_runs": db.execute(
            f"DELETE FROM bot_runs WHERE event_id IN ({_OLD_EVENTS})", window).rowcount,
        "events": db.execute(f"DELETE FROM events WHERE id IN ({_OLD_EVENTS})", window).rowcount,
    }


# What retention deletes by age alone: (table, key, which rows are older than the cutoff).
# A call goes once it was last heard of before the cutoff; it started before then too,
# which lets the walk read calls_newest.
_AGED = (
    ("llm_cache", "key", "created_at < :before"),
    ("model_answers", "id", "created_at < :before"),
    ("joins", "key", "updated_at < :before"),
    ("calls", "call_id", "started_at < :before AND last_at < :before"),
    ("approvals", "id", "state <> 'pending' AND decided_at < :before"),
    ("api_reads", "path", "read_at < :before"),
)
# What erasure searches for a number's forms: (table, key, the text searched).
_MENTIONING = (("llm_cache", "key", "answer"), ("model_answers", "id", "answer"),
               ("actions", "key", "detail"), ("approvals", "id", "what || ' ' || why"))


def _purge_table(db: Db, *, table: str, key: str, older: str, before: float,
                 limit: int) -> int:
    return db.execute(
        f"DELETE FROM {table} WHERE {key} IN "
        f"(SELECT {key} FROM {table} WHERE {older} LIMIT :limit)",
        {"before": before, "limit": limit},
    ).rowcount


def _mask_actions(db: Db, *, after: tuple[float, str], before: float,
                  limit: int) -> tuple[tuple[float, str], bool, int]:
    """Mask the next ``limit`` old actions after ``after`` (updated_at, key) whose jobs are done."""
    rows = db.execute(
        "SELECT a.key, a.detail, a.updated_at FROM actions a "
        "WHERE a.masked = 0 AND a.updated_at < ? AND (a.updated_at, a.key) > (?, ?) "
        "AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.event_id = a.event_id "
        "AND o.state IN ('pending', 'running')) ORDER BY a.updated_at, a.key LIMIT ?",
        (before, *after, limit),
    ).fetchall()
    db.executemany(
        "UPDATE actions SET detail = ?, masked = 1 WHERE key = ?",
        [(json.dumps(mask_detail(json.loads(detail))), key) for key, detail, _ in rows],
    )
    cursor = (float(rows[-1][2]), str(rows[-1][0])) if rows else after
    return cursor, len(rows) < limit, len(rows)


def _events_mentioning(db: Db, *, after: int, forms: Sequence[str], limit: int) -> list[Any]:
    found: list[Any] = db.execute(
        "SELECT seq, id, body FROM events WHERE seq > ? AND ("
        + " OR ".join("instr(body, ?) > 0" for _ in forms) + ") ORDER BY seq LIMIT ?",
        (after, *(form.encode() for form in forms), limit),
    ).fetchall()
    return found


def _delete_events(db: Db, *, ids: Sequence[str]) -> dict[str, int]:
    """Delete events with every job (open ones too) and bot run of theirs, and the API
    reads of their calls."""
    marks = _marks(ids)
    return {
        "api_reads": db.execute(
            "DELETE FROM api_reads WHERE call_id IN (SELECT call_id FROM events "
            f"WHERE id IN ({marks}) AND call_id IS NOT NULL)", ids).rowcount,
        "jobs": db.execute(f"DELETE FROM jobs WHERE event_id IN ({marks})", ids).rowcount,
        "bot_runs": db.execute(f"DELETE FROM bot_runs WHERE event_id IN ({marks})", ids).rowcount,
        "events": db.execute(f"DELETE FROM events WHERE id IN ({marks})", ids).rowcount,
    }


def _reads_mentioning(db: Db, *, after: str, forms: Sequence[str], limit: int) -> list[str]:
    """The next ``limit`` paths after ``after`` whose API read's body holds one of ``forms``."""
    return [row[0] for row in db.execute(
        "SELECT path FROM api_reads WHERE path > ? AND ("
        + " OR ".join("instr(body, ?) > 0" for _ in forms) + ") ORDER BY path LIMIT ?",
        (after, *(form.encode() for form in forms), limit),
    )]


def _delete_reads(db: Db, *, paths: Sequence[str], pattern: re.Pattern[str]) -> int:
    rows = db.execute(
        f"SELECT path, body FROM api_reads WHERE path IN ({_marks(paths)})", paths
    ).fetchall()
    gone = [path for path, body in rows if mentions(bytes(body), pattern)]
    if gone:
        db.execute(f"DELETE FROM api_reads WHERE path IN ({_marks(gone)})", gone)
    return len(gone)


def _erase_in_calls(db: Db, *, texts: Sequence[str]) -> dict[str, int]:
    """Delete the API reads of the calls from or to the number, then erase it from the calls."""
    marks = _marks(texts)
    return {
        "api_reads": db.execute(
            "DELETE FROM api_reads WHERE call_id IN (SELECT call_id FROM calls "
            f"WHERE from_number IN ({marks}) OR to_number IN ({marks}))", (*texts, *texts),
        ).rowcount,
        "calls": db.execute(
            f"UPDATE calls SET "
            f"from_number = CASE WHEN from_number IN ({marks}) THEN ? ELSE from_number END, "
            f"to_number = CASE WHEN to_number IN ({marks}) THEN ? ELSE to_number END "
            f"WHERE from_number IN ({marks}) OR to_number IN ({marks})",
            (*texts, ERASED, *texts, ERASED, *texts, *texts),
        ).rowcount,
    }


def _keys_mentioning(db: Db, *, table: str, key: str, column: str, after: Any,
                     forms: Sequence[str], limit: int) -> list[Any]:
    return [row[0] for row in db.execute(
        f"SELECT {key} FROM {table} WHERE {key} > ? AND ("
        + " OR ".join(f"instr({column}, ?) > 0" for _ in forms) + f") ORDER BY {key} LIMIT ?",
        (after, *forms, limit),
    )]


def _delete_answers(db: Db, *, table: str, key: str, keys: Sequence[Any],
                    pattern: re.Pattern[str]) -> int:
    rows = db.execute(
        f"SELECT {key}, answer FROM {table} WHERE {key} IN ({_marks(keys)})", keys
    ).fetchall()
    gone = [found for found, answer in rows if mentions(answer, pattern)]
    if gone:
        db.execute(f"DELETE FROM {table} WHERE {key} IN ({_marks(gone)})", gone)
    return len(gone)


def _erase_in_actions(db: Db, *, keys: Sequence[str], pattern: re.Pattern[str]) -> int:
    rows = db.execute(
        f"SELECT key, detail FROM actions WHERE key IN ({_marks(keys)})", keys
    ).fetchall()
    changed = [(json.dumps(erase_in_detail(json.loads(detail), pattern)), key)
               for key, detail in rows if mentions(detail, pattern)]
    db.executemany("UPDATE actions SET detail = ? WHERE key = ?", changed)
    return len(changed)


def _erase_in_approvals(db: Db, *, ids: Sequence[str], pattern: re.Pattern[str],
                        now: float) -> int:
    """Erase the number from approvals' what and why; a pending one is rejected."""
    rows = db.execute(
        f"SELECT id, what, why FROM approvals WHERE id IN ({_marks(ids)})", ids
    ).fetchall()
    changed = [(json.dumps(erase_in_detail(json.loads(what), pattern)),
                json.dumps(erase_in_detail(json.loads(why), pattern)), approval_id)
               for approval_id, what, why in rows
               if mentions(what, pattern) or mentions(why, pattern)]
    if not changed:
        return 0
    db.executemany("UPDATE approvals SET what = ?, why = ? WHERE id = ?", changed)
    db.execute(
        f"UPDATE approvals SET state = 'rejected', decided_by = ?, decided_at = ?, reason = ? "
        f"WHERE state = 'pending' AND id IN ({_marks(changed)})",
        (ERASED_BY, now, ERASED_REASON, *(approval_id for _, _, approval_id in changed)),
    )
    return len(changed)
