"""When a caller asked to be called back: a window read from the model's answer, checked.

The model resolves what the caller said ("tomorrow morning") against the
voicemail's time and the business's time zone, and gives the window's ends as
ISO 8601 date-times. Nothing it says is trusted: each end that does not parse is
dropped alone, and a window that lies in the past, more than ``WINDOW_HORIZON``
ahead, or ends before it starts is ignored, with the reason. A callback with a
window is placed at its start, clamped into business hours, and its retries
stay inside it where they can (``agentkit.actions.callbacks``).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

WINDOW_HORIZON = timedelta(days=7)


@dataclass(frozen=True)
class CallbackWindow:
    """When to call back: not before ``start``, and not after ``end`` where it can (None:
    open-ended); ``asked`` is the caller's own words, for the note."""

    start: datetime
    end: datetime | None = None
    asked: str = ""

    def __post_init__(self) -> None:
        for moment in (self.start, self.end):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("a CallbackWindow needs aware datetimes (with a time zone)")
        if self.end is not None and self.end <= self.start:
            raise ValueError("a CallbackWindow must start before it ends")

    def detail(self) -> dict[str, str | None]:
        """The window as the action log keeps it."""
        return {"not_before": self.start.astimezone(UTC).isoformat(),
                "not_after": self.end.astimezone(UTC).isoformat() if self.end else None,
                "asked": self.asked}

    @classmethod
    def from_detail(cls, detail: dict[str, object]) -> CallbackWindow | None:
        """The window an action-log record keeps, or None when it has none."""
        start = detail.get("not_before")
        if not isinstance(start, str):
            return None
        end = detail.get("not_after")
        return cls(datetime.fromisoformat(start),
                   datetime.fromisoformat(end) if isinstance(end, str) else None,
                   str(detail.get("asked") or ""))


@dataclass(frozen=True)
class WindowReading:
    """A window read from a model's answer: the window, or None and why it was ignored."""

    window: CallbackWindow | None
    problem: str | None = None


def read_window(
    after: object, before: object, *, now: datetime, zone: str | None, asked: str = "",
    horizon: timedelta = WINDOW_HORIZON,
) -> WindowReading:
    """Check the window ``after``..``before`` (ISO 8601 strings, either may be None).

    A date-time without an offset is read in ``zone`` (None: UTC). A start in the
    past becomes ``now`` (the caller asked for "before 5pm" at 2pm).
    """
    tz: tzinfo = zoneinfo.ZoneInfo(zone) if zone else UTC
    problems: list[str] = []
    start = _moment(after, tz, "start", problems)
    end = _moment(before, tz, "end", problems)
    if start is None and end is None:
        return WindowReading(None, "; ".join(problems) or None)
    if start is not None and end is not None and end <= start:
        return WindowReading(None, "ignored: it ends before it starts")
    latest = end or start
    assert latest is not None
    if latest <= now:
        return WindowReading(None, "ignored: it is in the past")
    if max(m for m in (start, end) if m is not None) > now + horizon:
        return WindowReading(None, f"ignored: more than {horizon.days} days ahead")
    begin = max(start, now) if start is not None else now
    if end is not None and end <= begin:
        return WindowReading(None, "ignored: it is in the past")
    window = CallbackWindow(begin, end, asked)
    return WindowReading(window, "; ".join(problems) or None)


def _moment(value: object, tz: tzinfo, which: str, problems: list[str]) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(f"the window's {which} {value!r} is not a date-time; dropped")
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"the window's {which} {value[:40]!r} is not a date-time; dropped")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)
