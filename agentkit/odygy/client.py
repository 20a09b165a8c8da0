"""OdygyClient: agentkit's only road to phone.systems."""

from __future__ import annotations

from types import TracebackType

import httpx

from agentkit.errors import ConfigError
from agentkit.odygy.ratelimit import ClientRateLimiter, RateLimiter, RateLimits
from agentkit.odygy.resources.account import AccountResource
from agentkit.odygy.resources.call_flows import CallFlowsResource
from agentkit.odygy.resources.calls import CallsResource
from agentkit.odygy.resources.numbers import NumbersResource
from agentkit.odygy.resources.users import UsersResource
from agentkit.odygy.resources.webhooks import WebhooksResource
from agentkit.odygy.transport import (
    DEFAULT_BASE_URL,
    ApiMetrics,
    ClientStats,
    ReadHook,
    RetryPolicy,
    Transport,
)


class OdygyClient:
    """An async client of the phone.systems REST API.

    ::

        async with OdygyClient(api_key=key) as client:
            call = await client.calls.create(from_="+40264000111", to="+442079460000")
            async for user in client.users.list():
                ...

    It paces itself under the API's rate limits, retries what is safe to retry
    and never places a call twice. ``limits`` sets this client's own limiter;
    ``limiter`` hands it one to share instead (the store's
    ``PostgresRateLimiter`` shares one budget among processes), and its owner
    closes it. ``metrics`` (a process's ``Metrics``) counts the API's error answers.
    ``on_read`` is told of every successful read (agentkit keeps them for replays).
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
        limiter: RateLimiter | None = None,
        max_connections: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        metrics: ApiMetrics | None = None,
        on_read: ReadHook | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("OdygyClient needs an API key: set ODYGY_API_KEY")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(f"the API base URL must start with https:// (got {base_url!r})")
        if limiter is not None and limits is not None:
            raise ConfigError("OdygyClient takes limits or a limiter, not both")
        if limiter is None:
            limiter = ClientRateLimiter(limits or RateLimits())
        limits = limiter.limits
        if max_connections is None:
            max_connections = limits.max_call_creations + 4
        if max_connections <= limits.max_call_creations:
            raise ConfigError(
                f"max_connections ({max_connections}) must exceed max_call_creations "
                f"({limits.max_call_creations}), or call creations would starve other requests"
            )
        self._transport = Transport(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            limiter=limiter,
            max_connections=max_connections,
            http_client=http_client,
            metrics=metrics,
            on_read=on_read,
        )
        self.account = AccountResource(self._transport)
        self.users = UsersResource(self._transport)
        self.numbers = NumbersResource(self._transport)
        self.call_flows = CallFlowsResource(self._transport)
        self.calls = CallsResource(self._transport)
        self.webhooks = WebhooksResource(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def stats(self) -> ClientStats:
        return self._transport.stats

    @property
    def max_calls_in_flight(self) -> int:
        """The most call creations this client has had in flight at once."""
        return self._transport.limiter.max_calls_in_flight

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> OdygyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"OdygyClient(base_url={self.base_url!r}, api_key='***')"
