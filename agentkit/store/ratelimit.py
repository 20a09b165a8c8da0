"""The API rate limits shared by every process of a deployment, kept in PostgreSQL.

phone.systems counts its limits per API key (100 requests/s with a burst of
200, 20 call creations in flight), so every worker process spending one key
must share one budget. ``PostgresRateLimiter`` keeps it in two tables
(schema migration 5):

- ``rate_buckets``: one token bucket per key. An acquire is one ``UPDATE ...
  RETURNING``: it refills the bucket arithmetically since its last update, takes
  a token if there is one, else answers how long to wait. A 429 empties the
  bucket and sets ``paused_until``, which every process sees on its next acquire.
- ``call_slots``: ``max_call_creations`` rows per key. A creation claims a free
  (or expired) row with ``FOR UPDATE SKIP LOCKED`` and frees it when it ends.
  Claimed rows expire after ``slot_lease`` seconds unless their process renews
  them, so a process killed while holding slots gives them back by itself.

Every time is the database's (``clock_timestamp()``), so the processes' clocks
do not matter. The key itself is never stored: rows are named by a short hash
of it, so deployments with different keys on one database keep separate budgets.
The limiter has a pool of its own (two connections by default), so waiting on
it never holds the store's connections.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]

from agentkit.logs import get_logger
from agentkit.odygy.ratelimit import RateLimits
from agentkit.store.base import StoreError, StoreUnavailable
from agentkit.store.postgres import keep_session

if TYPE_CHECKING:
    from agentkit.store.base import Store

log = get_logger("agentkit.ratelimit")

# Longer than a call creation may hold its slot without renewal: the client's
# request timeout (10 s) plus a wait for a token. Renewed every third of it.
DEFAULT_SLOT_LEASE = 30.0
# How often a process waiting for a call-creation slot looks again, at most.
MAX_SLOT_POLL = 0.05

_ENSURE_BUCKET = """
    INSERT INTO rate_buckets (name, tokens, updated_at, paused_until)
    VALUES ($1, $2, clock_timestamp(), clock_timestamp())
    ON CONFLICT (name) DO NOTHING
"""

_ENSURE_SLOTS = """
    INSERT INTO call_slots (name, slot)
    SELECT $1, generate_series(1, $2)
    ON CONFLICT (name, slot) DO NOTHING
"""

# $1 name, $2 rate, $3 burst, $4 cap (or NULL). Returns 0 when a token was
# taken, else the seconds until one is due (after any pause).
_TAKE = """
    WITH b AS (
        SELECT name, tokens, updated_at, paused_until, clock_timestamp() AS t
        FROM rate_buckets WHERE name = $1
        FOR UPDATE
    ), l AS (
        SELECT name, t, paused_until,
            CASE WHEN t < paused_until THEN 0::float8
            ELSE least(
                $3::float8,
                coalesce($4::float8, 'Infinity'::float8),
                tokens + greatest(
                    0::float8,
                    extract(epoch FROM t - greatest(updated_at, paused_until))::float8
                ) * $2::float8)
            END AS level
        FROM b
    )
    UPDATE rate_buckets r
    SET tokens = CASE WHEN l.level >= 1 THEN l.level - 1 ELSE greatest(l.level, 0) END,
        updated_at = greatest(r.updated_at, l.t)
    FROM l WHERE r.name = l.name
    RETURNING CASE WHEN l.level >= 1 THEN 0::float8
        ELSE (1 - greatest(l.level, 0)) / $2::float8
             + greatest(0::float8, extract(epoch FROM l.paused_until - l.t)::float8)
        END
"""

_PAUSE = """
    UPDATE rate_buckets
    SET tokens = 0, updated_at = greatest(updated_at, clock_timestamp()),
        paused_until = greatest(paused_until,
                                clock_timestamp() + $2::float8 * interval '1 second')
    WHERE name = $1
"""

_CLAIM_SLOT = """
    UPDATE call_slots
    SET holder = $2, expires_at = clock_timestamp() + $4::float8 * interval '1 second'
    WHERE name = $1 AND slot = (
        SELECT slot FROM call_slots
        WHERE name = $1 AND slot <= $3 AND (holder IS NULL OR expires_at < clock_timestamp())
        ORDER BY slot LIMIT 1
        FOR UPDATE SKIP LOCKED)
    RETURNING slot
"""

_RELEASE_SLOT = """
    UPDATE call_slots SET holder = NULL, expires_at = NULL
    WHERE name = $1 AND slot = $2 AND holder = $3
"""

_RENEW_SLOTS = """
    UPDATE call_slots SET expires_at = clock_timestamp() + $3::float8 * interval '1 second'
    WHERE name = $1 AND holder = $2 AND slot = ANY($4::int[])
"""

_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError,
)


def budget_name(api_key: str) -> str:
    """The name of a key's budget: a SHA-256 prefix of it, which does not reveal the key."""
    return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


class PostgresRateLimiter:
    """The client's rate limits, shared through PostgreSQL by every process with the same key.

    Implements ``agentkit.odygy.ratelimit.RateLimiter``: pass it to
    ``OdygyClient(limiter=...)``, ``await open()`` it first and ``await aclose()``
    it after the client. The tables come with the store's migrations, so open
    the store once before.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        limits: RateLimits | None = None,
        schema: str | None = None,
        slot_lease: float = DEFAULT_SLOT_LEASE,
        max_connections: int = 2,
        command_timeout: float = 10.0,
    ) -> None:
        if slot_lease <= 0:
            raise StoreError("the call-slot lease must be above 0 seconds")
        self.limits = limits or RateLimits()
        self.name = budget_name(api_key)
        self.holder = f"{uuid.uuid4().hex[:12]}"
        self.slot_lease = slot_lease
        self.calls_in_flight = 0
        self.max_calls_in_flight = 0
        self._url = url
        self._schema = schema
        self._max_connections = max_connections
        self._command_timeout = command_timeout
        self._rate = self.limits.requests_per_second * (1 - self.limits.headroom)
        self._burst = max(1.0, self.limits.burst * (1 - self.limits.burst_headroom))
        self._pool: Any = None
        self._tokens = asyncio.Lock()  # one acquire of this process asks the database at a time
        self._slot_queue = asyncio.Lock()  # one waiter of this process polls for a slot
        self._slot_freed = asyncio.Event()
        self._held: set[int] = set()
        self._paused_until = 0.0  # monotonic; this process's own 429s, before the database has them
        self._cap_base: float | None = None  # min over observations of remaining - sent_at * limit
        self._cap_limit = 0.0
        self._background: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PostgresRateLimiter(name={self.name!r})"

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"search_path": f'"{self._schema}"'} if self._schema else {}
        try:
            self._pool = await asyncpg.create_pool(
                self._url, min_size=1, max_size=self._max_connections,
                command_timeout=self._command_timeout, server_settings=settings,
                reset=keep_session,
            )
            await self._ensure_rows()
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, _DATABASE_ERRORS):
                raise StoreUnavailable(
                    f"the shared rate limits in PostgreSQL are unavailable "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            raise
        if self.limits.enabled:
            self._renewer = asyncio.create_task(self._renew_slots())

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5.0)
            except Exception:
                pool.terminate()

    # the RateLimiter protocol

    async def acquire(self) -> None:
        """Wait until the deployment's bucket gives this request a token."""
        if not self.limits.enabled:
            return
        async with self._tokens:
            while True:
                local = self._paused_until - time.monotonic()
                if local > 0:
                    await asyncio.sleep(local)
                    continue
                wait = await self._take()
                if wait <= 0:
                    return
                await asyncio.sleep(wait)

    @asynccontextmanager
    async def call_creation(self) -> AsyncIterator[None]:
        """Hold one of the deployment's call-creation slots for the duration of the block."""
        if not self.limits.enabled:
            yield
            return
        slot = await self._claim()
        self.calls_in_flight += 1
        self.max_calls_in_flight = max(self.max_calls_in_flight, self.calls_in_flight)
        try:
            yield
        finally:
            self.calls_in_flight -= 1
            # Freed even when the creation was cancelled; a failure leaves it to expire.
            await asyncio.shield(self._release(slot))

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Note the server's X-RateLimit-* figures; the next acquire caps the bucket with them.

        As in ``ClientRateLimiter``: a lower limit is adopted, and the bucket is
        lowered to what the server can hold by now at most.
        """
        if not self.limits.enabled:
            return
        try:
            limit = float(headers["x-ratelimit-limit"])
            remaining = float(headers["x-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        if limit <= 0 or math.isnan(limit) or math.isnan(remaining):
            return
        server_rate = limit * (1 - self.limits.headroom)
        if server_rate < self._rate:
            self._rate = server_rate
        base = remaining - sent_at * limit
        if self._cap_base is None or base < self._cap_base:
            self._cap_base, self._cap_limit = base, limit

    def pause(self, seconds: float) -> None:
        """Stop this process at once and, through the database, every other one (after a 429)."""
        if not self.limits.enabled or seconds <= 0:
            return
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        task = asyncio.get_running_loop().create_task(self._pause(seconds))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # the database side

    async def _ensure_rows(self) -> None:
        async with self._connection() as conn:
            await conn.execute(_ENSURE_BUCKET, self.name, self._burst)
            await conn.execute(_ENSURE_SLOTS, self.name, self.limits.max_call_creations)

    async def _take(self) -> float:
        cap: float | None = None
        if self._cap_base is not None:
            cap = max(0.0, self._cap_base + time.monotonic() * self._cap_limit)
            self._cap_base = None
        async with self._connection() as conn:
            wait = await conn.fetchval(_TAKE, self.name, self._rate, self._burst, cap)
            if wait is None:  # the row is gone (a truncated table): make it again
                await conn.execute(_ENSURE_BUCKET, self.name, self._burst)
                wait = await conn.fetchval(_TAKE, self.name, self._rate, self._burst, cap)
        return float(wait)

    async def _pause(self, seconds: float) -> None:
        try:
            async with self._connection() as conn:
                await conn.execute(_PAUSE, self.name, seconds)
        except StoreError as exc:
            log.warning("ratelimit.pause_not_shared", error=str(exc))

    async def _claim(self) -> int:
        delay = 0.002
        async with self._slot_queue:
            while True:
                self._slot_freed.clear()
                async with self._connection() as conn:
                    slot = await conn.fetchval(
                        _CLAIM_SLOT, self.name, self.holder, self.limits.max_call_creations,
                        self.slot_lease,
                    )
                if slot is not None:
                    self._held.add(int(slot))
                    return int(slot)
                # A slot this process frees wakes the waiter at once; another
                # process's is found by polling, a little slower each time.
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(),
                                           delay * (0.5 + random.random()))
                delay = min(delay * 2, MAX_SLOT_POLL)

    async def _release(self, slot: int) -> None:
        self._held.discard(slot)
        try:
            async with self._connection() as conn:
                await conn.execute(_RELEASE_SLOT, self.name, slot, self.holder)
        except StoreError as exc:
            log.warning("ratelimit.slot_not_released", slot=slot, error=str(exc),
                        expires_in_s=self.slot_lease)
        self._slot_freed.set()

    async def _renew_slots(self) -> None:
        while True:
            await asyncio.sleep(self.slot_lease / 3)
            if not self._held:
                continue
            try:
                async with self._connection() as conn:
                    await conn.execute(_RENEW_SLOTS, self.name, self.holder, self.slot_lease,
                                       sorted(self._held))
            except StoreError as exc:
                log.warning("ratelimit.slots_not_renewed", error=str(exc))

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreUnavailable("the shared rate limiter is not open: await open() first")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _DATABASE_ERRORS as exc:
            raise StoreUnavailable(
                f"the shared rate limits in PostgreSQL are unavailable "
                f"({type(exc).__name__}: {exc}); try again later"
            ) from None


def shared_rate_limiter(
    store: Store, *, api_key: str, limits: RateLimits | None = None
) -> PostgresRateLimiter | None:
    """A limiter shared through ``store``'s database, or None if the store is not PostgreSQL."""
    from agentkit.store.postgres import PostgresStore

    if not isinstance(store, PostgresStore):
        return None
    return PostgresRateLimiter(store.url, api_key=api_key, limits=limits, schema=store.schema)
