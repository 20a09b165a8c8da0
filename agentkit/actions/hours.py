"""Business hours: when a bot may place a call, read from a short spec.

The grammar (case-insensitive day names, any spacing around ``,`` and ``-``)::

    spec   := "always" | rule+ ZONE
    rule   := days times
    days   := day ("," day)*          Mon,Wed,Fri
    day    := DAY | DAY "-" DAY       Mon-Fri; a range may wrap: Sun-Thu, Fri-Mon
    times  := range ("," range)*      09:00-12:30,13:30-17:30
    range  := HH:MM "-" HH:MM         start inclusive, end exclusive; end may be 24:00
    DAY    := Mon Tue Wed Thu Fri Sat Sun (or the full English name)
    ZONE   := an IANA time zone name known to zoneinfo: Europe/Bucharest, UTC

Examples: ``always``; ``Mon-Fri 09:00-17:30 Europe/Bucharest``;
``Mon-Fri 09:00-12:30,13:30-17:30 Sat 10:00-14:00 Europe/London``;
``Mon,Wed,Fri 08:00-16:00 UTC``. A range never crosses midnight: write
``Fri 22:00-24:00 Sat 00:00-06:00`` instead of ``22:00-06:00``. Days named in
several rules get the hours of each.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from agentkit.errors import ConfigError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EXAMPLE = "Mon-Fri 09:00-17:30 Europe/Bucharest"
ALWAYS = "always"

_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name.lower(): i for i, name in enumerate(DAYS)} | {
    name: i for i, name in enumerate(_FULL_DAYS)
}
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_DAY_SECONDS = 24 * 3600
# Far enough to cross any week, even one in which the zone skips a day.
_HORIZON_DAYS = 15


def _error(spec: str, problem: str) -> ConfigError:
    return ConfigError(
        f"business hours {spec!r}: {problem}. Write days, hours and a time zone, "
        f"e.g. {EXAMPLE!r}, or {ALWAYS!r}"
    )


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class _Rule:
    """Days as written (first, last) and their time ranges in minutes since midnight."""

    days: tuple[tuple[int, int], ...]
    ranges: tuple[tuple[int, int], ...]

    def weekdays(self) -> set[int]:
        found: set[int] = set()
        for first, last in self.days:
            span = (last - first) % 7
            found.update((first + i) % 7 for i in range(span + 1))
        return found

    def __str__(self) -> str:
        days = ",".join(
            DAYS[first] if first == last else f"{DAYS[first]}-{DAYS[last]}"
            for first, last in self.days
        )
        times = ",".join(f"{_clock(start)}-{_clock(end)}" for start, end in self.ranges)
        return f"{days} {times}"


def _parse_days(token: str, spec: str) -> tuple[tuple[int, int], ...]:
    items: list[tuple[int, int]] = []
    for item in token.split(","):
        names = item.split("-")
        if len(names) > 2 or not all(n.lower() in _DAY_INDEX for n in names):
            raise _error(spec, f"{item!r} is not a day or a range of days like Mon-Fri "
                               f"(days are {', '.join(DAYS)})")
        first = _DAY_INDEX[names[0].lower()]
        items.append((first, _DAY_INDEX[names[-1].lower()]))
    return tuple(items)


def _parse_times(token: str, spec: str) -> tuple[tuple[int, int], ...]:
    ranges: list[tuple[int, int]] = []
    for item in token.split(","):
        match = _RANGE.match(item)
        if match is None:
            hint = ("; join days with commas, e.g. 'Mon,Tue'" if item.lower() in _DAY_INDEX
                    else "")
            raise _error(spec, f"{item!r} is not a time range like 09:00-17:30{hint}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
            raise _error(spec, f"{item!r} has a time that does not exist "
                               "(00:00 to 23:59, and 24:00 as an end)")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start >= end:
            raise _error(spec, f"{item!r} ends before it starts; a range cannot cross "
                               "midnight, so split it: 'Fri 22:00-24:00 Sat 00:00-06:00'")
        ranges.append((start, end))
    return tuple(ranges)


def _parse_zone(name: str, spec: str) -> zoneinfo.ZoneInfo:
    if _RANGE.match(name) or name.split(",")[0].split("-")[0].lower() in _DAY_INDEX:
        raise _error(spec, "it does not end with a time zone such as Europe/Bucharest or UTC")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _error(spec, f"{name!r} is not a time zone zoneinfo knows{hint}") from None


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{moment!r} has no time zone: pass an aware datetime, e.g. datetime.now(UTC)"
        )


@dataclass(frozen=True)
class BusinessHours:
    """Weekly opening hours in one time zone; no rules and no zone means always open.

    Build one with ``BusinessHours.parse(spec)``; ``str()`` gives the spec back.
    """

    rules: tuple[_Rule, ...] = ()
    zone: str | None = None
    _tz: zoneinfo.ZoneInfo | None = field(init=False, repr=False, compare=False, default=None)
    _week: tuple[tuple[tuple[int, int], ...], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if self.zone is None:
            return
        week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for rule in self.rules:
            for day in rule.weekdays():
                week[day].extend((start * 60, end * 60) for start, end in rule.ranges)
        object.__setattr__(self, "_tz", zoneinfo.ZoneInfo(self.zone))
        object.__setattr__(self, "_week", tuple(_merge(day) for day in week))

    @classmethod
    def parse(cls, spec: str) -> BusinessHours:
        """Read a spec (grammar in the module docstring); raise ConfigError if it is wrong."""
        text = " ".join(spec.split())
        if not text:
            raise _error(spec, "it is empty")
        if text.lower() == ALWAYS:
            return cls()
        tokens = re.sub(r"\s*([,-])\s*", r"\1", text).split(" ")
        *body, zone_name = tokens
        zone = _parse_zone(zone_name, spec)
        if not body:
            raise _error(spec, "it names a time zone but no days and hours")
        rules: list[_Rule] = []
        for i in range(0, len(body), 2):
            days = _parse_days(body[i], spec)
            if i + 1 == len(body):
                raise _error(spec, f"the days {body[i]!r} have no hours after them")
            rules.append(_Rule(days, _parse_times(body[i + 1], spec)))
        return cls(tuple(rules), zone.key)

    @property
    def always(self) -> bool:
        """Whether these hours never close."""
        return self.zone is None

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` (an aware datetime) falls within the hours."""
        _require_aware(moment)
        if self._tz is None:
            return True
        local = moment.astimezone(self._tz)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return any(start <= seconds < end for start, end in self._week[local.weekday()])

    def next_opening(self, moment: datetime) -> datetime:
        """``moment`` if open, else the first instant after it that is open; aware, in UTC."""
        _require_aware(moment)
        now = moment.astimezone(UTC)
        if self._tz is None or self.is_open(now):
            return now
        # Hours open either where the wall clock passes a range's start (two
        # instants when the clock falls back) or where it jumps into a range.
        horizon = now + timedelta(days=_HORIZON_DAYS)
        candidates = [*self._starts(now.astimezone(self._tz).date()),
                      *_transitions(self._tz, now, horizon)]
        opens = [c for c in candidates if now < c and self.is_open(c)]
        if not opens:
            raise RuntimeError(f"no opening within {_HORIZON_DAYS} days of {now} for {self}")
        return min(opens)

    def next_change(self, moment: datetime) -> datetime | None:
        """The first instant after ``moment`` at which the hours open or close; None if never."""
        _require_aware(moment)
        if self._tz is None:
            return None
        now = moment.astimezone(UTC)
        state = self.is_open(now)
        changes = [c for c in self._boundaries(now) if c > now and self.is_open(c) != state]
        return min(changes) if changes else None

    def last_change(self, moment: datetime) -> datetime | None:
        """The last instant at or before ``moment`` at which the hours opened or closed."""
        _require_aware(moment)
        if self._tz is None:
            return None
        now = moment.astimezone(UTC)
        second = timedelta(seconds=1)
        changes = [
            c for c in self._boundaries(now)
            if c <= now and self.is_open(c) != self.is_open(c - second)
        ]
        return max(changes) if changes else None

    def _boundaries(self, around: datetime) -> list[datetime]:
        """Every instant within a week or so of ``around`` where the hours may change."""
        assert self._tz is not None
        first_day = around.astimezone(self._tz).date() - timedelta(days=_HORIZON_DAYS)
        found = self._starts(first_day, days=2 * _HORIZON_DAYS + 1, ends=True)
        span = timedelta(days=_HORIZON_DAYS)
        return found + _transitions(self._tz, around - span, around + span)

    def _starts(self, first_day: date, *, days: int = _HORIZON_DAYS, ends: bool = False
                ) -> list[datetime]:
        assert self._tz is not None
        found: list[datetime] = []
        for offset in range(-1, days + 1):
            day = first_day + timedelta(days=offset)
            midnight = datetime.combine(day, time())
            for start, end in self._week[day.weekday()]:
                for seconds in (start, end) if ends else (start,):
                    wall = midnight + timedelta(seconds=seconds)
                    for fold in (0, 1):
                        found.append(wall.replace(tzinfo=self._tz, fold=fold).astimezone(UTC))
        return found

    def __str__(self) -> str:
        if self.zone is None:
            return ALWAYS
        return " ".join([*(str(rule) for rule in self.rules), self.zone])


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _transitions(tz: zoneinfo.ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The instants between ``start`` and ``end`` at which ``tz`` changes its UTC offset."""
    found: list[datetime] = []
    step, second = timedelta(hours=1), timedelta(seconds=1)
    here = start.replace(microsecond=0)
    offset = here.astimezone(tz).utcoffset()
    while here < end:
        there = here + step
        there_offset = there.astimezone(tz).utcoffset()
        if there_offset != offset:
            low, high = here, there
            while high - low > second:
                middle = (low + (high - low) / 2).replace(microsecond=0)
                if middle.astimezone(tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high)
        here, offset = there, there_offset
    return found
