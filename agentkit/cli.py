"""The ``agentkit`` command: run | bots | check | eval | replay | request | sim, and operator
commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, cast

import httpx
import structlog
from structlog.typing import FilteringBoundLogger

from agentkit import __version__
from agentkit.errors import AgentkitError
from agentkit.logs import configure_logging, get_logger
from agentkit.serving import event_loop_factory
from agentkit.settings import Settings, environment_variables, read_environment

DEFAULT_SIM_URL = "http://127.0.0.1:8081"
PROMPTS_HELP = ("the project's prompt folder (AGENTKIT_PROMPTS; default: prompts/ beside the "
                "bots' folder, then ./prompts)")


class CliError(AgentkitError):
    """A command could not do what it was asked; the message says why."""


def _parser() -> argparse.ArgumentParser:
    # --log-level is taken before or after the command: agentkit --log-level debug run, or
    # agentkit run --log-level debug.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", choices=["debug", "info", "warning"],
                        default=argparse.SUPPRESS, help="default: info")
    parser = argparse.ArgumentParser(
        prog="agentkit", description="AI bots for the phone.systems cloud PBX.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"agentkit {__version__}")
    parser.set_defaults(log_level="info")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="serve the webhook receiver and run the bots",
                              parents=[common], epilog=_environment_help(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--bots", default=None, help="folder of bot modules or a dotted module")
    run.add_argument("--prompts", default=None, help=PROMPTS_HELP)
    run.add_argument("--sandbox", action="store_true", help="with the embedded simulator")
    run.add_argument("--approvals", action="store_true",
                     help="with --sandbox: callbacks wait for approval in the console "
                          "(AGENTKIT_APPROVALS, when unset, becomes all_callbacks)")
    roles = run.add_mutually_exclusive_group()
    roles.add_argument("--receiver-only", action="store_true",
                       help="take deliveries but run no jobs (scale the two apart)")
    roles.add_argument("--workers-only", action="store_true",
                       help="run jobs but take no deliveries (health and metrics still served)")
    run.add_argument("--concurrency", type=int, default=8, help="jobs run at once (default 8)")
    run.add_argument("--lease-seconds", type=float, default=30.0,
                     help="how long a job is held before another worker may take it over")
    run.add_argument("--drain-seconds", type=float, default=20.0,
                     help="on SIGTERM, how long running jobs may take to finish")
    run.add_argument("--retry-base-seconds", type=float, default=2.0,
                     help="the first retry's delay; later ones double (default 2)")
    run.add_argument("--max-attempts", type=int, default=5, help="attempts before dead-letter")
    run.add_argument("--poll-seconds", type=float, default=0.5,
                     help="how often idle workers look for due jobs (default 0.5)")
    run.add_argument("--sim-port", type=int, default=8081, help="the sandbox simulator's port")
    run.add_argument("--api-rate", type=float, default=100.0,
                     help="the API key's requests a second, burst twice that (phone.systems: "
                          "100); 0 stops the client pacing itself, for a simulator without limits")
    run.add_argument("--api-calls-in-flight", type=int, default=20,
                     help="call creations at once for the API key (phone.systems: 20)")
    run.add_argument("--max-connections", type=int, default=1000,
                     help="HTTP connections at once; more are closed at once (default 1000)")

    bots = commands.add_parser("bots", help="list the bots and what they react to",
                               parents=[common])
    bots.add_argument("--bots", default=None, help="folder of bot modules or a dotted module")
    bots.add_argument("--json", action="store_true", help="print JSON")

    check = commands.add_parser("check", help="find mistakes in bots and settings before start-up",
                                parents=[common])
    check.add_argument("--bots", default=None, help="folder of bot modules or a dotted module")
    check.add_argument("--prompts", default=None, help=PROMPTS_HELP)
    check.add_argument("--sandbox", action="store_true", help="check as for agentkit run --sandbox")

    request = commands.add_parser(
        "request", help="ask a bot for something it answers with @bot.on_request",
        parents=[common],
    )
    request.add_argument("bot", help="the bot's name")
    request.add_argument("name", help="what to ask for, as the bot declares it")
    request.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                         help="an argument for the handler (repeatable)")
    request.add_argument("--bots", default=None, help="folder of bot modules or a dotted module")

    evaluate = commands.add_parser(
        "eval", help="measure a bot's model tasks on labelled transcripts", parents=[common],
    )
    evaluate.add_argument("bot", help="the bot's name")
    evaluate.add_argument("--data", default=None,
                          help="the labelled transcripts, JSON lines (default: eval/"
                               "transcripts.jsonl in the bots' folder)")
    evaluate.add_argument("--bots", default=None, help="folder of bot modules or a dotted module")
    evaluate.add_argument("--prompts", default=None, help=PROMPTS_HELP)
    evaluate.add_argument("--task", action="append", default=None, metavar="NAME",
                          help="only this model task (repeatable; default: all of the bot's)")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N",
                          help="only the first N samples labelled for the bot")
    evaluate.add_argument("--concurrency", type=int, default=4,
                          help="model calls at once (default 4)")
    evaluate.add_argument("--json", action="store_true",
                          help="print only the summary, with every miss, as one JSON line")

    replay = commands.add_parser(
        "replay", parents=[common],
        help="run candidate bots over stored calls and show what they would do differently",
    )
    from agentkit.replay.command import add_arguments as replay_arguments

    replay_arguments(replay, PROMPTS_HELP)

    dnc = commands.add_parser("dnc", help="the do-not-call list: numbers no bot ever calls",
                              parents=[common])
    dnc_actions = dnc.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, words in (("add", "put a number on the list"), ("remove", "take one off")):
        change = dnc_actions.add_parser(name, help=words, parents=[common])
        change.add_argument("number", help="the number, in any format (+44 20 7946 0000)")
        change.add_argument("--country", default=None,
                            help="the country of a number written without its country code")
        if name == "add":
            change.add_argument("--reason", default="", help="why (kept with the entry)")
    listing = dnc_actions.add_parser("list", help="every number on the list", parents=[common])
    listing.add_argument("--json", action="store_true", help="print JSON")

    calls = commands.add_parser("calls", help="stop or restart every outbound call at once",
                                parents=[common])
    calls.add_argument("action", choices=["pause", "resume", "status"])

    erase = commands.add_parser("erase", help="remove what agentkit holds about a number",
                                parents=[common])
    erase.add_argument("number", help="the number, in any format (+44 20 7946 0000)")
    erase.add_argument("--country", default=None,
                       help="the country of a number written without its country code")

    dead = commands.add_parser(
        "dead", help="dead letters: jobs given up on; list them, or run them again",
        parents=[common],
    )
    dead.add_argument("--bot", default=None, help="only this bot's")
    dead.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    dead.add_argument("--json", action="store_true", help="print JSON")
    again = dead.add_mutually_exclusive_group()
    again.add_argument("--retry", type=int, nargs="+", metavar="JOB_ID",
                       help="run these dead jobs again, through the normal workers")
    again.add_argument("--retry-all", metavar="BOT",
                       help="run every dead job of this bot again")

    approvals = commands.add_parser(
        "approvals", help="actions waiting for a person: list them, approve or reject one",
        parents=[common],
    )
    approval_actions = approvals.add_subparsers(dest="action", required=True, metavar="ACTION")
    waiting = approval_actions.add_parser("list", help="approvals waiting, oldest first",
                                          parents=[common])
    waiting.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    waiting.add_argument("--json", action="store_true", help="print JSON")
    for name, words in (("approve", "approve one: the running agentkit carries it out, once"),
                        ("reject", "reject one: it is not done")):
        decide = approval_actions.add_parser(name, help=words, parents=[common])
        decide.add_argument("id", help="the approval's id (apr_...), as 'list' shows it")
        decide.add_argument("--reason", default="", metavar="TEXT",
                            help="why (kept with the decision)")

    console = commands.add_parser("console", help="the operator console's users",
                                  parents=[common])
    console_actions = console.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_user = console_actions.add_parser(
        "add-user", help="add a person to the users file and print their token, once",
        parents=[common],
    )
    add_user.add_argument("name", help="who they are, as the console shows it")
    add_user.add_argument("--role", required=True, choices=["viewer", "operator", "approver"])
    add_user.add_argument("--users-file", default=None,
                          help="the users file (default: AGENTKIT_CONSOLE_USERS)")

    sim = commands.add_parser("sim", help="serve the phone.systems simulator, or drive one",
                              parents=[common])
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8081)
    sim.add_argument("--time-scale", type=float, default=1.0,
                     help="real seconds per simulated second (0.1: ten times faster)")
    sim.add_argument("--webhook-url", help="register this endpoint for every event type")
    sim.add_argument("--webhook-secret", help="the secret that signs deliveries to --webhook-url")
    sim.add_argument("--no-limits", action="store_true", help="lift the rate limits")
    sim.add_argument("--call-creation-seconds", type=float, default=None,
                     help="how long POST /v1/calls takes to answer (default 0.02)")
    sim.add_argument("--empty", action="store_true", help="start with no users, numbers or flows")
    actions = sim.add_subparsers(dest="action", metavar="ACTION")

    voicemail = actions.add_parser("voicemail", help="a caller leaves a voicemail")
    voicemail.add_argument("--from", dest="from_", required=True, help="the caller, E.164")
    voicemail.add_argument("--to", help="the account's number called (default: the first)")
    voicemail.add_argument("--words", required=True, help="what the caller says")
    voicemail.add_argument("--language", default="en-US")
    voicemail.add_argument("--sim-url", default=DEFAULT_SIM_URL)

    call = actions.add_parser("call", help="a caller rings one of the account's numbers")
    call.add_argument("--from", dest="from_", required=True,
                      help="the caller, E.164, or 'anonymous' for a withheld caller ID")
    call.add_argument("--to", help="the account's number called (default: the first)")
    call.add_argument("--outcome", choices=["answered", "voicemail", "missed"], default="answered")
    call.add_argument("--say", action="append", default=[], metavar="SPEAKER:TEXT",
                      help="one line of the conversation, e.g. 'caller:Hello' (repeatable)")
    call.add_argument("--recording", action="store_true")
    call.add_argument("--ring", type=float, default=None, metavar="SECONDS",
                      help="how long it rings before it is answered or missed (default: 3)")
    call.add_argument("--sim-url", default=DEFAULT_SIM_URL)
    return parser


def _environment_help() -> str:
    """The variables agentkit reads, one paragraph each, for ``agentkit run --help``."""
    variables = environment_variables()
    column = max(len(variable.name) for variable in variables) + 4
    lines = ["environment variables (a .env file in the current folder adds to them):"]
    for variable in variables:
        text = ("[secret] " if variable.secret else "") + variable.description
        if variable.default:
            text += f" (default: {variable.default})"
        lines += textwrap.wrap(text, width=79, initial_indent=f"  {variable.name:<{column - 2}}",
                               subsequent_indent=" " * column, break_on_hyphens=False,
                               break_long_words=False)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``agentkit`` console script."""
    args = _parser().parse_args(argv)
    configure_logging(level=args.log_level)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            code = runner.run(_dispatch(args))
    except AgentkitError as exc:
        print(f"agentkit: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return await _run(args)
    if args.command == "bots":
        return _list_bots(args)
    if args.command == "check":
        return _check(args)
    if args.command == "request":
        return await _request(args)
    if args.command == "eval":
        return await _eval(args)
    if args.command == "replay":
        return await _replay(args)
    if args.command in ("dnc", "calls", "erase", "dead", "approvals", "console"):
        from agentkit import admin

        command = {"dnc": admin.dnc_command, "calls": admin.calls_command,
                   "erase": admin.erase_command, "dead": admin.dead_command,
                   "approvals": admin.approvals_command, "console": admin.console_command}
        return await command[args.command](args)
    if args.command == "sim":
        if args.action == "voicemail":
            return await _sim_request(
                args.sim_url,
                "/_sim/voicemails",
                {"from": args.from_, "to": args.to, "words": args.words,
                 "language": args.language},
            )
        if args.action == "call":
            dialogue = []
            for line in args.say or ["caller:Hello, I have a question."]:
                speaker, sep, text = line.partition(":")
                if not sep or not text.strip():
                    raise CliError(f"--say takes SPEAKER:TEXT, e.g. 'caller:Hello' (got {line!r})")
                dialogue.append([speaker.strip(), text.strip()])
            return await _sim_request(
                args.sim_url,
                "/_sim/inbound_calls",
                {"from": args.from_, "to": args.to, "outcome": args.outcome,
                 "dialogue": dialogue, "recording": args.recording, "ring": args.ring},
            )
        return await _serve_sim(args)
    raise CliError(f"unknown command {args.command!r}")


def _bots_spec(args: argparse.Namespace) -> str:
    return str(args.bots or read_environment().get("AGENTKIT_BOTS") or "./bots")


def _list_bots(args: argparse.Namespace) -> int:
    from agentkit.runtime.loader import load_bots

    bots = load_bots(_bots_spec(args))
    if args.json:
        print(json.dumps([bot.describe() for bot in bots], indent=2))
        return 0
    if not bots:
        print(f"no bots in {_bots_spec(args)}")
        return 0
    for bot in bots:
        info = bot.describe()
        print(f"{bot.name}  (team: {info['team']}, hours: {info['business_hours'] or 'default'})")
        for handler in info["handlers"]:
            extra = {k: v for k, v in handler.items() if k not in ("handler", "on")}
            suffix = f"  {json.dumps(extra)}" if extra else ""
            print(f"  {handler['on']:<20} -> {handler['handler']}{suffix}")
        for name in info["after_callback"]:
            print(f"  {'(after callback)':<20} -> {name}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from agentkit.checks import check_project

    found = check_project(bots=_bots_spec(args), prompts=args.prompts, sandbox=args.sandbox)
    if _report(found.problems, "agentkit check"):
        return 2
    print(f"ok: {found.summary}")
    return 0


def _report(problems: list[str], who: str) -> bool:
    """Print every problem found; True if there was any."""
    for problem in problems:
        print(f"{who}: {problem}", file=sys.stderr)
    if problems:
        print(f"{who}: {len(problems)} problem(s) found", file=sys.stderr)
    return bool(problems)


async def _request(args: argparse.Namespace) -> int:
    import getpass
    import uuid

    from agentkit.events import REQUEST_ID_PREFIX, internal_body
    from agentkit.runtime.loader import load_bots
    from agentkit.store import NewEvent, store_for_url

    bots = {bot.name: bot for bot in load_bots(_bots_spec(args))}
    bot = bots.get(args.bot)
    if bot is None:
        raise CliError(f"no bot named {args.bot!r}; the bots are: {', '.join(bots) or 'none'}")
    answers = sorted(x.request for x in bot.listeners if x.request)
    if args.name not in answers:
        raise CliError(f"bot {bot.name!r} answers no request {args.name!r}; "
                       f"it answers: {', '.join(answers) or 'none'}")
    arguments: dict[str, str] = {}
    for item in args.arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--arg takes KEY=VALUE, not {item!r}")
        arguments[key] = value
    settings = Settings.from_env(sandbox=True)
    store = store_for_url(settings.database_url)
    await store.open()
    try:
        event_id = f"{REQUEST_ID_PREFIX}{uuid.uuid4().hex}"
        data = {"bot": bot.name, "name": args.name, "args": arguments,
                "requested_by": getpass.getuser()}
        from datetime import UTC, datetime

        await store.add_events([NewEvent(
            id=event_id, type="agentkit.request", created_at=datetime.now(UTC), call_id=None,
            body=internal_body(event_id, "agentkit.request", data), routable=True,
        )])
    finally:
        await store.close()
    print(json.dumps({"event_id": event_id, "bot": bot.name, "request": args.name}))
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from agentkit.replay.command import replay_command

    if args.log_level == "info":  # the default: one line per would-do action is too many
        configure_logging(level="warning")
    return await replay_command(args, Settings.from_env(credentials=False))


async def _eval(args: argparse.Namespace) -> int:
    from agentkit.runtime.loader import bots_folder, prompts_folder

    bots = _bots_spec(args)
    folder = bots_folder(bots)
    data = Path(args.data) if args.data else (
        folder / "eval" / "transcripts.jsonl" if folder else Path("bots/eval/transcripts.jsonl")
    )
    prompts = prompts_folder(bots, args.prompts or read_environment().get("AGENTKIT_PROMPTS"))
    return await eval_command(
        args.bot, data=data, bots=bots, prompts=prompts,
        tasks=args.task, limit=args.limit, concurrency=args.concurrency, as_json=args.json,
        verbose=args.log_level == "debug",
    )


async def eval_command(
    bot_name: str,
    *,
    data: Path,
    bots: str,
    prompts: Path,
    tasks: Sequence[str] | None = None,
    limit: int | None = None,
    concurrency: int = 4,
    as_json: bool = False,
    verbose: bool = False,
    out: TextIO | None = None,
) -> int:
    """``agentkit eval``: progress lines, the table, the misses, then the summary as the last
    line (``as_json``: only the detailed summary). 1 when every run failed, else 0."""
    from agentkit.evaluation import EvalError, load_samples, run_evaluation
    from agentkit.runtime.loader import load_bots

    stream = out or sys.stdout
    if not verbose:  # the openai client's own line per request: the report counts them
        logging.getLogger("httpx2").setLevel(logging.WARNING)
    found = {bot.name: bot for bot in load_bots(bots)}
    bot = found.get(bot_name)
    if bot is None:
        raise EvalError(f"no bot named {bot_name!r} in {bots}; the bots are: "
                        f"{', '.join(found) or 'none'}")
    if not bot.model_tasks:
        raise EvalError(f"bot {bot.name!r} has no model tasks to evaluate: register its model "
                        "calls with @bot.model_task")
    if limit is not None and limit < 1:
        raise EvalError("--limit must be at least 1")
    names = list(tasks) if tasks else list(bot.model_tasks)
    unknown = [name for name in names if name not in bot.model_tasks]
    if unknown:
        raise EvalError(f"bot {bot.name!r} has no model task {', '.join(map(repr, unknown))}; "
                        f"its tasks: {', '.join(bot.model_tasks)}")
    samples = [s for s in load_samples(data) if any(s.labels_for(bot.name, n) for n in names)]
    if not samples:
        raise EvalError(f"no sample in {data} has labels for {bot.name}/{'|'.join(names)}")
    samples = samples[:limit] if limit is not None else samples
    settings = Settings.from_env(sandbox=True)
    progress_stream = sys.stderr if as_json else stream

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"eval {bot.name}: {done}/{total} runs", file=progress_stream, flush=True)

    verbose_log = cast(FilteringBoundLogger, structlog.get_logger("agentkit.llm"))
    report = await run_evaluation(
        bot, samples, settings=settings, prompts=prompts, tasks=names,
        concurrency=concurrency, progress=progress, log=verbose_log if verbose else None,
    )
    if as_json:
        print(json.dumps(report.summary(detail=True), ensure_ascii=False), file=stream)
    else:
        print(report.table(), file=stream)
        details = report.details(limit=40)
        if details:
            print("", *details, sep="\n", file=stream)
        print(json.dumps(report.summary(), ensure_ascii=False), file=stream, flush=True)
    return 1 if report.failures and len(report.failures) == report.runs else 0


async def _run(args: argparse.Namespace) -> int:
    from agentkit.checks import check_project
    from agentkit.odygy.ratelimit import RateLimits
    from agentkit.runtime.worker import WorkerConfig
    from agentkit.service import Role, RunOptions, Service, run_until_signalled

    if args.approvals and not args.sandbox:
        raise CliError("--approvals goes with --sandbox (the demo); outside it, choose what "
                       "waits with AGENTKIT_APPROVALS: see docs/approvals.md")
    if args.api_rate < 0:
        raise CliError("--api-rate must be 0 (no pacing) or above")
    for name in ("concurrency", "max_attempts", "api_calls_in_flight", "max_connections"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("lease_seconds", "drain_seconds", "retry_base_seconds", "poll_seconds"):
        if getattr(args, name) <= 0:
            raise CliError(f"--{name.replace('_', '-')} must be above 0")
    role: Role = "receiver" if args.receiver_only else "workers" if args.workers_only else "all"
    # Every check agentkit check makes, before anything listens: a service that starts
    # is one whose bots can run.
    found = check_project(bots=_bots_spec(args), prompts=args.prompts, sandbox=args.sandbox,
                          load=role != "receiver")
    if _report(found.problems, "agentkit run") or found.settings is None:
        return 2
    settings = found.settings
    configure_logging(secrets=settings.secret_values(), level=args.log_level)
    if args.approvals:
        if not settings.approvals:
            settings = settings.model_copy(update={"approvals": ("all_callbacks",)})
        get_logger("agentkit.approvals").info(
            "approvals.on", rules=list(settings.approvals),
            hint="callbacks wait for approval: open the console's Approvals page")
    options = RunOptions(
        host=args.host,
        port=args.port,
        bots=_bots_spec(args),
        prompts=str(found.prompts) if found.prompts else "./prompts",
        sandbox=args.sandbox,
        approvals=args.approvals,
        sim_port=args.sim_port,
        role=role,
        max_attempts=args.max_attempts,
        max_connections=args.max_connections,
        api_limits=RateLimits(
            requests_per_second=args.api_rate or 100.0,
            burst=max(1, round(2 * (args.api_rate or 100.0))),
            max_call_creations=args.api_calls_in_flight,
            enabled=args.api_rate > 0,
        ),
        workers=WorkerConfig(
            concurrency=args.concurrency,
            lease_seconds=args.lease_seconds,
            drain_timeout=args.drain_seconds,
            retry_base=args.retry_base_seconds,
            poll_interval=args.poll_seconds,
        ),
    )
    return await run_until_signalled(Service(settings, options, bots=found.bots))


async def _sim_request(sim_url: str, path: str, payload: dict[str, Any]) -> int:
    body = {k: v for k, v in payload.items() if v is not None}
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(sim_url.rstrip("/") + path, json=body)
    except httpx.HTTPError as exc:
        raise CliError(
            f"no simulator answers at {sim_url} ({type(exc).__name__}); "
            "start one with 'agentkit sim' or pass --sim-url"
        ) from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise CliError(f"the simulator refused: {message}")
    print(json.dumps(response.json()))
    return 0


async def _serve_sim(args: argparse.Namespace) -> int:
    from agentkit.sim import SimConfig, Simulator

    if bool(args.webhook_url) != bool(args.webhook_secret):
        raise CliError("--webhook-url and --webhook-secret go together")
    if args.time_scale <= 0:
        raise CliError("--time-scale must be above 0")
    config = SimConfig(time_scale=args.time_scale, seed_data=not args.empty)
    config.limits.enabled = not args.no_limits
    if args.call_creation_seconds is not None:
        if args.call_creation_seconds < 0:
            raise CliError("--call-creation-seconds must be 0 or more")
        config.timings.call_creation = args.call_creation_seconds
    sim = Simulator(config)
    if args.webhook_url:
        sim.add_webhook(args.webhook_url, args.webhook_secret)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start(args.host, args.port)
    print(
        json.dumps({"simulator": sim.base_url, "api_key": sim.api_key,
                    "numbers": [n.number for n in sim.state.numbers.values()]}),
        flush=True,
    )
    await stop.wait()
    with contextlib.suppress(Exception):
        await sim.stop()
    return 0
