"""Reference text generated from the event models, so that docs/bots.md cannot drift.

``python -m agentkit.reference docs/bots.md`` rewrites the part of the file
between ``<!-- events:start -->`` and ``<!-- events:end -->``; a test checks
that it is current.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentkit.bot import FILTER_FIELDS
from agentkit.events import EVENT_CLASSES, CallbackEnded, Requested, ScheduleChanged
from agentkit.odygy.models import EVENT_TYPES

START, END = "<!-- events:start -->", "<!-- events:end -->"


def event_reference() -> str:
    """A markdown table per event type: the class, the filters it takes, its ``data`` fields."""
    parts: list[str] = []
    for event_type in EVENT_TYPES:
        cls = EVENT_CLASSES[event_type]
        data = _data_model(cls)
        filters = [f"`{name}=`" for name, field in FILTER_FIELDS.items()
                   if field in data.model_fields]
        parts.append(
            f"### `{event_type}`: `{cls.__name__}`\n\n"
            f"Filters: {', '.join(filters) or 'none'}.\n\n" + _fields(data)
        )
    for cls, how in ((ScheduleChanged, "`@bot.on_schedule`"), (Requested, "`@bot.on_request`"),
                     (CallbackEnded, "`@bot.after_callback`")):
        extra = ("\n`ctx.event.origin` is the event the callback was asked for on.\n"
                 if cls is CallbackEnded else "")
        parts.append(f"### agentkit's own: `{cls.__name__}`, for {how}\n\n"
                     + _fields(_data_model(cls)) + extra)
    return "\n".join(parts)


def _data_model(cls: type[Any]) -> type[BaseModel]:
    annotation = cls.model_fields["data"].annotation
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation


def _fields(model: type[BaseModel]) -> str:
    rows = ["| field | type |", "|---|---|"]
    for name, field in model.model_fields.items():
        shown = f"`{name}` (JSON `{field.alias}`)" if field.alias and field.alias != name \
            else f"`{name}`"
        rows.append(f"| {shown} | {_type(field.annotation)} |")
    return "\n".join(rows) + "\n"


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in arguments)
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in arguments)
    if origin is typing.Annotated:
        return _type(arguments[0])
    if origin is not None:
        inner = ", ".join(_type(a) for a in arguments if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "null"
    return f"`{getattr(annotation, '__name__', str(annotation))}`"


def rewrite(path: Path) -> bool:
    """Put the current reference into ``path``; True if the file changed."""
    text = path.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    updated = f"{head}{START}\n{event_reference()}{END}{tail}"
    if updated == text:
        return False
    path.write_text(updated)
    return True


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {'rewritten' if rewrite(Path(name)) else 'up to date'}")
