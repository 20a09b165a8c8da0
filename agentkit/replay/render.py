"""A replay report for people: a terminal table (``render_text``) or an HTML page (``render_html``).

Both show the same things, built once by ``_view``: the header, the counts
of differences by word, both sides' totals, each differing call's
differences and handler errors, how many calls were not kept, and the
``--fail-on`` verdict. The HTML is Jinja2 with autoescape: caller words and
model answers in a report are untrusted. JSON needs no renderer:
``report.model_dump_json(indent=2)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from agentkit.replay.compare import ActionDifference, CallDifferences, FieldDifference
from agentkit.replay.report import MAX_SHOWN, ReplayReport, SideTotals

WIDTH = 100
# A value longer than this is cut in the terminal (the JSON and HTML keep it whole).
_VALUE_WIDTH = 40
_TEMPLATES = Path(__file__).parent / "templates"
_KIND_NAMES = {"notify": "note", "update_flow": "flow change",
               "attach_number": "number attachment"}
_ENV = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class _Item:
    """One value of a change: its key, and what it is on each side."""

    key: str
    live: Any
    candidate: Any


@dataclass(frozen=True)
class _Change:
    """One difference of a call: an action added, dropped or changed, or an answer's field."""

    change: str
    what: str
    name: str
    event_id: str
    items: tuple[_Item, ...]
    answer: bool = False

    @property
    def title(self) -> str:
        """``new callback "requested-number"``, ``changed field extract.urgency``."""
        if self.answer:
            return f"{self.change} field {self.name}"
        named = f" {json.dumps(self.name, ensure_ascii=False)}" if self.name else ""
        return f"{self.change} {self.what}{named}"


@dataclass(frozen=True)
class _Call:
    call_id: str
    started_at: str
    from_number: str
    changes: tuple[_Change, ...]
    errors: tuple[str, ...]


@dataclass(frozen=True)
class _View:
    """What both renderings show, in the order they show it."""

    title: str
    candidate: str
    facts: tuple[tuple[str, str], ...]
    counts: tuple[tuple[str, int], ...]
    totals: tuple[tuple[str, str, str], ...]
    calls: tuple[_Call, ...]
    not_shown: str | None
    verdict: str | None
    fails: bool


def render_text(report: ReplayReport) -> str:
    """The report for a terminal: aligned plain columns, at most ``WIDTH`` characters a line."""
    view = _view(report)
    lines = [view.title, *_columns([(f"  {label}", value) for label, value in view.facts], "ll")]
    lines.append("")
    if view.counts:
        lines += _columns([("Differences", "count"),
                           *((f"  {word}", f"{n:,}") for word, n in view.counts)], "lr")
    else:
        lines.append("Differences: no differences")
    lines.append("")
    lines += _columns([("Totals", "live", "candidate"),
                       *((f"  {label}", live, candidate)
                         for label, live, candidate in view.totals)], "lrr")
    if view.calls:
        lines += ["", f"Calls that differ ({len(view.calls):,} shown)"]
    for call in view.calls:
        lines.append("  ".join(part for part in (
            call.call_id, call.started_at, f"from {call.from_number}" if call.from_number
            else "") if part))
        for change in call.changes:
            lines += [f"  {line}" for line in _change_lines(change)]
        lines += [f"  handler error: {_term(error, _VALUE_WIDTH * 2)}" for error in call.errors]
    if view.not_shown:
        lines += ["", view.not_shown]
    if view.verdict:
        lines += ["", view.verdict]
    return "\n".join(_fit(line) for line in lines) + "\n"


def render_html(report: ReplayReport, *, calls_url: str | None = None) -> str:
    """The report as a complete HTML page: inline CSS, nothing fetched, every value escaped."""
    return _ENV.get_template("report.html").render(**_context(report, calls_url))


def render_html_body(report: ReplayReport, *, calls_url: str | None = None) -> str:
    """The report's HTML without page or styles, to embed (style it with ``report_css()``).

    ``calls_url``: a call id is linked to this followed by the id (the console's call page).
    """
    return _ENV.get_template("_body.html").render(**_context(report, calls_url))


def report_css() -> str:
    """The stylesheet of the report's HTML, for a page that embeds ``render_html_body``."""
    return (_TEMPLATES / "report.css").read_text(encoding="utf-8")


def _context(report: ReplayReport, calls_url: str | None) -> dict[str, Any]:
    return {"view": _view(report), "calls_url": calls_url,
            "shown": lambda value, answer: _visible(_shown(value, answer), keep="\n\t")}


def _view(report: ReplayReport) -> _View:
    replayed = "replayed" if report.source == "replay" else "compared"
    candidate = ", ".join(report.candidate) or "none"
    facts = (
        ("source", report.source),
        ("candidate", candidate),
        ("compared with", ", ".join(report.against) or "none"),
        ("model", report.model or "not set"),
        ("period", _period(report.since, report.until)),
        ("run", _time(report.started_at) + (f" to {_time(report.finished_at)}"
                                            if report.finished_at else ", not finished")),
        (f"calls {replayed}", f"{report.calls:,}"),
        ("calls differing", f"{report.calls_differing:,}"),
        ("handler errors", f"{report.errors:,}"),
    )
    counts = tuple(sorted(report.counts.items(), key=lambda c: (-c[1], c[0])))
    calls = tuple(_Call(call_id=c.call_id, started_at=_time(c.started_at),
                        from_number=c.from_number or "", changes=_changes(c.differences),
                        errors=tuple(c.errors))
                  for c in report.differing)
    not_shown = None
    if report.not_shown:
        more = "call differs" if report.not_shown == 1 else "calls differ"
        not_shown = (f"{report.not_shown:,} more {more}, not shown: a report keeps "
                     f"{MAX_SHOWN} in detail; the counts include every call")
    verdict = None
    if report.failing:
        verdict = "fails on: " + ", ".join(f"{word} ({report.counts.get(word, 0):,})"
                                           for word in report.failing)
    elif report.fail_on:
        verdict = "passes --fail-on " + ",".join(report.fail_on)
    title = "Replay report" if report.source == "replay" else "Shadow comparison"
    return _View(title=title, candidate=candidate, facts=facts, counts=counts,
                 totals=_totals(report.live, report.replayed), calls=calls,
                 not_shown=not_shown, verdict=verdict, fails=bool(report.failing))


def _totals(live: SideTotals, candidate: SideTotals) -> tuple[tuple[str, str, str], ...]:
    rows = [(f"{_KIND_NAMES.get(kind, kind)} actions", f"{live.actions.get(kind, 0):,}",
             f"{candidate.actions.get(kind, 0):,}")
            for kind in sorted(live.actions.keys() | candidate.actions.keys())]
    for label, before, after in (
            ("model answers", live.model_answers, candidate.model_answers),
            ("  from cache", live.cached_answers, candidate.cached_answers),
            ("tokens", live.tokens, candidate.tokens),
            ("  prompt", live.prompt_tokens, candidate.prompt_tokens),
            ("  completion", live.completion_tokens, candidate.completion_tokens)):
        rows.append((label, f"{before:,}", f"{after:,}"))
    rows.append(("cost USD", f"{live.cost_usd:.4f}", f"{candidate.cost_usd:.4f}"))
    return tuple(rows)


def _changes(found: CallDifferences) -> tuple[_Change, ...]:
    return (*(_action_change(d) for d in found.actions),
            *(_field_change(d) for d in found.fields))


def _action_change(d: ActionDifference) -> _Change:
    live, candidate = d.live or {}, d.candidate or {}
    if d.change == "changed":
        keys = d.fields
    else:
        keys = list(candidate if d.change == "new" else live)
    items = tuple(_Item(key, live.get(key), candidate.get(key)) for key in keys)
    return _Change(change=d.change, what=_KIND_NAMES.get(d.kind, d.kind), name=d.name,
                   event_id=d.event_id, items=items)


def _field_change(d: FieldDifference) -> _Change:
    return _Change(change="changed", what="field", name=f"{d.task}.{d.field}",
                   event_id=d.event_id, items=(_Item("", d.live, d.candidate),), answer=True)


def _change_lines(change: _Change) -> list[str]:
    """``new callback: to +44..., urgency high``; a changed action, one line per field."""
    if change.change == "changed":
        return [f"{change.title}: " + " ".join(part for part in (
                    item.key, _term(_shown(item.live, change.answer, quote=True)), "->",
                    _term(_shown(item.candidate, change.answer, quote=True))) if part)
                for item in change.items]
    side = "candidate" if change.change == "new" else "live"
    parts = [f"{item.key} {_term(_shown(getattr(item, side), change.answer, quote=True))}"
             for item in change.items]
    parts = [f"{part}," for part in parts[:-1]] + parts[-1:]
    lines = [f"{change.title}:" if parts else change.title]
    for part in parts:
        # Indented under the change, two spaces in already: what does not fit goes below.
        if len(lines[-1]) + 1 + len(part) > WIDTH - 2 and lines[-1].strip():
            lines.append(" " * 3)
        lines[-1] += f" {part}"
    return lines


def _shown(value: Any, answer: bool = False, *, quote: bool = False) -> str:
    """A value as shown: an answer's field as JSON; an action's string as it is, else JSON.

    ``quote``: an action's string with spaces or commas is quoted, to tell it from the next.
    """
    if answer:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if value is None:
        return "none"
    if isinstance(value, str) and not (quote and _needs_quotes(value)):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _needs_quotes(text: str) -> bool:
    return not text or any(c.isspace() or c in ',"' for c in text)


def _term(text: str, width: int = _VALUE_WIDTH) -> str:
    """``text`` safe for a terminal, cut to ``width``: a caller's words could carry escape
    sequences that would drive the terminal, so control characters are shown as codes."""
    safe = _visible(text)
    return safe if len(safe) <= width else safe[:width - 1] + "…"


def _visible(text: str, keep: str = "") -> str:
    """``text`` with each unprintable character but those in ``keep`` shown as its code."""
    return "".join(c if c.isprintable() or c in keep else f"\\x{ord(c):02x}" if ord(c) < 256
                   else f"\\u{ord(c):04x}" for c in text)


def _fit(line: str) -> str:
    line = _visible(line.rstrip())
    return line if len(line) <= WIDTH else line[:WIDTH - 1] + "…"


def _columns(rows: list[tuple[str, ...]], aligns: str) -> list[str]:
    """Rows as aligned columns two spaces apart: ``l`` left, ``r`` right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(aligns))]
    return ["  ".join(cell.rjust(w) if align == "r" else cell.ljust(w)
                      for cell, w, align in zip(row, widths, aligns, strict=True)).rstrip()
            for row in rows]


def _period(since: datetime | None, until: datetime | None) -> str:
    if since and until:
        return f"{_time(since)} to {_time(until)}"
    if since:
        return f"since {_time(since)}"
    if until:
        return f"until {_time(until)}"
    return "every stored call"


def _time(at: datetime | None) -> str:
    if at is None:
        return ""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")
