"""How a bot is declared: a module-level ``Bot`` with decorated handlers.

::

    bot = Bot("voicemail-callback", team=Team(role="agent"))

    @bot.on("voicemail.received", join="transcript.ready", direction="inbound")
    async def call_back(ctx: Context[VoicemailReceived]) -> None:
        triage = await ctx.llm.extract(VoicemailTriage, await ctx.transcript())
        if triage.wants_callback:
            await ctx.actions.callback(urgency=triage.urgency, reason=triage.summary)

A mistake in a declaration raises ``BotDefinitionError`` when the module is
loaded, with a message that says how to fix it; nothing warns and carries on.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args

from agentkit.errors import ConfigError
from agentkit.odygy.models import EVENT_TYPES, CallStatus, Role, check_e164

if TYPE_CHECKING:
    from agentkit.actions.hours import BusinessHours
    from agentkit.actions.policy import DialPolicy
    from agentkit.context import Context
    from agentkit.events import Event

_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")
CALL_STATUSES: tuple[str, ...] = get_args(CallStatus)
ROLES: tuple[str, ...] = get_args(Role)
Urgency = Literal["low", "normal", "high", "urgent"]
URGENCIES: tuple[str, ...] = get_args(Urgency)

HandlerFn = Callable[["Context[Any]"], Awaitable[None]]
H = TypeVar("H", bound=HandlerFn)
T = TypeVar("T", bound=Callable[..., Awaitable[Any]])


class BotDefinitionError(ConfigError):
    """A bot is declared wrongly; the message says how to fix it."""


@dataclass(frozen=True)
class Team:
    """Who a bot's calls ring first: every user of a ``role``, or listed ``users``.

    Users are named by id, email or extension. Calls go round robin over them.
    """

    role: Role | None = None
    users: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.role is None) == (not self.users):
            raise BotDefinitionError(
                "a Team takes either role= ('agent', 'supervisor' or 'admin') or users=[...], "
                "not both and not neither"
            )
        if self.role is not None and self.role not in ROLES:
            raise BotDefinitionError(f"Team role {self.role!r} is not one of {ROLES}")

    def describe(self) -> dict[str, Any]:
        return {"role": self.role} if self.role else {"users": list(self.users)}


@dataclass(frozen=True)
class CallbackPolicy:
    """How hard a callback tries: attempts, the wait between them, what counts as unreached.

    ``expire_after``: a callback that could not be placed within this time of
    its request (closed hours, calls paused) is given up rather than placed late.
    """

    max_attempts: int = 3
    retry_after: timedelta = timedelta(minutes=15)
    retry_on: frozenset[str] = frozenset({"busy", "no_answer", "failed", "voicemail"})
    expire_after: timedelta = timedelta(days=4)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise BotDefinitionError("CallbackPolicy.max_attempts must be at least 1")
        if self.expire_after <= timedelta(0):
            raise BotDefinitionError("CallbackPolicy.expire_after must be positive")
        unknown = set(self.retry_on) - set(CALL_STATUSES)
        if unknown:
            raise BotDefinitionError(
                f"CallbackPolicy.retry_on has unknown statuses {sorted(unknown)}: "
                f"use some of {CALL_STATUSES}"
            )


@dataclass(frozen=True)
class Escalation:
    """Where escalated follow-ups go: a higher team rung first, at a priority.

    ``queue_id`` names the phone.systems queue (as call flows name it) the team
    answers, for the record and for flows that route to it.
    """

    team: Team = field(default_factory=lambda: Team(role="supervisor"))
    queue_id: str | None = None
    urgency: Urgency = "high"


@dataclass(frozen=True)
class Filters:
    """Which events of a type a handler takes; unset means any."""

    direction: Literal["inbound", "outbound"] | None = None
    status: frozenset[str] = frozenset()
    number: str | None = None
    mailbox: str | None = None
    user: str | None = None

    def accepts(self, event: Event) -> bool:
        """Whether the event passes; a filter on a field the event lacks lets it pass."""
        data = getattr(event, "data", None)
        for wanted, attribute in (
            (self.direction, "direction"),
            (self.number, "to"),
            (self.mailbox, "mailbox_id"),
            (self.user, "user_id"),
        ):
            if wanted is not None and getattr(data, attribute, wanted) != wanted:
                return False
        status = getattr(data, "status", None)
        return not (self.status and status is not None and status not in self.status)


@dataclass(frozen=True)
class Listener:
    """One handler of a bot: the event type it reacts to, and what it waits for."""

    event_type: str
    handler: HandlerFn
    name: str
    join: tuple[str, ...] = ()
    join_timeout: timedelta = timedelta(minutes=10)
    filters: Filters = field(default_factory=Filters)
    schedule: BusinessHours | None = None
    scheduled: bool = False
    request: str | None = None

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every type that brings this handler closer to running."""
        return (self.event_type, *self.join)

    def wants(self, event: Event) -> bool:
        data = getattr(event, "data", None)
        if event.type == "agentkit.schedule":
            return self.scheduled and getattr(data, "handler", None) == self.name
        if event.type == "agentkit.request":
            return self.request is not None and getattr(data, "name", None) == self.request
        if event.type == self.event_type:
            return self.filters.accepts(event)
        return event.type in self.join


class Bot:
    """A bot: its name, its settings, and the handlers it runs on phone.systems events.

    Settings left unset fall back to the deployment's (AGENTKIT_MODEL,
    AGENTKIT_BUSINESS_HOURS, ...). ``prompts`` is a folder searched before the
    project's prompts/; ``prompt_names`` maps a task to another template;
    ``templates`` names the templates the bot renders by name, so that
    ``agentkit check`` can find them missing before start-up.
    """

    def __init__(
        self,
        name: str,
        *,
        team: Team | None = None,
        business_hours: str | None = None,
        model: str | None = None,
        prompts: str | Path | None = None,
        prompt_names: Mapping[str, str] | None = None,
        templates: Sequence[str] = (),
        use_platform_ai: bool = True,
        dial_policy: DialPolicy | None = None,
        callbacks: CallbackPolicy | None = None,
        escalation: Escalation | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise BotDefinitionError(
                f"bot name {name!r} must be lower-case letters, digits, '-' or '_', "
                "starting with a letter (at most 63 characters)"
            )
        from agentkit.actions.hours import BusinessHours
        from agentkit.actions.policy import DialPolicy

        self.name = name
        self.team = team or Team(role="agent")
        self.business_hours: BusinessHours | None
        try:
            self.business_hours = (
                BusinessHours.parse(business_hours) if business_hours is not None else None
            )
        except ConfigError as exc:
            raise BotDefinitionError(f"bot {name!r}: business_hours: {exc}") from None
        self.model = model
        self.prompts = Path(prompts) if prompts is not None else None
        self.prompt_names = dict(prompt_names or {})
        self.templates = tuple(templates)
        self.use_platform_ai = use_platform_ai
        self.dial_policy = dial_policy or DialPolicy()
        self.callbacks = callbacks or CallbackPolicy()
        self.escalation = escalation or Escalation()
        self.settings = dict(settings or {})
        self.listeners: list[Listener] = []
        self.callback_listeners: list[HandlerFn] = []
        self.model_tasks: dict[str, Callable[..., Awaitable[Any]]] = {}

    def __repr__(self) -> str:
        return f"Bot({self.name!r}, listeners={[x.name for x in self.listeners]})"

    def on(
        self,
        event_type: str,
        *,
        join: str | Sequence[str] = (),
        join_timeout: timedelta | float = timedelta(minutes=10),
        direction: Literal["inbound", "outbound"] | None = None,
        status: str | Iterable[str] | None = None,
        number: str | None = None,
        mailbox: str | None = None,
        user: str | None = None,
    ) -> Callable[[H], H]:
        """Run the decorated coroutine function for ``event_type`` events that pass the filters.

        With ``join``, it runs once per call, when the event and every joined
        type have arrived (in any order), or ``join_timeout`` after the first
        of them with what has arrived; ``ctx.joined`` and ``ctx.missing`` tell.
        """
        joined = (join,) if isinstance(join, str) else tuple(join)
        self._known(event_type, "event type")
        for other in joined:
            self._known(other, "join type")
        if event_type in joined or len(set(joined)) != len(joined):
            raise BotDefinitionError(
                f"bot {self.name!r}: join= repeats an event type ({event_type}, {joined})"
            )
        timeout = (
            join_timeout if isinstance(join_timeout, timedelta)
            else timedelta(seconds=join_timeout)
        )
        if timeout <= timedelta(0):
            raise BotDefinitionError(f"bot {self.name!r}: join_timeout must be positive")
        filters = self._filters(direction, status, number, mailbox, user)

        def register(handler: H) -> H:
            name = self._check_handler(handler, event_type)
            self.listeners.append(
                Listener(event_type, handler, name, joined, timeout, filters)
            )
            return handler

        return register

    def after_callback(self, handler: H) -> H:
        """Run the decorated coroutine function when one of this bot's callbacks ends.

        ``ctx.callback`` says how: reached, unreached after its attempts,
        cancelled (the caller was reached meanwhile) or failed.
        """
        self._check_handler(handler, "callback outcomes")
        self.callback_listeners.append(handler)
        return handler

    def on_schedule(self, hours: str | None = None) -> Callable[[H], H]:
        """Run the decorated coroutine function when ``hours`` open and when they close.

        ``hours`` defaults to the bot's business hours, then the deployment's.
        ``ctx.event.data.state`` is "open" or "closed". It also runs once at
        start-up for the state the hours are in, so a restart never misses one.
        Several worker processes run it once between them.
        """
        from agentkit.actions.hours import BusinessHours

        try:
            schedule = BusinessHours.parse(hours) if hours is not None else None
        except ConfigError as exc:
            raise BotDefinitionError(f"bot {self.name!r}: on_schedule: {exc}") from None

        def register(handler: H) -> H:
            name = self._check_handler(handler, "a schedule")
            self.listeners.append(
                Listener("agentkit.schedule", handler, name, schedule=schedule, scheduled=True)
            )
            return handler

        return register

    def on_request(self, name: str) -> Callable[[H], H]:
        """Run the decorated coroutine function when an operator asks for ``name``.

        ``agentkit request BOT NAME [--arg key=value]``; the arguments are in
        ``ctx.event.data.args``.
        """
        if not re.fullmatch(r"[a-z][a-z0-9_\-]{0,62}", name):
            raise BotDefinitionError(
                f"bot {self.name!r}: request name {name!r} must be lower-case letters, "
                "digits, '-' or '_'"
            )
        if any(x.request == name for x in self.listeners):
            raise BotDefinitionError(f"bot {self.name!r} already answers request {name!r}")

        def register(handler: H) -> H:
            label = self._check_handler(handler, f"request {name}")
            self.listeners.append(Listener("agentkit.request", handler, label, request=name))
            return handler

        return register

    def listeners_for(self, event: Event) -> list[Listener]:
        """The handlers this event concerns, in declaration order."""
        return [x for x in self.listeners if x.wants(event)]

    def listener(self, name: str) -> Listener | None:
        return next((x for x in self.listeners if x.name == name), None)

    @property
    def event_types(self) -> list[str]:
        return list(dict.fromkeys(t for x in self.listeners for t in x.event_types))

    @property
    def schedules(self) -> list[Listener]:
        return [x for x in self.listeners if x.scheduled]

    def model_task(self, task: T) -> T:
        """Register a coroutine function ``(llm, source) -> answer`` as one of the bot's model
        tasks, so that ``agentkit eval`` can measure it on labelled transcripts."""
        if not inspect.iscoroutinefunction(task):
            raise BotDefinitionError(
                f"bot {self.name!r}: model task {getattr(task, '__name__', task)!r} must be "
                "declared with 'async def'"
            )
        self.model_tasks[task.__name__] = task
        return cast(T, task)

    def describe(self) -> dict[str, Any]:
        """What ``agentkit bots`` shows of this bot."""
        return {
            "name": self.name,
            "handlers": [
                {
                    "handler": x.name,
                    "on": f"schedule {x.schedule or 'business hours'}" if x.scheduled
                    else f"request {x.request}" if x.request else x.event_type,
                    **({"join": list(x.join), "join_timeout_s": x.join_timeout.total_seconds()}
                       if x.join else {}),
                    **{k: (sorted(v) if isinstance(v, frozenset) else v)
                       for k, v in vars(x.filters).items() if v},
                }
                for x in self.listeners
            ],
            "after_callback": [getattr(h, "__name__", "?") for h in self.callback_listeners],
            "team": self.team.describe(),
            "business_hours": str(self.business_hours) if self.business_hours else None,
            "model": self.model,
        }

    # checks

    def _known(self, event_type: str, what: str) -> None:
        if event_type not in EVENT_TYPES:
            raise BotDefinitionError(
                f"bot {self.name!r}: unknown {what} {event_type!r}; "
                f"use one of {', '.join(EVENT_TYPES)}"
            )

    def _check_handler(self, handler: Any, what: str) -> str:
        label = getattr(handler, "__name__", repr(handler))
        if not inspect.iscoroutinefunction(handler):
            raise BotDefinitionError(
                f"bot {self.name!r}: handler {label!r} for {what} must be declared with 'async def'"
            )
        taken = {x.name for x in self.listeners} | {
            getattr(h, "__name__", "") for h in self.callback_listeners
        }
        if label in taken:
            raise BotDefinitionError(
                f"bot {self.name!r} already has a handler named {label!r}; rename one"
            )
        return cast(str, label)

    def _filters(
        self,
        direction: str | None,
        status: str | Iterable[str] | None,
        number: str | None,
        mailbox: str | None,
        user: str | None,
    ) -> Filters:
        if direction not in (None, "inbound", "outbound"):
            raise BotDefinitionError(
                f"bot {self.name!r}: direction must be 'inbound' or 'outbound', not {direction!r}"
            )
        statuses = frozenset([status] if isinstance(status, str) else status or ())
        unknown = statuses - set(CALL_STATUSES)
        if unknown:
            raise BotDefinitionError(
                f"bot {self.name!r}: unknown call status {sorted(unknown)}; use {CALL_STATUSES}"
            )
        if number is not None:
            try:
                check_e164(number)
            except ValueError as exc:
                raise BotDefinitionError(f"bot {self.name!r}: number filter: {exc}") from None
        return Filters(
            direction=cast(Literal["inbound", "outbound"] | None, direction),
            status=statuses,
            number=number,
            mailbox=mailbox,
            user=user,
        )
