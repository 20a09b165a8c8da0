"""Signed webhook deliveries, retried with backoff, with optional duplicates and reordering."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from agentkit.logs import get_logger
from agentkit.odygy.signing import SIGNATURE_HEADER, sign
from agentkit.sim.config import Delivery
from agentkit.sim.state import Endpoint
from agentkit.sim.tasks import BackgroundTasks

log = get_logger("agentkit.sim.delivery")


@dataclass(frozen=True)
class SimEvent:
    """One event as phone.systems emits it: the envelope and its serialised body."""

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": self.data,
        }

    def body(self) -> bytes:
        return json.dumps(self.envelope(), separators=(",", ":")).encode()


@dataclass
class DeliveryAttempt:
    """One POST of one event to one endpoint, and what came of it."""

    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class DeliveryLog:
    """Every event emitted and every delivery attempt made, for tests to read."""

    events: list[SimEvent] = field(default_factory=list)
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    gave_up: list[tuple[str, str]] = field(default_factory=list)

    def delivered(self, event_type: str | None = None) -> list[DeliveryAttempt]:
        return [
            a for a in self.attempts if a.ok and (event_type is None or a.event_type == event_type)
        ]

    def emitted(self, event_type: str | None = None) -> list[SimEvent]:
        return [e for e in self.events if event_type is None or e.type == event_type]


class Dispatcher:
    """Sends each event to every endpoint subscribed to its type.

    Each delivery is its own task: a slow or failing endpoint delays only its
    own events. Non-2xx answers and connection errors are retried on the
    ``retry_delays`` schedule; after the last, the delivery is given up.
    """

    def __init__(
        self,
        config: Delivery,
        endpoints: Callable[[], Iterable[Endpoint]],
        *,
        time_scale: float,
        rng: random.Random,
    ) -> None:
        self.config = config
        self._endpoints = endpoints
        self._time_scale = time_scale
        self._rng = rng
        self._http: httpx.AsyncClient | None = None
        self._tasks = BackgroundTasks()
        self._held: list[SimEvent] | None = None
        self.log = DeliveryLog()

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self.config.timeout)

    async def close(self) -> None:
        await self._tasks.cancel_all()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def hold(self) -> None:
        """Keep new events back until ``release``, to deliver them in a chosen order."""
        if self._held is None:
            self._held = []

    def release(self, order: Callable[[list[SimEvent]], list[SimEvent]] | None = None) -> None:
        """Send the held events, in the order ``order`` returns (default: as emitted)."""
        held, self._held = self._held or [], None
        for event in order(held) if order else held:
            self._fan_out(event)

    def emit(self, event: SimEvent) -> None:
        self.log.events.append(event)
        if self._held is not None:
            self._held.append(event)
            return
        self._fan_out(event)

    def _fan_out(self, event: SimEvent) -> None:
        for endpoint in self._endpoints():
            if event.type not in endpoint.info.events:
                continue
            copies = 2 if self._rng.random() < self.config.duplicate_rate else 1
            for _ in range(copies):
                self._tasks.spawn(self._deliver(event, endpoint))

    async def _deliver(self, event: SimEvent, endpoint: Endpoint) -> None:
        if self.config.reorder_jitter > 0:
            await asyncio.sleep(self._rng.uniform(0, self.config.reorder_jitter))
        body = event.body()
        delays = self.config.retry_delays
        for attempt in range(1, len(delays) + 2):
            status, error = await self._post(endpoint, body)
            self.log.attempts.append(
                DeliveryAttempt(
                    event_id=event.id,
                    event_type=event.type,
                    endpoint_id=endpoint.info.id,
                    url=endpoint.info.url,
                    attempt=attempt,
                    status=status,
                    error=error,
                )
            )
            if status is not None and 200 <= status < 300:
                return
            if attempt > len(delays):
                break
            log.info(
                "sim.delivery.retry",
                event_id=event.id,
                event_type=event.type,
                attempt=attempt,
                status=status,
                error=error,
            )
            await asyncio.sleep(delays[attempt - 1] * self._time_scale)
        self.log.gave_up.append((event.id, endpoint.info.id))
        log.warning("sim.delivery.gave_up", event_id=event.id, url=endpoint.info.url)

    async def _post(self, endpoint: Endpoint, body: bytes) -> tuple[int | None, str | None]:
        assert self._http is not None, "the dispatcher was not started"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "phone.systems-webhooks/1.0 (agentkit simulator)",
            SIGNATURE_HEADER: sign(body, endpoint.secrets),
        }
        try:
            response = await self._http.post(endpoint.info.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, type(exc).__name__
        return response.status_code, None

    @property
    def busy(self) -> bool:
        return self._tasks.busy

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no delivery is in progress (including retries that are waiting)."""
        await self._tasks.wait_idle(timeout)
