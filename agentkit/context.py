"""What a bot's handler receives: one typed context object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic

from pydantic import BaseModel
from structlog.typing import FilteringBoundLogger
from typing_extensions import TypeVar

from agentkit.actions.hours import BusinessHours
from agentkit.actions.toolkit import Actions
from agentkit.bot import Bot
from agentkit.errors import NotFoundError
from agentkit.events import CallbackEnded, CallbackOutcome, Event
from agentkit.history import History
from agentkit.llm import LlmTasks, Usage
from agentkit.odygy.client import OdygyClient
from agentkit.odygy.models import Transcript
from agentkit.reporting import Reports
from agentkit.settings import Settings

E = TypeVar("E", bound=Event, covariant=True)
S = TypeVar("S", bound=BaseModel | None, default=None, covariant=True)


@dataclass
class Context(Generic[E, S]):
    """The event a handler runs for, and what it may use to act on it.

    ``Context[VoicemailReceived]`` for a bot without settings;
    ``Context[VoicemailReceived, MySettings]`` when the bot has
    ``settings=MySettings(...)``, read as ``ctx.settings``.

    ``llm`` asks the model (summarise, classify, extract, decide); ``actions``
    acts (callback, escalate, update_flow, notify), each action once per event
    however often the handler runs; ``api`` is the phone.systems client for
    reads; ``history`` reads what was done before. ``attempt`` counts from 1:
    a handler runs again after a failure. With a join, ``joined`` holds every
    event that arrived, by type, and ``missing`` the types that had not when
    the join timed out. ``hours`` are the bot's business hours, ``time_zone``
    the business's (AGENTKIT_TIME_ZONE, else the hours'), and ``now()`` the time
    agentkit decides by (a replay's or a test's clock). ``reports`` reads a
    day's figures, read-only (``await ctx.reports.day()``).
    """

    event: E
    bot: Bot
    settings: S
    api: OdygyClient
    history: History
    log: FilteringBoundLogger
    attempt: int
    llm: LlmTasks
    actions: Actions
    usage: Usage
    deployment: Settings
    reports: Reports
    joined: dict[str, Event] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    hours: BusinessHours = field(default_factory=BusinessHours)
    time_zone: str = "UTC"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    _transcript: Transcript | None = field(default=None, repr=False)

    @property
    def dry_run(self) -> bool:
        """Whether actions are only decided and logged (AGENTKIT_DRY_RUN=1)."""
        return self.deployment.dry_run

    def now(self) -> datetime:
        """Now, as agentkit decides by it: aware, in UTC."""
        return self.clock()

    @property
    def callback(self) -> CallbackOutcome | None:
        """How the callback ended, in an ``@bot.after_callback`` handler (``ctx.event.data``)."""
        return self.event.data if isinstance(self.event, CallbackEnded) else None

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
        return self._transcript
