"""``ctx.history``: what a handler may read of what happened before, and nothing it may change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from agentkit.actions.callbacks import caller_of
from agentkit.events import Event
from agentkit.odygy.client import OdygyClient
from agentkit.odygy.models import Call
from agentkit.odygy.pagination import MAX_PAGE_SIZE
from agentkit.store.base import ActionRecord, Store


class History:
    """Read-only: this call's actions, this bot's earlier actions, a number's recent calls."""

    def __init__(self, store: Store, api: OdygyClient, *, event: Event, bot: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._store = store
        self._api = api
        self._event = event
        self._bot = bot

    async def actions(self) -> list[ActionRecord]:
        """The actions every bot took on this call's events (or this event's), oldest first."""
        call_id = self._event.call_id
        if call_id is None:
            return await self._store.actions_for_event(self._event.id)
        return await self._store.actions_for_call(call_id)

    async def action(self, key: str) -> ActionRecord | None:
        """One of this bot's actions by its key (``CallbackResult.key``), or None."""
        record = await self._store.get_action(key)
        return record if record is not None and record.bot == self._bot else None

    async def bot_actions(self, kind: str, *, limit: int = 100) -> list[ActionRecord]:
        """This bot's latest actions of one kind ("callback", "attach_number", ...), newest
        first."""
        return await self._store.actions_of_kind(kind, bot=self._bot, limit=limit)

    async def calls(
        self, number: str | None = None, *, within: timedelta = timedelta(days=7), limit: int = 20
    ) -> list[Call]:
        """The calls from or to ``number`` (default: the caller) in the last ``within``,
        newest first, as the phone.systems API records them."""
        number = number or caller_of(self._event)
        if number is None:
            return []
        since = self._clock() - within
        size = max(1, min(limit, MAX_PAGE_SIZE))
        found: dict[str, Call] = {}
        for page in (self._api.calls.list(from_=number, started_after=since, limit=size),
                     self._api.calls.list(to=number, started_after=since, limit=size)):
            taken = 0
            async for call in page:  # newest first: the first ``limit`` are the latest
                found[call.id] = call
                taken += 1
                if taken >= limit:
                    break
        return sorted(found.values(), key=lambda c: c.started_at, reverse=True)[:limit]
