"""Cursor pagination: ``async for item in client.users.list()`` walks every page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, TypeVar

from agentkit.errors import RequestValidationError
from agentkit.logs import get_logger
from agentkit.odygy.transport import Transport

T = TypeVar("T")

MAX_PAGE_SIZE = 100

log = get_logger("agentkit.odygy")


class Paginator(Generic[T]):
    """The items of a list endpoint, fetched a page at a time as they are consumed.

    Stops when a page has no ``next_cursor``, and also when a cursor comes back
    that was already followed (a server bug would otherwise loop for ever).
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        parse: Callable[[Any], T],
        *,
        limit: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if limit is not None and not 1 <= limit <= MAX_PAGE_SIZE:
            raise RequestValidationError(
                f"limit must be from 1 to {MAX_PAGE_SIZE} items per page, not {limit}"
            )
        self._transport = transport
        self._path = path
        self._parse = parse
        self._params = {**(params or {}), "limit": limit}

    async def pages(self) -> AsyncIterator[list[T]]:
        """Each page's items, in turn."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            answer = await self._transport.request(
                "GET", self._path, params={**self._params, "cursor": cursor}
            )
            yield [self._parse(item) for item in answer.get("data", [])]
            cursor = answer.get("next_cursor")
            if not cursor:
                return
            if cursor in seen:
                log.warning("odygy.pagination.cursor_repeated", path=self._path)
                return
            seen.add(cursor)

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page:
                yield item

    async def to_list(self) -> list[T]:
        """Every item, in one list."""
        return [item async for item in self]
