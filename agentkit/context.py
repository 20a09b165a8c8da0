"""What a bot's handler receives: one typed context object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from structlog.typing import FilteringBoundLogger

from agentkit.errors import NotFoundError
from agentkit.events import Event
from agentkit.odygy.models import Transcript

if TYPE_CHECKING:
    from agentkit.actions.toolkit import Actions, CallbackOutcome
    from agentkit.bot import Bot
    from agentkit.llm import LlmTasks, Usage
    from agentkit.odygy.client import OdygyClient
    from agentkit.settings import Settings
    from agentkit.store.base import Store

E = TypeVar("E", bound=Event)


@dataclass
class Context(Generic[E]):
    """The event a handler runs for, and what it may use to act on it.

    ``llm`` asks the model (summarise, classify, extract, decide); ``actions``
    acts (callback, escalate, update_flow, notify), each action once per event
    however often the handler runs; ``api`` is the phone.systems client for
    reads. ``attempt`` counts from 1: a handler runs again after a failure.
    With a join, ``joined`` holds every event that arrived, by type, and
    ``missing`` the types that had not when the join timed out.
    """

    event: E
    bot: Bot
    api: OdygyClient
    store: Store
    log: FilteringBoundLogger
    attempt: int
    llm: LlmTasks
    actions: Actions
    usage: Usage
    settings: Settings
    joined: dict[str, Event] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    callback: CallbackOutcome | None = None
    _transcript: Any = field(default=None, repr=False)

    @property
    def dry_run(self) -> bool:
        return self.settings.dry_run

    async def transcript(self) -> Transcript | None:
        """The call's transcript, or None when the call has none (yet)."""
        if self._transcript is None:
            call_id = self.event.call_id
            if call_id is None:
                return None
            try:
                self._transcript = await self.api.calls.transcript(call_id)
            except NotFoundError:
                return None
        return self._transcript if isinstance(self._transcript, Transcript) else None
