"""Replay reports kept as JSON files in one folder (``AGENTKIT_REPLAY_DIR``), for the console.

Each report is one file, named ``<started, UTC>-<source>-<first candidate>.json``
so that names sort oldest to newest. A file is written under a temporary
name and then renamed, so that a reader never sees half a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from agentkit.errors import AgentkitError
from agentkit.replay.report import ReplayReport

LISTED_MAX = 50
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.json")


class ReportError(AgentkitError):
    """A saved replay report's name is not one, or no such report can be read."""


@dataclass(frozen=True)
class ReportFile:
    """One saved report, as the console's list shows it."""

    name: str
    started_at: datetime
    source: str
    candidate: tuple[str, ...]
    against: tuple[str, ...]
    calls: int
    calls_differing: int
    differences: int
    fail_on: tuple[str, ...]
    failing: tuple[str, ...]


def report_name(report: ReplayReport) -> str:
    """``20261202T100000Z-replay-voicemail-v2.json``: the file name a report is saved as."""
    started = _utc(report.started_at).strftime("%Y%m%dT%H%M%SZ")
    candidate = _UNSAFE.sub("-", report.candidate[0]).strip(".-") if report.candidate else ""
    return f"{started}-{report.source}-{candidate or 'none'}.json"


def save_report(report: ReplayReport, folder: str | Path) -> Path:
    """Write ``report`` as JSON into ``folder`` (made if missing); the file written.

    A second report of the same second, source and candidate is saved beside
    the first (``...-2.json``), never over it.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    stem = report_name(report).removesuffix(".json")
    path, number = root / f"{stem}.json", 1
    while path.exists():
        number += 1
        path = root / f"{stem}-{number}.json"
    partial = root / f".{path.name}.partial"
    partial.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    partial.replace(path)
    return path


def list_reports(folder: str | Path, *, limit: int = LISTED_MAX) -> list[ReportFile]:
    """The newest ``limit`` readable reports in ``folder``, newest first (none if no folder)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found: list[ReportFile] = []
    # Names start with the report's start time, so the newest are read first.
    paths = [path for path in root.glob("*.json") if _plain_name(path.name)]
    for path in sorted(paths, key=lambda p: p.name, reverse=True):
        if len(found) >= limit:
            break
        try:
            report = _read(path)
        except ReportError:
            continue
        found.append(ReportFile(
            name=path.name, started_at=_utc(report.started_at), source=report.source,
            candidate=tuple(report.candidate), against=tuple(report.against),
            calls=report.calls, calls_differing=report.calls_differing,
            differences=report.differences, fail_on=tuple(report.fail_on),
            failing=tuple(report.failing)))
    found.sort(key=lambda f: (f.started_at, f.name), reverse=True)
    return found


def load_report(folder: str | Path, name: str) -> ReplayReport:
    """The report saved as ``name`` in ``folder``.

    Raises ReportError when ``name`` is not a plain ``.json`` file name (letters,
    digits, ``_.-``; no folder, no ``..``), or no readable report has it.
    """
    if not _plain_name(name):
        raise ReportError(f"{name!r} is not a replay report's name: a file name of letters, "
                          "digits, _ . and -, ending in .json, without any folder")
    root = Path(folder)
    path = root / name
    if path.resolve().parent != root.resolve():
        raise ReportError(f"{name!r} is not a replay report's name")
    return _read(path)


def _read(path: Path) -> ReplayReport:
    try:
        return ReplayReport.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ReportError(f"there is no replay report {path.name!r}") from None
    except OSError as exc:
        raise ReportError(f"the replay report {path.name!r} cannot be read: "
                          f"{exc.strerror or exc}") from None
    except ValidationError as exc:
        raise ReportError(f"{path.name!r} is not a replay report "
                          f"({exc.error_count()} problems)") from None


def _plain_name(name: str) -> bool:
    """A file name ``save_report`` could have made: no folder, no ``..``, nothing to quote."""
    return _PLAIN.fullmatch(name) is not None and ".." not in name


def _utc(at: datetime) -> datetime:
    """``at`` in UTC; a time without a zone is taken to be UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
