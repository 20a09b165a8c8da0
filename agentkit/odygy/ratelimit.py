"""Rate limiting: the token bucket the API enforces, the client's side of it, Retry-After.

phone.systems allows each key 100 requests/s with a burst of 200 and 20
outbound call creations at once. The client keeps under those limits itself,
so a busy bot waits a few milliseconds instead of collecting 429s.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

# Longer than any server means to be asked to wait; callers cap lower still.
MAX_RETRY_AFTER = 3600.0
# RFC 9110's delta-seconds, plus the fractions some servers send ("0.5").
_DELTA_SECONDS = re.compile(r"\d{1,10}(?:\.\d{1,6})?")


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up.

    Time is passed in, so the same arithmetic serves the client (which waits)
    and the simulator (which refuses).
    """

    def __init__(self, rate: float, burst: float, *, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def tokens(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def take(self, now: float) -> float:
        """Take one token if there is one; return 0.0, or the seconds until one is due."""
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def cap(self, tokens: float, now: float) -> None:
        """Lower the saved tokens to ``tokens`` (never raise them)."""
        self._refill(now)
        self._tokens = min(self._tokens, max(tokens, 0.0))

    def suspend(self, seconds: float, now: float) -> None:
        """Empty the bucket and let it refill only after ``seconds``."""
        self._refill(now)
        self._tokens = 0.0
        self._updated = now + seconds

    def full_at(self, now: float) -> float:
        """When (on the clock passed in) the bucket will be full again."""
        self._refill(now)
        return now + (self.burst - self._tokens) / self.rate


@dataclass(frozen=True)
class RateLimits:
    """The client's own limits; the defaults are phone.systems' documented ones.

    ``headroom`` is the share of the rate, and ``burst_headroom`` the share of
    the burst, that the client leaves unused. Requests reach the server after
    varying delays, so a burst sent in pace can arrive bunched; the reserve
    absorbs up to ``burst * burst_headroom / requests_per_second`` seconds of
    such jitter (0.3 s by default) without a 429.
    """

    requests_per_second: float = 100.0
    burst: int = 200
    max_call_creations: int = 20
    headroom: float = 0.03
    burst_headroom: float = 0.15
    enabled: bool = True


class RateLimiter(Protocol):
    """What the client's transport needs from a rate limiter.

    ``ClientRateLimiter`` keeps the limits inside one process; the store's
    ``PostgresRateLimiter`` shares them among every process of a deployment.
    ``calls_in_flight`` and ``max_calls_in_flight`` count this process's call
    creations.
    """

    @property
    def limits(self) -> RateLimits: ...

    @property
    def calls_in_flight(self) -> int: ...

    @property
    def max_calls_in_flight(self) -> int: ...

    async def acquire(self) -> None:
        """Wait until a request may be sent."""

    def call_creation(self) -> AbstractAsyncContextManager[None]:
        """Hold one call-creation slot for the duration of the block."""

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Follow the server's X-RateLimit-* headers; ``sent_at`` is on time.monotonic()."""

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429)."""


class ClientRateLimiter:
    """Paces the client's requests and bounds its call creations in flight."""

    def __init__(self, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        rate = limits.requests_per_second * (1 - limits.headroom)
        burst = max(1.0, limits.burst * (1 - limits.burst_headroom))
        self._bucket = TokenBucket(rate, burst, now=clock())
        self._lock = asyncio.Lock()
        self._calls = asyncio.Semaphore(limits.max_call_creations)
        self.calls_in_flight = 0
        self.max_calls_in_flight = 0

    async def acquire(self) -> None:
        """Wait until a request may be sent."""
        if not self.limits.enabled:
            return
        async with self._lock:
            while True:
                wait = self._bucket.take(self._clock())
                if wait == 0.0:
                    return
                await asyncio.sleep(wait)

    @asynccontextmanager
    async def call_creation(self) -> AsyncIterator[None]:
        """Hold one of the call-creation slots for the duration of the block."""
        if not self.limits.enabled:
            yield
            return
        async with self._calls:
            self.calls_in_flight += 1
            self.max_calls_in_flight = max(self.max_calls_in_flight, self.calls_in_flight)
            try:
                yield
            finally:
                self.calls_in_flight -= 1

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Follow the server's X-RateLimit-* headers when they are stricter than ours.

        The server counted ``remaining`` when the request arrived, some time
        after ``sent_at``; the server has refilled since, so our bucket is
        lowered only to what the server can have now at most. That catches
        other clients spending the same key's budget without throttling a
        lone client on stale figures.
        """
        if not self.limits.enabled:
            return
        try:
            limit = float(headers["x-ratelimit-limit"])
            remaining = float(headers["x-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        now = self._clock()
        server_rate = limit * (1 - self.limits.headroom)
        if 0 < server_rate < self._bucket.rate:
            self._bucket.rate = server_rate
        self._bucket.cap(remaining + (now - sent_at) * limit, now)

    def pause(self, seconds: float) -> None:
        """Drain the bucket so no request leaves for ``seconds`` (after a 429)."""
        if not self.limits.enabled or seconds <= 0:
            return
        self._bucket.suspend(seconds, self._clock())


def parse_retry_after(
    value: str | None, *, cap: float = MAX_RETRY_AFTER, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date, at most ``cap``.

    None when the value is absent or unreadable (a negative number, garbage); a date
    already past is 0. ``now`` (aware) is when the answer came, by default the clock.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), cap)
