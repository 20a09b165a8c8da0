"""``agentkit replay``: run candidate bots over stored calls, or compare a shadow bot, and report.

The report goes to stdout as a table; progress and the bots' warnings go to
stderr. ``--report`` also writes it as JSON or HTML, and every report is
kept in AGENTKIT_REPLAY_DIR for the console. Exit status: 0, or 1 when a
``--fail-on`` difference was found, or 2 when the replay could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from agentkit.errors import AgentkitError
from agentkit.llm import LlmClient, LlmConfig
from agentkit.replay.compare import fail_on_words
from agentkit.replay.engine import Replay, ReplayScope, shadow_report
from agentkit.replay.recording import recorded_client
from agentkit.replay.render import render_html, render_text
from agentkit.replay.report import ReplayReport
from agentkit.replay.reports import save_report
from agentkit.settings import Settings
from agentkit.store import Store, store_for_url

_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
PROGRESS_EVERY = 1000
# Keyless, reads the store did not keep fail (401) and are reported; the kept ones work.
NO_KEY = "replay-without-an-api-key"


class ReplayCommandError(AgentkitError):
    """``agentkit replay`` was asked for something it cannot do; the message says what."""


def add_arguments(replay: argparse.ArgumentParser, prompts_help: str) -> None:
    """The options of ``agentkit replay``."""
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--bots", default=None, metavar="CANDIDATE",
                       help="the candidate bots: a folder of bot modules, a file or a dotted "
                            "module")
    which.add_argument("--shadow", default=None, metavar="BOT",
                       help="compare what a shadow bot recorded with what the live bots did "
                            "(nothing runs again)")
    replay.add_argument("--against", default=None, metavar="BOTS",
                        help="the live bots to compare with, comma-separated (default: the "
                             "candidates' namesakes)")
    replay.add_argument("--since", default=None, metavar="WHEN",
                        help="calls started since: 30m, 12h, 7d, 2w ago, or a date or "
                             "ISO time (default: every call)")
    replay.add_argument("--until", default=None, metavar="WHEN",
                        help="calls started before this, in the same forms (default: now)")
    replay.add_argument("--call", action="append", default=[], metavar="ID",
                        help="only this call (repeatable)")
    replay.add_argument("--limit", type=int, default=None, metavar="N",
                        help="at most N calls, oldest first")
    replay.add_argument("--database-url", default=None, metavar="URL",
                        help="the store to read (default: AGENTKIT_DATABASE_URL)")
    replay.add_argument("--report", default=None, metavar="FILE",
                        help="also write the report to FILE: .json or .html")
    replay.add_argument("--fail-on", default=None, metavar="KINDS",
                        help="exit 1 if any of these differences is found, comma-separated: "
                             + ", ".join(fail_on_words()))
    replay.add_argument("--model", choices=("configured", "fake"), default="configured",
                        help="where model calls the answer cache cannot answer go: the "
                             "configured model (default), or a fake that answers the "
                             "smallest JSON that fits")
    replay.add_argument("--prompts", default=None, help=prompts_help)


async def replay_command(args: argparse.Namespace, settings: Settings, *,
                         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``agentkit replay`` with parsed ``args``; returns the exit status."""
    stdout, stderr = out or sys.stdout, err or sys.stderr
    now = datetime.now(UTC)
    scope = ReplayScope(since=when(args.since, now, "--since"),
                        until=when(args.until, now, "--until"),
                        call_ids=tuple(args.call), limit=args.limit)
    if scope.limit is not None and scope.limit < 1:
        raise ReplayCommandError("--limit must be at least 1")
    fail_on = fail_on_list(args.fail_on)
    if args.report and Path(args.report).suffix.lower() not in (".json", ".html"):
        raise ReplayCommandError(f"--report {args.report}: name a .json or .html file")
    against = _names(args.against)
    if args.shadow and not against:
        raise ReplayCommandError("--shadow needs --against: name the live bots the shadow bot "
                                 "stands beside, e.g. --against voicemail-callback")

    def progress(report: ReplayReport) -> None:
        print(f"replay: {report.calls} calls, {report.calls_differing} differing",
              file=stderr, flush=True)

    async with _store(args.database_url or settings.database_url) as store:
        # The bots' own log lines go to stderr, so that stdout is the report alone.
        with contextlib.redirect_stdout(stderr):
            if args.shadow:
                report = await shadow_report(
                    store, args.shadow, scope, against=against or [],
                    fail_on=fail_on, progress=progress, every=PROGRESS_EVERY)
            else:
                report = await _replay(args, settings, store, scope, against, fail_on,
                                       progress, stderr)
    print(f"replay: {report.calls} calls, {report.calls_differing} differing, done",
          file=stderr, flush=True)
    if report.calls == 0:
        print("replay: no stored call matched: check --since, --until and the database",
              file=stderr)
        if fail_on:
            raise ReplayCommandError("--fail-on judged nothing: no call was replayed")
    if args.shadow and not report.replayed.actions and not report.replayed.model_answers:
        print(f"replay: {args.shadow} recorded nothing in this period: is it deployed in "
              "shadow mode (mode='shadow' or AGENTKIT_SHADOW) under that name?", file=stderr)
    print(render_text(report), file=stdout, flush=True)
    if args.report:
        path = Path(args.report)
        text = render_html(report) if path.suffix.lower() == ".html" else \
            report.model_dump_json(indent=2)
        try:
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        except OSError as exc:
            raise ReplayCommandError(f"--report {path}: cannot write it ({exc.strerror})") \
                from None
        print(f"replay: report written to {path}", file=stderr)
    try:
        kept = save_report(report, settings.replay_dir)
        print(f"replay: kept for the console in {kept}", file=stderr)
    except OSError as exc:
        print(f"replay: the report was not kept in AGENTKIT_REPLAY_DIR ({exc})", file=stderr)
    return 1 if report.failing else 0


async def _replay(args: argparse.Namespace, settings: Settings, store: Store,
                  scope: ReplayScope, against: list[str] | None, fail_on: list[str],
                  progress: Callable[[ReplayReport], None], stderr: TextIO) -> ReplayReport:
    from agentkit.runtime.loader import load_bots, prompts_folder
    from agentkit.testing.fake_llm import FakeLlm

    bots = load_bots(args.bots)
    if not bots:
        raise ReplayCommandError(f"no bots in {args.bots}: name a folder of bot modules, a "
                                 "bot file or a dotted module")
    prompts = prompts_folder(args.bots, args.prompts or settings.prompts)
    api, _ = recorded_client(store, api_key=str(settings.api_key or NO_KEY),
                             base_url=settings.base_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(api.aclose)
        if args.model == "fake":
            fake = await stack.enter_async_context(FakeLlm())
            config = LlmConfig.from_settings(settings, base_url=fake.base_url,
                                             api_key="fake")
            label = f"fake, behind the answer cache of {settings.model}"
        else:
            config = LlmConfig.from_settings(settings)
            label = settings.model if config.enabled else "none configured"
            if not config.enabled:
                print("replay: no model is configured (OPENAI_API_KEY or OPENAI_BASE_URL): "
                      "the bots run as they do without one; --model fake answers from the "
                      "answer cache instead", file=stderr)
        # The fake's answers are read from nowhere but this run: never kept for the live bots.
        llm = LlmClient(config, cache=store, keep=args.model != "fake")
        stack.push_async_callback(llm.aclose)
        replay = Replay(settings, store, bots, api=api, llm=llm, prompts=prompts,
                        against=against, model=label, fail_on=fail_on)
        return await replay.run(scope, progress=progress, every=PROGRESS_EVERY)


def when(text: str | None, now: datetime, option: str) -> datetime | None:
    """``7d`` (ago), ``2026-12-01`` or an ISO time (UTC unless it says); None for None."""
    if text is None:
        return None
    span = _SPAN.match(text.strip().lower())
    if span:
        return now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReplayCommandError(
            f"{option} {text!r}: give a span ago (30m, 12h, 7d, 2w), a date (2026-12-01) or "
            "an ISO time (2026-12-01T09:00:00Z)") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def fail_on_list(text: str | None) -> list[str]:
    """The ``--fail-on`` words, checked against those the report counts."""
    words = _names(text) or []
    known = fail_on_words()
    unknown = [word for word in words if word not in known]
    if unknown:
        raise ReplayCommandError(f"--fail-on does not know {', '.join(unknown)}: use some of "
                                 f"{', '.join(known)}")
    return words


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


@contextlib.asynccontextmanager
async def _store(url: str) -> AsyncIterator[Store]:
    _must_exist(url)
    store = store_for_url(url, one_at_a_time=True)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _must_exist(url: str) -> None:
    """A replay reads a deployment's store: a SQLite file that is not there is a mistake, not
    an empty store to make."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ReplayCommandError(f"no store at {path}: name the deployment's database with "
                                     "--database-url or AGENTKIT_DATABASE_URL")
