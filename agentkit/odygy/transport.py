"""HTTP to phone.systems: authentication, pacing, retries and the error tree.

Requests are sorted by what a retry may cost:

- safe (reads, updates, deletes, search, attach): retried on 429, 5xx,
  timeouts and broken connections;
- creates: retried on 429 and when the connection never opened. After any
  failure that leaves unknown whether the resource was made (a 5xx, a timeout,
  a broken answer), the resource's ``reconcile`` looks for it first; with no
  ``reconcile`` the error is raised, so nothing is ever created twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from agentkit.errors import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    ApiTimeoutError,
    CallOutcomeUnknownError,
    NotFoundError,
    RateLimitError,
    error_for_status,
)
from agentkit.logs import get_logger
from agentkit.odygy.ratelimit import RateLimiter, parse_retry_after

# Told of every read that succeeded: its path (see api_path) and the JSON body.
ReadHook = Callable[[str, bytes], Awaitable[None]]


def api_path(url: httpx.URL, base_url: str) -> str:
    """A request's path with its query, below the API's base: ``/calls/cal_1/transcript``."""
    path = url.raw_path.decode("ascii")
    base = httpx.URL(base_url).raw_path.decode("ascii").rstrip("/")
    return path[len(base):] if base and path.startswith(base + "/") else path


T = TypeVar("T")

log = get_logger("agentkit.odygy")

DEFAULT_BASE_URL = "https://api.odygy.com/v1"
USER_AGENT = "agentkit/0.1 (+https://github.com/agentkit; phone.systems client)"

# The request never reached the server: retrying cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class RetryPolicy:
    """How hard the client tries: attempts, backoff and the Retry-After cap."""

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0
    reconcile_delay: float = 1.0


@dataclass
class ClientStats:
    """What the client has done, for metrics and benchmarks."""

    requests: int = 0
    retries: int = 0
    http_429: int = 0
    reconciled: int = 0


class ApiMetrics(Protocol):
    """What the client reports, when given somewhere to report it (``agentkit.metrics``)."""

    def api_error(self, status: int) -> None:
        """Count one answer with a status of 400 or more."""


def _uncertain(exc: BaseException) -> bool:
    """True when a failed request may still have taken effect on the server."""
    if isinstance(exc, ApiStatusError):
        return exc.status is not None and exc.status >= 500
    return isinstance(exc, ApiConnectionError) and exc.request_sent


def _never_sent(exc: BaseException) -> bool:
    return isinstance(exc, ApiConnectionError) and not exc.request_sent


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RateLimitError) or _uncertain(exc) or _never_sent(exc)


class Transport:
    """Sends requests to the API; one per client, shared by its resources."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        retry: RetryPolicy,
        limiter: RateLimiter,
        max_connections: int,
        http_client: httpx.AsyncClient | None = None,
        metrics: ApiMetrics | None = None,
        on_read: ReadHook | None = None,
    ) -> None:
        self._api_key = api_key
        self._on_read = on_read
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.limiter = limiter
        self.stats = ClientStats()
        self._metrics = metrics
        # httpcore's pool spends time quadratic in its connections and queued
        # requests on every request; a small pool fed through our own
        # semaphore (so its queue stays empty) keeps a busy client cheap.
        self._slots = asyncio.Semaphore(max_connections)
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, api_key='***')"

    # public entry points

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """A safe request, retried on every transient failure; returns the JSON answer."""
        async def attempt() -> Any:
            return await self._send(method, path, params=params, json=json)

        return await self._with_retries(attempt, retry_if=_retryable)

    async def delete(self, path: str) -> None:
        """A DELETE, retried like a safe request.

        A 404 after an attempt whose answer was lost means that attempt deleted
        it, so it counts as success.
        """
        uncertain = False

        async def attempt() -> None:
            nonlocal uncertain
            try:
                await self._send("DELETE", path)
            except NotFoundError:
                if uncertain:
                    return
                raise
            except ApiError as exc:
                uncertain = uncertain or _uncertain(exc)
                raise

        await self._with_retries(attempt, retry_if=_retryable)

    async def create(
        self,
        path: str,
        json: Any,
        *,
        reconcile: Callable[[float], Awaitable[T | None]] | None = None,
        parse: Callable[[Any], T],
        calls: bool = False,
    ) -> T:
        """A POST that makes something, never made twice.

        ``reconcile(since)`` gets the monotonic-free wall-clock time the first
        attempt began and returns what that attempt made, or None if it made
        nothing. ``calls`` holds a call-creation slot for each attempt.
        """
        started = time.time()
        uncertain = False

        async def attempt() -> T:
            nonlocal uncertain
            if uncertain and reconcile is not None:
                found = await self._reconcile(reconcile, started, path)
                if found is not None:
                    return found
            try:
                if calls:
                    async with self.limiter.call_creation():
                        answer = await self._send("POST", path, json=json)
                else:
                    answer = await self._send("POST", path, json=json)
            except ApiError as exc:
                if _uncertain(exc):
                    uncertain = True
                raise
            return parse(answer)

        def retry_if(exc: BaseException) -> bool:
            if isinstance(exc, RateLimitError) or _never_sent(exc):
                return True
            return reconcile is not None and _uncertain(exc)

        return await self._with_retries(attempt, retry_if=retry_if)

    # internals

    async def _reconcile(
        self, reconcile: Callable[[float], Awaitable[T | None]], started: float, path: str
    ) -> T | None:
        try:
            found = await reconcile(started)
        except ApiError as exc:
            raise CallOutcomeUnknownError(
                "A create failed without a clear answer and the check for what it made failed "
                f"too ({exc.message}); not retried, so nothing is made twice. "
                "Look for it before trying again.",
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
                method="POST",
                path=path,
            ) from exc
        if found is not None:
            self.stats.reconciled += 1
            log.info("odygy.reconciled", path=path)
        return found

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[T]], *, retry_if: Callable[[BaseException], bool]
    ) -> T:
        policy = self.retry
        backoff = wait_random_exponential(multiplier=policy.backoff_base, max=policy.backoff_max)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimitError):
                return min(exc.retry_after or 1.0, policy.max_retry_after)
            seconds = backoff(state)
            if _uncertain(exc) if exc else False:
                seconds = max(seconds, policy.reconcile_delay)
            return seconds

        def before_sleep(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "odygy.retry",
                attempt=state.attempt_number,
                wait_s=round(state.upcoming_sleep, 3),
                error=type(exc).__name__ if exc else None,
                status=getattr(exc, "status", None),
                method=getattr(exc, "method", None),
                path=getattr(exc, "path", None),
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_retries + 1),
            wait=wait,
            retry=retry_if_exception(retry_if),
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(attempt)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        await self.limiter.acquire()
        self.stats.requests += 1
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        started = time.monotonic()
        try:
            async with self._slots:
                response = await self._http.request(
                    method,
                    self.base_url + path,
                    params={k: v for k, v in (params or {}).items() if v is not None},
                    json=json,
                    headers=headers,
                )
        except httpx.TimeoutException as exc:
            raise ApiTimeoutError(
                f"phone.systems did not answer in time ({type(exc).__name__})",
                request_sent=not isinstance(exc, _NOT_SENT),
                method=method,
                path=path,
            ) from None
        except httpx.HTTPError as exc:
            raise ApiConnectionError(
                f"could not reach phone.systems ({type(exc).__name__}: {exc})",
                request_sent=not isinstance(exc, _NOT_SENT),
                method=method,
                path=path,
            ) from None
        self.limiter.observe(response.headers, started)
        log.debug(
            "odygy.response",
            method=method,
            path=path,
            status=response.status_code,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        if response.status_code >= 400:
            if self._metrics is not None:
                self._metrics.api_error(response.status_code)
            raise self._error(response, method, path)
        if response.status_code == 204 or not response.content:
            return None
        try:
            answer = response.json()
        except ValueError:
            raise ApiStatusError(
                "phone.systems answered with a body that is not JSON",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                method=method,
                path=path,
            ) from None
        if method == "GET" and self._on_read is not None:
            await self._on_read(api_path(response.request.url, self.base_url), response.content)
        return answer

    def _error(self, response: httpx.Response, method: str, path: str) -> ApiStatusError:
        code: str | None = None
        message = f"HTTP {response.status_code}"
        request_id = response.headers.get("x-request-id")
        try:
            detail = response.json()["error"]
            code = detail.get("code")
            message = detail.get("message") or message
            request_id = detail.get("request_id") or request_id
        except (ValueError, KeyError, TypeError, AttributeError):
            if response.text:
                message = f"{message}: {response.text[:200]}"
        error = error_for_status(response.status_code)(
            message,
            status=response.status_code,
            code=code,
            request_id=request_id,
            method=method,
            path=path,
        )
        if isinstance(error, RateLimitError):
            self.stats.http_429 += 1
            wait = parse_retry_after(response.headers.get("retry-after"),
                                     cap=self.retry.max_retry_after)
            error.retry_after = 1.0 if wait is None else wait
            self.limiter.pause(error.retry_after)
        return error
