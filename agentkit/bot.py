"""How a bot is declared: a module-level ``Bot`` with decorated handlers.

::

    bot = Bot("voicemail-callback")

    @bot.on("voicemail.received")
    async def call_back(ctx: Context[VoicemailReceived]) -> None:
        ...

A mistake in a declaration raises ``BotDefinitionError`` when the module is
loaded, with a message that says how to fix it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from agentkit.errors import ConfigError
from agentkit.odygy.models import EVENT_TYPES

if TYPE_CHECKING:
    from agentkit.context import Context
    from agentkit.events import Event

_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")

HandlerFn = Callable[["Context[Any]"], Awaitable[None]]
H = TypeVar("H", bound=HandlerFn)


class BotDefinitionError(ConfigError):
    """A bot is declared wrongly; the message says how to fix it."""


@dataclass(frozen=True)
class Listener:
    """One handler of a bot and the event type it reacts to."""

    event_type: str
    handler: HandlerFn
    name: str


class Bot:
    """A bot: a name and the handlers it runs on phone.systems events."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise BotDefinitionError(
                f"bot name {name!r} must be lower-case letters, digits, '-' or '_', "
                "starting with a letter (at most 63 characters)"
            )
        self.name = name
        self.listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"Bot({self.name!r}, listeners={[x.name for x in self.listeners]})"

    def on(self, event_type: str) -> Callable[[H], H]:
        """Register the decorated coroutine function for ``event_type``."""
        if event_type not in EVENT_TYPES:
            raise BotDefinitionError(
                f"bot {self.name!r}: unknown event type {event_type!r}; "
                f"use one of {', '.join(EVENT_TYPES)}"
            )

        def register(handler: H) -> H:
            if not inspect.iscoroutinefunction(handler):
                raise BotDefinitionError(
                    f"bot {self.name!r}: handler {getattr(handler, '__name__', handler)!r} for "
                    f"{event_type} must be declared with 'async def'"
                )
            name = handler.__name__
            if any(existing.name == name for existing in self.listeners):
                raise BotDefinitionError(
                    f"bot {self.name!r} already has a handler named {name!r}; rename one"
                )
            self.listeners.append(Listener(event_type, handler, name))
            return cast(H, handler)

        return register

    def listeners_for(self, event: Event) -> list[Listener]:
        """The handlers to run for ``event``, in declaration order."""
        return [x for x in self.listeners if x.event_type == event.type]

    @property
    def event_types(self) -> list[str]:
        return list(dict.fromkeys(x.event_type for x in self.listeners))
