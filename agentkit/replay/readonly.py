"""A phone.systems client that can only read: what a replay may use when the store lacks a record.

The refusal is in the HTTP transport, under the whole client: whichever method
a bot calls (``calls.create``, ``call_flows.update``, ``numbers.attach``, or a
raw request), anything but a read is refused before a byte leaves the process.
"""

from __future__ import annotations

import httpx

from agentkit.errors import AgentkitError
from agentkit.odygy.client import OdygyClient

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadOnlyError(AgentkitError):
    """A replay tried to change something at phone.systems; it never may."""


class ReadOnlyTransport(httpx.AsyncBaseTransport):
    """Passes reads to ``inner``; raises ReadOnlyError for any other method."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in READ_METHODS:
            raise ReadOnlyError(
                f"a replay never writes to phone.systems: {request.method} "
                f"{request.url.path} was refused"
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def read_only_client(*, api_key: str, base_url: str, timeout: float = 10.0) -> OdygyClient:
    """An OdygyClient whose every write raises ReadOnlyError; reads work as usual."""
    http = httpx.AsyncClient(
        transport=ReadOnlyTransport(),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
    )
    return OdygyClient(api_key=api_key, base_url=base_url, timeout=timeout, http_client=http)
