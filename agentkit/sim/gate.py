"""What every simulated API request passes first: keys, scopes, rate limits and faults."""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass

from agentkit.odygy.ratelimit import TokenBucket
from agentkit.sim.config import Faults, Limits


class SimApiError(Exception):
    """An API error answer: the status, the ``error.code`` and a message that says why."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class GateStats:
    """Counts the simulator keeps, for tests and benchmarks to read."""

    requests: int = 0
    http_429: int = 0
    calls_in_flight: int = 0
    max_calls_in_flight: int = 0
    max_requests_per_second: int = 0  # the most requests in any one-second window


class Gate:
    """Authenticates keys, checks scopes, enforces limits and rolls the fault dice."""

    def __init__(self, keys: dict[str, frozenset[str]], limits: Limits, faults: Faults,
                 rng: random.Random) -> None:
        self._keys = keys
        self.limits = limits
        self.faults = faults
        self._rng = rng
        self._buckets: dict[str, TokenBucket] = {}
        self._calls_in_flight: dict[str, int] = {}
        self._last_second: deque[float] = deque()
        self.stats = GateStats()

    def authenticate(self, authorization: str | None) -> str:
        """The API key of a request, or a 401."""
        if not authorization:
            raise SimApiError(
                401, "unauthorized", "No API key: send it as 'Authorization: Bearer <key>'."
            )
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise SimApiError(
                401, "unauthorized", "The Authorization header must be 'Bearer <key>'."
            )
        if key not in self._keys:
            raise SimApiError(401, "unauthorized", "The API key is invalid or was revoked.")
        return key

    def require(self, key: str, scope: str) -> None:
        """A 403 unless the key holds ``scope`` (or full access)."""
        scopes = self._keys.get(key, frozenset())
        if "*" in scopes or scope in scopes:
            return
        held = ", ".join(sorted(scopes)) or "none"
        raise SimApiError(
            403,
            "forbidden",
            f"This API key lacks the '{scope}' scope (it has: {held}). Use a key with that scope.",
        )

    def bucket(self, client: str) -> TokenBucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = TokenBucket(
                self.limits.requests_per_second, self.limits.burst, now=time.monotonic()
            )
            self._buckets[client] = bucket
        return bucket

    def admit(self, client: str) -> dict[str, str]:
        """Take a token for ``client`` or raise a 429; return the X-RateLimit-* headers."""
        self.stats.requests += 1
        now = time.monotonic()
        window = self._last_second
        window.append(now)
        while window[0] <= now - 1.0:
            window.popleft()
        self.stats.max_requests_per_second = max(self.stats.max_requests_per_second, len(window))
        bucket = self.bucket(client)
        wait = bucket.take(now) if self.limits.enabled else 0.0
        headers = self.headers(client, now)
        if wait > 0:
            self.stats.http_429 += 1
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
            raise SimApiError(
                429,
                "rate_limited",
                f"Rate limit of {self.limits.requests_per_second:g} requests/s "
                f"(burst {self.limits.burst}) exceeded; retry after the Retry-After seconds.",
                headers=headers,
            )
        if self.faults.rate_limit_rate and self._rng.random() < self.faults.rate_limit_rate:
            self.stats.http_429 += 1
            headers["Retry-After"] = "1"
            raise SimApiError(429, "rate_limited", "Rate limit exceeded (injected fault).",
                              headers=headers)
        return headers

    def headers(self, client: str, now: float | None = None) -> dict[str, str]:
        now = time.monotonic() if now is None else now
        bucket = self.bucket(client)
        reset_in = bucket.full_at(now) - now
        return {
            "X-RateLimit-Limit": f"{self.limits.requests_per_second:g}",
            "X-RateLimit-Remaining": str(max(0, math.floor(bucket.tokens(now)))),
            "X-RateLimit-Reset": str(math.ceil(time.time() + reset_in)),
        }

    def start_call_creation(self, key: str) -> None:
        """Take one of the key's call-creation slots, or raise a 429."""
        in_flight = self._calls_in_flight.get(key, 0)
        if self.limits.enabled and in_flight >= self.limits.max_call_creations:
            self.stats.http_429 += 1
            raise SimApiError(
                429,
                "rate_limited",
                f"At most {self.limits.max_call_creations} outbound call creations may be in "
                "progress at once; retry when one has finished.",
                headers={"Retry-After": "1"},
            )
        self._calls_in_flight[key] = in_flight + 1
        self.stats.calls_in_flight += 1
        self.stats.max_calls_in_flight = max(
            self.stats.max_calls_in_flight, self.stats.calls_in_flight
        )

    def end_call_creation(self, key: str) -> None:
        self._calls_in_flight[key] -= 1
        self.stats.calls_in_flight -= 1

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``."""
        return rate > 0 and self._rng.random() < rate
