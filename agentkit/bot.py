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

import difflib
import inspect
import re
import sys
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, cast, get_args, get_origin

from pydantic import BaseModel

from agentkit.approvals.rules import APPROVAL_RULES
from agentkit.errors import ConfigError
from agentkit.events import (
    EVENT_CLASSES,
    INTERNAL_EVENT_CLASSES,
    CallbackEnded,
    Event,
    event_type_of,
)
from agentkit.odygy.models import EVENT_TYPES, CallStatus, Role, check_e164

if TYPE_CHECKING:
    from agentkit.actions.hours import BusinessHours
    from agentkit.actions.policy import DialPolicy

_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")
CALL_STATUSES: tuple[str, ...] = get_args(CallStatus)
ROLES: tuple[str, ...] = get_args(Role)
Urgency = Literal["low", "normal", "high", "urgent"]
URGENCIES: tuple[str, ...] = get_args(Urgency)

# A handler takes one Context; typed loosely here so that bot.py need not import context.py.
HandlerFn = Callable[[Any], Awaitable[None]]
H = TypeVar("H", bound=HandlerFn)
T = TypeVar("T", bound=Callable[..., Awaitable[Any]])
EventSpec = str | type[Event]

# Which field of an event's ``data`` each filter reads.
FILTER_FIELDS: dict[str, str] = {
    "direction": "direction",
    "status": "status",
    "number": "to",
    "mailbox": "mailbox_id",
    "user": "user_id",
}
_PACKAGE = Path(__file__).resolve().parent


class BotDefinitionError(ConfigError):
    """A bot is declared wrongly; the message names the file and line and says how to fix it."""

    def __init__(self, problem: str, *, where: tuple[str, int] | None = None) -> None:
        self.problem = problem
        self.file, self.line = where or _definition_site()
        super().__init__(f"{self.file}:{self.line}: {problem}" if self.file else problem)


def _definition_site() -> tuple[str, int]:
    """The file and line of the bot author's code that is being run: the first frame
    outside agentkit (and outside code that dataclasses or importlib generate)."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<") and not _inside_agentkit(name):
            return _shown(name), frame.f_lineno
        frame = frame.f_back
    return "", 0


def _inside_agentkit(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


def _shown(filename: str) -> str:
    """A path as a person reads it: relative to the working folder when inside it."""
    path = Path(filename)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (OSError, ValueError):
        return str(path)


def _handler_site(handler: Any) -> tuple[str, int] | None:
    code = getattr(handler, "__code__", None)
    if code is None:
        return None
    return _shown(code.co_filename), code.co_firstlineno


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
class Approvals:
    """Which of a bot's actions wait for a person, and for how long.

    ``rules``: some of ``callback_to_other_number`` (a callback to a number that
    is not the caller's ID), ``flow_change``, ``escalation``, ``all_callbacks``.
    ``timeout``: seconds an approval waits (None: AGENTKIT_APPROVAL_TIMEOUT);
    when it runs out the action is rejected, always. Set on a bot, they replace
    the deployment's AGENTKIT_APPROVALS; ``Approvals()`` turns approvals off for it.
    """

    rules: tuple[str, ...] = ()
    timeout: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.rules, str):
            object.__setattr__(self, "rules", (self.rules,))
        unknown = [rule for rule in self.rules if rule not in APPROVAL_RULES]
        if unknown:
            raise BotDefinitionError(
                f"Approvals has unknown rules {unknown}: use some of {list(APPROVAL_RULES)}"
            )
        object.__setattr__(self, "rules", tuple(dict.fromkeys(self.rules)))
        if self.timeout is not None and not self.timeout > 0:
            raise BotDefinitionError("Approvals.timeout must be a positive number of seconds")


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
        """Whether the event passes (``Bot.on`` refuses a filter its event type lacks)."""
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
    daily_at: str | None = None
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

    Options left unset fall back to the deployment's (AGENTKIT_MODEL,
    AGENTKIT_BUSINESS_HOURS, ...). ``settings`` is the bot's own configuration,
    a pydantic model instance that handlers read as ``ctx.settings``.
    ``mode="shadow"`` (or AGENTKIT_SHADOW) runs it on every event with its
    actions recorded as "would do" and never executed, and its notes posted only
    to AGENTKIT_SHADOW_CHANNEL, marked as shadow; switching back needs nothing else.
    ``prompts`` is a folder searched before the project's prompts/;
    ``prompt_names`` maps a task to another template; ``templates`` names the
    templates the bot renders by name, so that ``agentkit check`` can find them
    missing before start-up.
    """

    def __init__(
        self,
        name: str,
        *,
        team: Team | None = None,
        business_hours: str | None = None,
        model: str | None = None,
        prompts: str | Path | None = None,
        prompt_names: dict[str, str] | None = None,
        templates: Sequence[str] = (),
        use_platform_ai: bool = True,
        dial_policy: DialPolicy | None = None,
        callbacks: CallbackPolicy | None = None,
        escalation: Escalation | None = None,
        approvals: Approvals | None = None,
        mode: Literal["live", "shadow"] = "live",
        settings: BaseModel | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise BotDefinitionError(
                f"bot name {name!r} must be lower-case letters, digits, '-' or '_', "
                "starting with a letter (at most 63 characters)"
            )
        if settings is not None and not isinstance(settings, BaseModel):
            raise BotDefinitionError(
                f"bot {name!r}: settings= takes an instance of a pydantic model "
                "(class MySettings(BaseModel): ...; Bot(..., settings=MySettings())), "
                f"not a {type(settings).__name__}"
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
        if approvals is not None and not isinstance(approvals, Approvals):
            raise BotDefinitionError(
                f"bot {name!r}: approvals= takes Approvals(rules=[...], timeout=...), not a "
                f"{type(approvals).__name__}"
            )
        self.approvals = approvals
        if mode not in ("live", "shadow"):
            raise BotDefinitionError(
                f"bot {name!r}: mode={mode!r}; use 'live', or 'shadow' (runs on every event, "
                "records what it would do, does nothing)"
            )
        self.mode = mode
        self.settings = settings
        self.listeners: list[Listener] = []
        self.callback_listeners: list[HandlerFn] = []
        self.model_tasks: dict[str, Callable[..., Awaitable[Any]]] = {}

    def __repr__(self) -> str:
        return f"Bot({self.name!r}, listeners={[x.name for x in self.listeners]})"

    def on(
        self,
        event_type: EventSpec,
        *,
        join: EventSpec | Sequence[EventSpec] = (),
        join_timeout: timedelta | float = timedelta(minutes=10),
        direction: Literal["inbound", "outbound"] | None = None,
        status: str | Iterable[str] | None = None,
        number: str | None = None,
        mailbox: str | None = None,
        user: str | None = None,
    ) -> Callable[[H], H]:
        """Run the decorated coroutine function for ``event_type`` events that pass the filters.

        ``event_type`` is an event class (``VoicemailReceived``) or its type
        string ("voicemail.received"). With ``join``, it runs once per call,
        when the event and every joined type have arrived (in any order), or
        ``join_timeout`` after the first of them with what has arrived;
        ``ctx.joined`` and ``ctx.missing`` tell.
        """
        primary = self._known(event_type, "event type")
        joins = join if isinstance(join, (str, type)) else tuple(join)
        joined = tuple(
            self._known(other, "join type")
            for other in ((joins,) if isinstance(joins, (str, type)) else joins)
        )
        if primary in joined or len(set(joined)) != len(joined):
            raise BotDefinitionError(
                f"bot {self.name!r}: join= repeats an event type ({primary}, {joined})"
            )
        timeout = (
            join_timeout if isinstance(join_timeout, timedelta)
            else timedelta(seconds=join_timeout)
        )
        if timeout <= timedelta(0):
            raise BotDefinitionError(f"bot {self.name!r}: join_timeout must be positive")
        given = {"direction": direction, "status": status, "number": number,
                 "mailbox": mailbox, "user": user}
        self._check_filter_fields(primary, [k for k, v in given.items() if v is not None])
        filters = self._filters(direction, status, number, mailbox, user)

        def register(handler: H) -> H:
            name = self._check_handler(handler, primary, EVENT_CLASSES[primary])
            self.listeners.append(
                Listener(primary, handler, name, joined, timeout, filters)
            )
            return handler

        return register

    def after_callback(self, handler: H) -> H:
        """Run the decorated coroutine function when one of this bot's callbacks ends.

        The handler takes a ``Context[CallbackEnded]``: ``ctx.event.data`` says
        how the callback ended (reached, unreached after its attempts,
        cancelled because the caller was reached meanwhile, refused, expired or
        failed) and ``ctx.event.origin`` is the event it was asked for on.
        """
        self._check_handler(handler, "callback outcomes", CallbackEnded)
        self.callback_listeners.append(handler)
        return handler

    def on_schedule(self, hours: str | None = None, *, at: str | None = None
                    ) -> Callable[[H], H]:
        """Run the decorated coroutine function when ``hours`` open and when they close.

        The handler takes a ``Context[ScheduleChanged]``. ``hours`` defaults to
        the bot's business hours, then the deployment's.
        ``ctx.event.data.state`` is "open" or "closed". It also runs once at
        start-up for the state the hours are in, so a restart never misses one.
        Several worker processes run it once between them. ``at="18:00"``
        instead: every day at that time in the business's time zone
        (AGENTKIT_TIME_ZONE), as a change to "closed" (and to "open" at midnight).
        """
        from agentkit.actions.hours import BusinessHours

        if at is not None and hours is not None:
            raise BotDefinitionError(f"bot {self.name!r}: on_schedule takes hours= or at=, "
                                     "not both")
        if at is not None and not _daily_time(at):
            raise BotDefinitionError(
                f"bot {self.name!r}: on_schedule at={at!r} must be a time of day from 00:01 to "
                "23:59, as HH:MM (18:00)")
        try:
            schedule = BusinessHours.parse(hours) if hours is not None else None
        except ConfigError as exc:
            raise BotDefinitionError(f"bot {self.name!r}: on_schedule: {exc}") from None

        def register(handler: H) -> H:
            name = self._check_handler(handler, "a schedule",
                                       INTERNAL_EVENT_CLASSES["agentkit.schedule"])
            self.listeners.append(
                Listener("agentkit.schedule", handler, name, schedule=schedule, scheduled=True,
                         daily_at=at)
            )
            return handler

        return register

    def on_request(self, name: str) -> Callable[[H], H]:
        """Run the decorated coroutine function when an operator asks for ``name``.

        The handler takes a ``Context[Requested]``. ``agentkit request BOT NAME
        [--arg key=value]``; the arguments are in ``ctx.event.data.args``.
        """
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_\-]{0,62}", name):
            raise BotDefinitionError(
                f"bot {self.name!r}: request name {name!r} must be lower-case letters, "
                "digits, '-' or '_'"
            )
        if any(x.request == name for x in self.listeners):
            raise BotDefinitionError(f"bot {self.name!r} already answers request {name!r}")

        def register(handler: H) -> H:
            label = self._check_handler(handler, f"request {name}",
                                        INTERNAL_EVENT_CLASSES["agentkit.request"])
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
                "declared with 'async def'",
                where=_handler_site(task),
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
            "settings": type(self.settings).__name__ if self.settings is not None else None,
        }

    # checks

    def _known(self, event_type: object, what: str) -> str:
        """The type string of ``event_type`` (a class or a string), or why it is not one."""
        names = ", ".join(EVENT_TYPES)
        if isinstance(event_type, type) and issubclass(event_type, Event):
            found = event_type_of(event_type)
            if found is not None and found in EVENT_TYPES:
                return found
            if event_type is CallbackEnded or found in INTERNAL_EVENT_CLASSES:
                raise BotDefinitionError(
                    f"bot {self.name!r}: {event_type.__name__} is agentkit's own event: "
                    f"use {_DECORATOR_OF.get(found or '', '@bot.after_callback')}, not @bot.on"
                )
            classes = ", ".join(cls.__name__ for cls in EVENT_CLASSES.values())
            raise BotDefinitionError(
                f"bot {self.name!r}: {what} {event_type.__name__} is not one of the webhook "
                f"event classes: use one of {classes}"
            )
        if not isinstance(event_type, str):
            raise BotDefinitionError(
                f"bot {self.name!r}: {what} must be an event class (VoicemailReceived) or "
                f"its type string ('voicemail.received'), not {event_type!r}"
            )
        if event_type in EVENT_TYPES:
            return event_type
        if event_type in _DECORATOR_OF:
            raise BotDefinitionError(
                f"bot {self.name!r}: {event_type!r} is agentkit's own event: use "
                f"{_DECORATOR_OF[event_type]}, not @bot.on"
            )
        hint = _closest(event_type)
        raise BotDefinitionError(
            f"bot {self.name!r}: unknown {what} {event_type!r}"
            + (f"; did you mean {hint}?" if hint else "")
            + f" The event types are {names}."
        )

    def _check_filter_fields(self, event_type: str, given: list[str]) -> None:
        data = EVENT_CLASSES[event_type].model_fields["data"].annotation
        fields = set(getattr(data, "model_fields", {}))
        usable = [k for k, attribute in FILTER_FIELDS.items() if attribute in fields]
        for name in given:
            if FILTER_FIELDS[name] not in fields:
                raise BotDefinitionError(
                    f"bot {self.name!r}: the filter {name}= can never apply to {event_type}: "
                    f"its events have no {FILTER_FIELDS[name]} field. "
                    + (f"Filters {event_type} takes: {', '.join(usable)}." if usable
                       else f"{event_type} takes no filters.")
                )

    def _check_handler(self, handler: Any, what: str, event_class: type[Event]) -> str:
        label = getattr(handler, "__name__", repr(handler))
        where = _handler_site(handler)
        if not inspect.iscoroutinefunction(handler):
            raise BotDefinitionError(
                f"bot {self.name!r}: handler {label!r} for {what} must be declared with "
                "'async def'",
                where=where,
            )
        expected = f"Context[{event_class.__name__}]"
        try:
            parameters = list(inspect.signature(handler).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if len(parameters) != 1 or parameters[0].kind not in positional:
            raise BotDefinitionError(
                f"bot {self.name!r}: handler {label!r} must take exactly one parameter, the "
                f"context: async def {label}(ctx: {expected}) -> None",
                where=where,
            )
        self._check_annotation(handler, label, parameters[0], event_class, what, where)
        taken = {x.name for x in self.listeners} | {
            getattr(h, "__name__", "") for h in self.callback_listeners
        }
        if label in taken:
            raise BotDefinitionError(
                f"bot {self.name!r} already has a handler named {label!r}; rename one",
                where=where,
            )
        return label

    def _check_annotation(
        self,
        handler: Any,
        label: str,
        parameter: inspect.Parameter,
        event_class: type[Event],
        what: str,
        where: tuple[str, int] | None,
    ) -> None:
        """The handler's ``Context[...]`` must admit the events it is given."""
        found = _annotation(handler, parameter)
        if found is None:
            return
        origin, arguments = found
        if origin != _CONTEXT:
            raise BotDefinitionError(
                f"bot {self.name!r}: handler {label!r} takes {origin}, but a handler "
                f"takes the context: annotate it ctx: Context[{event_class.__name__}]",
                where=where,
            )
        if arguments and not _admits(arguments[0], event_class):
            raise BotDefinitionError(
                f"bot {self.name!r}: handler {label!r} takes Context[{_name(arguments[0])}], but "
                f"it runs for {what}, whose events are {event_class.__name__}: annotate it "
                f"ctx: Context[{event_class.__name__}]",
                where=where,
            )
        wanted = arguments[1] if len(arguments) > 1 else None
        if isinstance(wanted, type) and not isinstance(self.settings, wanted):
            have = type(self.settings).__name__ if self.settings is not None else "None"
            raise BotDefinitionError(
                f"bot {self.name!r}: handler {label!r} expects settings of type "
                f"{wanted.__name__}, but the bot's settings= is {have}",
                where=where,
            )

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


_DECORATOR_OF = {
    "agentkit.schedule": "@bot.on_schedule",
    "agentkit.request": "@bot.on_request",
    "agentkit.callback_ended": "@bot.after_callback",
}


def _daily_time(text: str) -> bool:
    found = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", text) if isinstance(text, str) else None
    return found is not None and text != "00:00"


def _closest(word: str) -> str | None:
    """The event type a mistyped one most likely meant (also from a class name)."""
    by_class = {cls.__name__.lower(): name for name, cls in EVENT_CLASSES.items()}
    key = word.strip().lower()
    if key in by_class:
        return by_class[key]
    candidates = [*EVENT_TYPES, *by_class]
    found = difflib.get_close_matches(key.replace("_", "."), candidates, n=1, cutoff=0.6)
    return by_class.get(found[0], found[0]) if found else None


_CONTEXT = "agentkit.context.Context"


def _annotation(handler: Any, parameter: inspect.Parameter) -> tuple[str, tuple[Any, ...]] | None:
    """What the parameter is annotated with, as (qualified name, type arguments); None when
    it is not annotated or not resolvable yet (a name defined further down the module)."""
    if parameter.annotation is inspect.Parameter.empty:
        return None
    try:
        annotation = typing.get_type_hints(handler).get(parameter.name)
    except Exception:
        # A forward reference to a name not defined yet: read what the text says.
        text = parameter.annotation
        return _from_text(text, getattr(handler, "__globals__", {})) if isinstance(
            text, str) else None
    if annotation is None or annotation is Any:
        return None
    origin = get_origin(annotation) or annotation
    name = f"{getattr(origin, '__module__', '')}.{getattr(origin, '__qualname__', '')}"
    return (name if name == _CONTEXT else _name(annotation)), get_args(annotation)


def _from_text(text: str, namespace: dict[str, Any]) -> tuple[str, tuple[Any, ...]] | None:
    match = re.fullmatch(r"\s*(?:\w+\.)*Context\[\s*((?:\w+\.)*\w+)\s*(?:,.*)?\]\s*", text)
    if match is None:
        return None
    found = namespace.get(match.group(1).rsplit(".", 1)[-1])
    if isinstance(found, type) and issubclass(found, Event):
        return _CONTEXT, (found,)
    return None


def _admits(wanted: Any, event_class: type[Event]) -> bool:
    """Whether a ``Context[wanted]`` handler can take events of ``event_class``."""
    if wanted is Any or isinstance(wanted, TypeVar):
        return True
    if get_origin(wanted) in (Union, types.UnionType):
        return any(_admits(member, event_class) for member in get_args(wanted))
    return isinstance(wanted, type) and issubclass(event_class, wanted)


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def unknown_shadow_bots(names: Sequence[str], bots: Sequence[Bot]) -> str | None:
    """What is wrong with AGENTKIT_SHADOW for these bots, or None: a name no bot has would
    leave the bot that was meant acting for real."""
    unknown = sorted(set(names) - {bot.name for bot in bots})
    if not unknown or not bots:
        return None
    return (f"AGENTKIT_SHADOW names {', '.join(unknown)}, which no loaded bot is called; "
            f"the bots are {', '.join(sorted(bot.name for bot in bots))}")
