"""API reads, kept as they happened and served again: what a replay's bots read.

Live, ``ReadRecorder`` keeps the body of every successful read (a call, its
transcript, the users, the numbers) in the store, the latest per path. In a
replay, ``RecordedTransport`` answers a read from what was kept, and passes
what was never kept to a read-only transport; anything but a read is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections import OrderedDict
from datetime import UTC, datetime

import httpx

from agentkit.logs import get_logger
from agentkit.odygy.client import OdygyClient
from agentkit.odygy.ratelimit import RateLimits
from agentkit.odygy.transport import api_path
from agentkit.redact import mask_json_answer
from agentkit.replay.readonly import READ_METHODS, ReadOnlyTransport
from agentkit.store.base import ApiRead, Store, StoreError

log = get_logger("agentkit.replay")

_CALL_PATH = re.compile(r"^/calls/([^/?]+)")
_TRANSCRIPT_PATH = re.compile(r"^/calls/[^/?]+/transcript(?:\?|$)")


def call_of(path: str) -> str | None:
    """The call a read is about, when its path names one: ``/calls/cal_1/transcript``."""
    found = _CALL_PATH.match(path)
    return found.group(1) if found else None


class ReadRecorder:
    """Keeps each read in the store (``OdygyClient(on_read=ReadRecorder(store))``).

    A transcript is kept with payment data masked in its words, as the bots mask
    them before a model reads them. A read whose body is the one last kept for its
    path is not written again; the others are written together, one transaction
    every ``delay`` seconds, off the bots' way (a bot's reads cost its handler no
    store write). ``flush`` writes what waits; ``aclose`` does too, at shutdown. A
    read that cannot be kept is logged and forgotten: the read itself worked.
    """

    def __init__(self, store: Store, *, delay: float = 0.5, remembered: int = 4096) -> None:
        self._store = store
        self._delay = delay
        self._remembered = remembered
        self._pending: dict[str, ApiRead] = {}
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, path: str, body: bytes) -> None:
        if _TRANSCRIPT_PATH.match(path):
            body = mask_json_answer(body.decode("utf-8", "replace")).encode()
        digest = hashlib.blake2b(body, digest_size=16).digest()
        if self._kept.get(path) == digest:
            self._kept.move_to_end(path)
            return
        self._kept[path] = digest
        if len(self._kept) > self._remembered:
            self._kept.popitem(last=False)
        self._pending[path] = ApiRead(path=path, call_id=call_of(path), body=body,
                                      read_at=datetime.now(UTC))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later(), name="api-reads")

    async def flush(self) -> None:
        """Write the reads waiting, now."""
        reads, self._pending = list(self._pending.values()), {}
        if not reads:
            return
        try:
            await self._store.record_api_reads(reads)
        except StoreError as exc:
            for read in reads:  # so that the next read of these paths is kept again
                self._kept.pop(read.path, None)
            log.warning("api_reads.not_kept", reads=len(reads), error=str(exc))

    async def aclose(self) -> None:
        """Write what waits and stop."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._delay)
        await self.flush()


class RecordedTransport(httpx.AsyncBaseTransport):
    """Answers reads from the store's kept reads; the rest go to a read-only transport.

    ``misses`` counts the reads that were not kept and went on. The last
    ``remembered`` kept reads are held in memory: a call's bots read the same call
    and transcript, and the kept reads never change during a replay.
    """

    def __init__(self, store: Store, base_url: str,
                 fallback: httpx.AsyncBaseTransport | None = None, *,
                 remembered: int = 256) -> None:
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._remembered = remembered
        self._store = store
        self._base_url = base_url
        self._fallback = ReadOnlyTransport(fallback)
        self.hits = 0
        self.misses = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await self._kept(request) if request.method in READ_METHODS else None
        if body is None:  # a write is refused there
            self.misses += request.method in READ_METHODS
            return await self._fallback.handle_async_request(request)
        self.hits += 1
        return httpx.Response(200, content=body, request=request,
                              headers={"content-type": "application/json"})

    async def _kept(self, request: httpx.Request) -> bytes | None:
        path = api_path(request.url, self._base_url)
        body = self._recent.get(path)
        if body is not None:
            self._recent.move_to_end(path)
            return body
        kept = await self._store.api_read(path)
        if kept is None:
            return None
        self._recent[path] = kept.body
        if len(self._recent) > self._remembered:
            self._recent.popitem(last=False)
        return kept.body

    async def aclose(self) -> None:
        await self._fallback.aclose()


def recorded_client(store: Store, *, api_key: str, base_url: str,
                    fallback: httpx.AsyncBaseTransport | None = None,
                    timeout: float = 10.0) -> tuple[OdygyClient, RecordedTransport]:
    """A client for replays: reads from ``store``'s kept reads, else from phone.systems
    (``fallback``: its transport, for tests); every write raises ReadOnlyError.

    Its own rate limit is off: kept reads cost phone.systems nothing, and a
    replay asks for one call's reads at a time.
    """
    transport = RecordedTransport(store, base_url, fallback)
    http = httpx.AsyncClient(transport=transport,
                             timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
    client = OdygyClient(api_key=api_key, base_url=base_url, timeout=timeout,
                         http_client=http, limits=RateLimits(enabled=False))
    return client, transport
