"""The action log in use: one key per (event, bot, action), claimed before acting.

An action recorded as done is never repeated, whether the handler runs again
after a failure or phone.systems delivers the event again. Every action goes
through ``ActionLog.perform``: dry run, claim, act, settle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from agentkit.logs import get_logger
from agentkit.store.base import ActionRecord, ActionState, Store

log = get_logger("agentkit.actions")

T = TypeVar("T")


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


@dataclass(frozen=True)
class Settle:
    """How an action ended, for the log: its state, an outcome word, and more detail."""

    state: Literal["done", "failed"]
    outcome: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Performed(Generic[T]):
    """What became of one action in this run.

    ``how`` is ``acted`` when ``act`` ran in this run, ``seen`` when an earlier
    run had finished the action, ``dry_run`` when it was only recorded, and
    ``noted`` when a decision not to act was recorded. ``record`` is the entry
    as the log holds it now, ``claimed`` as it stood once claimed, before
    acting; ``result`` is what ``act`` returned, None unless it ran.
    """

    how: Literal["acted", "seen", "dry_run", "noted"]
    record: ActionRecord
    claimed: ActionRecord
    result: T | None = None


class ActionLog:
    """Claims and settles actions for one bot's run on one event."""

    def __init__(self, store: Store, *, event_id: str, bot: str, dry_run: bool,
                 shadow: bool = False, after_callback: bool = False) -> None:
        """``shadow``: the bot runs in shadow mode, which is a dry run marked as such.
        ``after_callback``: the actions are an ``@bot.after_callback`` handler's, and
        say so (a replay, which places no calls, leaves them out)."""
        self._store = store
        self.event_id = event_id
        self.bot = bot
        self.shadow = shadow
        self.dry_run = dry_run or shadow
        self._marks = {"after_callback": True} if after_callback else {}

    def key(self, kind: str, name: str = "") -> str:
        """The key of this run's action ``kind`` (and ``name``): see ``action_key``."""
        return action_key(self.event_id, self.bot, kind, name)

    async def perform(
        self,
        key: str,
        kind: str,
        detail: dict[str, Any],
        act: Callable[[Claim], Awaitable[T]],
        *,
        settle: Settle | Callable[[T], Settle] | None,
        even_in_dry_run: bool = False,
    ) -> Performed[T]:
        """Do one action at most once: dry run, claim, act, settle.

        In a dry run ``detail`` is recorded and logged, and nothing is done.
        Otherwise ``key`` is claimed with ``detail``; an action an earlier run
        finished is not done again (one whose run died before settling is).
        ``act`` gets the claim; ``settle``, given what it returned, says what to
        record. With ``settle=None`` the action stays open, for its own life
        cycle to settle (a callback's ends with its calls). An error from ``act``
        is raised and leaves the action started, to be done by the next run.
        ``even_in_dry_run``: act all the same (a shadow bot's note to its own channel).
        """
        if self.dry_run and not even_in_dry_run:
            return await self._dry(key, kind, detail)
        claim = await self.claim(key, kind, detail)
        if claim.finished:
            return Performed("seen", claim.record, claim.record)
        result = await act(claim)
        if settle is None:
            return Performed("acted", claim.record, claim.record, result)
        outcome = settle if isinstance(settle, Settle) else settle(result)
        record = await self.settle(key, outcome.state, outcome=outcome.outcome, **outcome.detail)
        return Performed("acted", record, claim.record, result)

    async def note(
        self, key: str, kind: str, detail: dict[str, Any], settle: Settle
    ) -> Performed[None]:
        """Record once an action decided against (a refused callback), in a dry run too."""
        claim = await self.claim(key, kind, detail)
        if claim.finished:
            return Performed("seen", claim.record, claim.record)
        record = await self.settle(key, settle.state, outcome=settle.outcome, **settle.detail)
        return Performed("noted", record, claim.record)

    async def claim(self, key: str, kind: str, detail: dict[str, Any]) -> Claim:
        """Record the action as started, or find it: see ``Store.claim_action``."""
        record, fresh = await self._store.claim_action(
            key, event_id=self.event_id, bot=self.bot, kind=kind, detail={**detail, **self._marks}
        )
        if not fresh:
            log.info("action.seen_before", action=kind, key=key, state=record.state)
        return Claim(record, fresh)

    async def settle(self, key: str, state: ActionState, **detail: Any) -> ActionRecord:
        """Record how the action ended, merging ``detail`` into what it holds."""
        record = await self._store.settle_action(key, state, detail)
        log.info("action.settled", action=record.kind, key=key, state=state,
                 outcome=detail.get("outcome"))
        return record

    async def _dry(self, key: str, kind: str, detail: dict[str, Any]) -> Performed[Any]:
        marks = {"dry_run": True, **({"shadow": True} if self.shadow else {})}
        claim = await self.claim(key, kind, {**detail, **marks})
        if claim.finished:
            return Performed("dry_run", claim.record, claim.record)
        log.info("action.dry_run", action=kind, key=key, shadow=self.shadow,
                 **_loggable(detail))
        record = await self.settle(key, "done", outcome="dry_run")
        return Performed("dry_run", record, claim.record)


def _loggable(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if isinstance(v, (str, int, float, bool))}
