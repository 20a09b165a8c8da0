"""The action log in use: one key per (event, bot, action), claimed before acting.

An action recorded as done is never repeated, whether the handler runs again
after a failure or phone.systems delivers the event again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from agentkit.store.base import ActionRecord, ActionState, Store

log = structlog.get_logger("agentkit.actions")


def action_key(event_id: str, bot: str, kind: str, name: str = "") -> str:
    """The idempotency key of one action: event, bot, kind and an optional name."""
    return ":".join(part for part in (event_id, bot, kind, name) if part)


@dataclass(frozen=True)
class Claim:
    """An action claimed in the log: ``fresh`` if this run is the first to claim it."""

    record: ActionRecord
    fresh: bool

    @property
    def finished(self) -> bool:
        return self.record.state in ("done", "failed")


class ActionLog:
    """Claims and settles actions for one bot's run on one event."""

    def __init__(self, store: Store, *, event_id: str, bot: str, dry_run: bool) -> None:
        self._store = store
        self.event_id = event_id
        self.bot = bot
        self.dry_run = dry_run

    def key(self, kind: str, name: str = "") -> str:
        return action_key(self.event_id, self.bot, kind, name)

    async def claim(self, key: str, kind: str, detail: dict[str, Any]) -> Claim:
        record, fresh = await self._store.claim_action(
            key, event_id=self.event_id, bot=self.bot, kind=kind, detail=detail
        )
        if not fresh:
            log.info("action.seen_before", action=kind, key=key, state=record.state)
        return Claim(record, fresh)

    async def settle(self, key: str, state: ActionState, **detail: Any) -> ActionRecord:
        record = await self._store.settle_action(key, state, detail)
        log.info("action.settled", action=record.kind, key=key, state=state,
                 outcome=detail.get("outcome"))
        return record

    async def dry(self, key: str, kind: str, detail: dict[str, Any]) -> ActionRecord:
        """Record an action decided but, in dry-run mode, not executed."""
        claim = await self.claim(key, kind, {**detail, "dry_run": True})
        if claim.finished:
            return claim.record
        log.info("action.dry_run", action=kind, key=key, **_loggable(detail))
        return await self.settle(key, "done", outcome="dry_run")


def _loggable(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if isinstance(v, (str, int, float, bool))}
