"""What a bot's handler receives: one typed context object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from structlog.typing import FilteringBoundLogger

from agentkit.events import Event

if TYPE_CHECKING:
    from agentkit.bot import Bot
    from agentkit.odygy.client import OdygyClient
    from agentkit.store.base import Store

E = TypeVar("E", bound=Event)


@dataclass
class Context(Generic[E]):
    """The event a handler runs for, and what it may use to act on it.

    ``attempt`` counts from 1; a handler runs again after a failure, so what
    it does must be safe to repeat (actions are, through the action log).
    """

    event: E
    bot: Bot
    api: OdygyClient
    store: Store
    log: FilteringBoundLogger
    attempt: int
    dry_run: bool = False
