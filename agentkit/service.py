"""``agentkit run``: the receiver and the workers in one process, or either alone.

Start-up order: store (migrated), simulator (sandbox), client, bots, workers,
writer, HTTP server. Shutdown reverses it: the server stops taking deliveries,
the writer flushes, workers drain and hand back what they could not finish.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from quart import Blueprint

from agentkit.approvals.desk import ApprovalConfig, ApprovalDesk
from agentkit.approvals.interactions import slack_interactions
from agentkit.approvals.slack import SlackApp, SlackWebApi
from agentkit.bot import Bot
from agentkit.console.access import UsersFile
from agentkit.console.app import PREFIX as CONSOLE_PREFIX
from agentkit.console.app import ConsoleConfig, console_blueprint
from agentkit.console.health import read_health
from agentkit.console.operations import ConsoleOperations
from agentkit.console.session import ConsoleAccess, session_key
from agentkit.errors import ConfigError
from agentkit.ingress.receiver import WEBHOOK_PATH, create_receiver_app
from agentkit.logs import get_logger
from agentkit.metrics import Metrics
from agentkit.odygy.client import OdygyClient
from agentkit.odygy.ratelimit import RateLimits
from agentkit.replay.recording import ReadRecorder
from agentkit.runtime.environment import BotEnvironment
from agentkit.runtime.loader import load_bots
from agentkit.runtime.retention import RetentionJob
from agentkit.runtime.scheduler import Scheduler
from agentkit.runtime.worker import WorkerConfig, Workers
from agentkit.serving import EmbeddedServer
from agentkit.settings import Settings
from agentkit.sim import SimConfig, Simulator
from agentkit.store import Store, StoreError, store_for_url
from agentkit.store.ratelimit import PostgresRateLimiter, shared_rate_limiter
from agentkit.store.writer import EventWriter

log = get_logger("agentkit.service")

Role = Literal["all", "receiver", "workers"]


@dataclass
class RunOptions:
    """What ``agentkit run`` was asked to do, beyond the settings."""

    host: str = "127.0.0.1"
    port: int = 8080
    bots: str | None = None
    sandbox: bool = False
    sim_port: int = 8081
    sim_time_scale: float = 0.25
    role: Role = "all"
    max_attempts: int = 5
    prompts: str = "./prompts"
    max_connections: int = 1000
    # --approvals (with --sandbox): the demo's callbacks wait for approval in the console
    approvals: bool = False
    workers: WorkerConfig = field(default_factory=WorkerConfig)
    # phone.systems' limits; on PostgreSQL every process of the deployment shares them
    api_limits: RateLimits = field(default_factory=RateLimits)


class Service:
    """One agentkit process: build it, ``start()`` it, ``stop()`` it."""

    def __init__(
        self, settings: Settings, options: RunOptions, *, bots: list[Bot] | None = None
    ) -> None:
        """``bots``: the bots already loaded (by the start-up checks); else loaded at start."""
        self.settings = settings
        self._given_bots = bots
        self.options = options
        self.metrics = Metrics()
        self.store: Store = store_for_url(settings.database_url,
                                          max_attempts=options.max_attempts)
        self.sim: Simulator | None = None
        self.client: OdygyClient | None = None
        self.reads = ReadRecorder(self.store)
        self.limiter: PostgresRateLimiter | None = None
        self.workers: Workers | None = None
        self.writer: EventWriter | None = None
        self.server: EmbeddedServer | None = None
        self.bots: list[Bot] = []
        self.environment: BotEnvironment | None = None
        self.scheduler: Scheduler | None = None
        self.retention: RetentionJob | None = None
        self.approvals: ApprovalDesk | None = None
        self.slack: SlackWebApi | None = None

    @property
    def takes_deliveries(self) -> bool:
        return self.options.role in ("all", "receiver")

    @property
    def runs_jobs(self) -> bool:
        return self.options.role in ("all", "workers")

    async def start(self) -> None:
        options = self.options
        if self.runs_jobs:
            spec = options.bots or self.settings.bots
            if self._given_bots is not None:
                self.bots = list(self._given_bots)
            else:
                self.bots = load_bots(spec) if _has_bots(spec) else []
        await self.store.open()
        # Every process tries; one a day, across the deployment, purges.
        self.retention = RetentionJob(self.store, self.settings.retention_days)
        await self.retention.start()
        base_url = self.settings.base_url
        if options.sandbox:
            self.sim = Simulator(SimConfig(api_key=self.settings.api_key,
                                           time_scale=options.sim_time_scale))
            try:
                await self.sim.start(options.host, options.sim_port)
            except ConfigError as exc:
                # The server's own message names --port, which is the receiver's.
                reason = getattr(exc.__context__, "strerror", None) or "it cannot be bound"
                raise ConfigError(
                    f"the sandbox's simulator cannot listen on {options.host}:"
                    f"{options.sim_port} ({reason}): choose another --sim-port"
                ) from None
            base_url = self.sim.base_url
        # On PostgreSQL the API budget is the deployment's, not this process's.
        self.limiter = shared_rate_limiter(self.store, api_key=self.settings.api_key,
                                           limits=options.api_limits)
        if self.limiter is not None:
            await self.limiter.open()
            self.client = OdygyClient(api_key=self.settings.api_key, base_url=base_url,
                                      limiter=self.limiter, metrics=self.metrics,
                                      on_read=self.reads)
        else:
            self.client = OdygyClient(api_key=self.settings.api_key, base_url=base_url,
                                      limits=options.api_limits, metrics=self.metrics,
                                      on_read=self.reads)
        if self.runs_jobs:
            self.environment = BotEnvironment(
                self.settings, api=self.client, store=self.store, bots=self.bots,
                prompts=options.prompts, metrics=self.metrics,
            )
            self.workers = Workers(
                self.store, self.environment.dispatcher(), self.metrics, options.workers,
                on_dead_letter=self.environment.dead_letter_alert,
            )
            await self.workers.start()
            self.environment.approvals.wake_with(self.workers.wake)
            self.scheduler = Scheduler(self.store, self.bots, on_stored=self.workers.wake,
                                       default_hours=self.environment.hours,
                                       time_zone=self.environment.time_zone)
            await self.scheduler.start()
        if self.takes_deliveries:
            self.writer = EventWriter(self.store, on_commit=self._committed)
            await self.writer.start()
        app = create_receiver_app(
            secrets=list(self.settings.webhook_secrets),
            writer=self.writer,
            metrics=self.metrics,
            ready=self._not_ready_because,
            queue_counts=self.store.job_counts,
            on_scrape=self._scrape_health,
        )
        self.approvals = ApprovalDesk(
            self.store, ApprovalConfig.from_settings(self.settings),
            wake=self.workers.wake if self.workers is not None else None,
        )
        slack_app = SlackApp.from_settings(self.settings)
        if slack_app is not None and self.takes_deliveries:
            self.slack = SlackWebApi(slack_app)
            app.quart.register_blueprint(
                slack_interactions(self.approvals, self.slack, self.settings.approvers))
            if not self.settings.approvers:
                log.warning("approvals.no_slack_approvers",
                            hint="set AGENTKIT_APPROVERS to the Slack user ids who may approve")
        console_token = self._console_token()
        if console_token is not None:
            app.quart.register_blueprint(self._console(console_token))
        self.server = EmbeddedServer(app, host=options.host, port=options.port,
                                     max_connections=options.max_connections,
                                     forwarded_allow_ips=self.settings.forwarded_allow_ips)
        await self.server.start()
        if self.sim is not None and self.takes_deliveries:
            self.sim.add_webhook(self.server.url + WEBHOOK_PATH, self.settings.webhook_secrets[0])
        log.info(
            "agentkit.started",
            role=options.role,
            url=self.server.url,
            store=type(self.store).__name__,
            bots=[bot.name for bot in self.bots],
            shadow=[bot.name for bot in self.bots
                    if self.environment is not None and self.environment.is_shadow(bot)],
            sandbox=options.sandbox,
            api=base_url,
        )
        if self.runs_jobs and not self.bots:
            log.warning("agentkit.no_bots", bots=options.bots or self.settings.bots)
        if console_token is not None:
            console = self.server.url + CONSOLE_PREFIX
            if options.sandbox and not self.settings.console_token:
                # As Jupyter does, and only in the sandbox: the URL signs you in.
                log.info("console.ready", url=f"{console}/login?token={console_token}")
            else:
                log.info("console.ready", url=console + "/")

    def _console_token(self) -> str | None:
        """The shared token ("" for none) when the console is on, else None."""
        token = str(self.settings.console_token)
        if token or self.settings.console_users:
            return token
        if self.options.sandbox:
            return secrets.token_urlsafe(24)
        return None

    def _console(self, token: str) -> Blueprint:
        settings = self.settings
        users = UsersFile(settings.console_users) if settings.console_users else None
        url_token = token if self.options.sandbox and not settings.console_token else None
        access = ConsoleAccess(
            secret_key=session_key(str(settings.api_key), token,
                                   *(str(s) for s in settings.webhook_secrets)),
            shared_token=token, users=users,
            # --sandbox --approvals: the URL signs in "sandbox", an approver, not the shared login.
            url_role="approver" if url_token and self.options.approvals else None,
        )
        config = ConsoleConfig(
            access=access, bots=tuple(bot.name for bot in self.bots),
            regions=tuple(sorted(settings.dial_countries or ())),
            calls_daily_max=settings.dial_daily_max, url_token=url_token,
            replay_dir=Path(settings.replay_dir),
        )
        operations = ConsoleOperations(
            self.store, api=self.client,
            wake=self.workers.wake if self.workers is not None else None,
        )
        return console_blueprint(config, self.store, operations, api=self.client,
                                 approvals=self.approvals)

    async def _scrape_health(self) -> None:
        health = await read_health(self.store, calls_daily_max=self.settings.dial_daily_max)
        self.metrics.set_health(
            jobs_per_minute=health.jobs_per_minute, dead_letters=health.dead_letters,
            spend_today_usd=health.model_spend_today_usd, calls_24h=health.calls_24h,
            budget_used=health.budget_used,
        )
        if self.approvals is not None:
            self.metrics.approvals_waiting.set(len(await self.approvals.pending(limit=1000)))

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.writer is not None:
            await self.writer.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.workers is not None:
            await self.workers.stop()
        if self.client is not None:
            await self.client.aclose()
        await self.reads.aclose()
        if self.slack is not None:
            await self.slack.aclose()
        if self.limiter is not None:
            await self.limiter.aclose()
        if self.environment is not None:
            await self.environment.aclose()
        if self.sim is not None:
            await self.sim.stop()
        if self.retention is not None:
            await self.retention.stop()
        await self.store.close()
        log.info("agentkit.stopped")

    def _committed(self, count: int) -> None:
        self.metrics.ingest_batch.observe(count)
        if self.workers is not None:
            self.workers.wake()

    async def _not_ready_because(self) -> str | None:
        try:
            await self.store.ping()
        except StoreError as exc:
            # Host names and driver text are for the log, not for whoever asks /readyz.
            log.error("agentkit.store_unavailable", error=str(exc))
            return "the store is unavailable"
        return None


def _has_bots(spec: str) -> bool:
    """The default ./bots may be missing; anything named explicitly must load."""
    from pathlib import Path

    return not (spec == "./bots" and not Path(spec).exists())


async def run_until_signalled(service: Service) -> int:
    """Start the service, wait for SIGINT or SIGTERM, stop it; the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        # What start-up built lives as long as the process; moving it out of the
        # collector's reach keeps full collections from stalling requests for
        # tens of milliseconds (docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        await stop.wait()
        log.info("agentkit.stopping")
    finally:
        await service.stop()
    return 0
