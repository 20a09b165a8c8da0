"""API reads, kept as they happened and served again: what a replay's bots read.

Live, ``ReadRecorder`` keeps the body of every successful read (a call, its
transcript, the users, the numbers) in the store, the latest per path. In a
replay, ``RecordedTransport`` answers a read from what was kept, and passes
what was never kept to a read-only transport; anything but a read is refused.
"""

from __future__ import annotations

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
    them before a model reads them. A read that cannot be kept is logged and the
    bot goes on: the read itself worked.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def __call__(self, path: str, body: bytes) -> None:
        if _TRANSCRIPT_PATH.match(path):
            body = mask_json_answer(body.decode("utf-8", "replace")).encode()
        try:
            await self._store.record_api_read(ApiRead(
                path=path, call_id=call_of(path), body=body, read_at=datetime.now(UTC)))
        except StoreError as exc:
            log.warning("api_read.not_kept", path=path, error=str(exc))


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
