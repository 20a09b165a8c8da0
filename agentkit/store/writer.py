"""Group commit: deliveries that arrive together are written in one transaction.

Each delivery must be durable before it is acknowledged, and a durable commit
costs a disk flush. Writing everything that queued up during the previous
commit in the next one makes that cost per batch, not per delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agentkit.logs import get_logger
from agentkit.store.base import NewEvent, Store, StoreError, StoreUnavailable

log = get_logger("agentkit.store")


class EventWriter:
    """Writes events through one store, batching those that wait together."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 256,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._pending: list[tuple[NewEvent, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def write(self, event: NewEvent) -> bool:
        """Store one event durably; True if new, False if its id was stored before."""
        if self._closing or self._task is None:
            raise StoreUnavailable("the event writer is not running")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write(batch)
            if self._closing:
                return

    async def _write(self, batch: list[tuple[NewEvent, asyncio.Future[bool]]]) -> None:
        try:
            results = await self._store.add_events([event for event, _ in batch])
        except StoreError as exc:
            if len(batch) > 1 and not isinstance(exc, StoreUnavailable):
                # The store refused something in the batch: write each alone, so that
                # one event it cannot take fails only its own delivery.
                for item in batch:
                    await self._write([item])
                return
            log.error("store.write_failed", events=len(batch), error=str(exc))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:  # a bug in an engine must not wedge the receiver
            log.exception("store.write_crashed", events=len(batch))
            failure = StoreUnavailable(f"the store failed unexpectedly: {type(exc).__name__}")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        for (_, future), fresh in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(fresh)
        if self._on_commit is not None:
            self._on_commit(len(batch))
