"""``BotHarness``: bots running end to end on loopback, for tests.

The simulator delivers signed webhooks to a real receiver, which stores them in
a real SQLite file; workers run the bots, which ask a fake OpenAI-compatible
model over HTTP and act through the real client on the simulator; chat
messages go to an HTTP sink. Tests drive the simulator and assert on what
reached it, the model and the sink::

    async with BotHarness([bot], tmp_path) as h:
        h.sim.leave_voicemail("+442079460000", words="Please call me back.")
        await h.settle()
        assert h.calls_placed()[0].to == "+442079460000"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from agentkit.actions.notify import ChatMessage, Notifier, WebhookChannel
from agentkit.approvals.interactions import slack_interactions
from agentkit.bot import Bot
from agentkit.ingress.receiver import WEBHOOK_PATH, create_receiver_app
from agentkit.metrics import Metrics
from agentkit.odygy.client import OdygyClient
from agentkit.odygy.models import Call
from agentkit.replay.recording import ReadRecorder
from agentkit.runtime.environment import BotEnvironment
from agentkit.runtime.scheduler import Scheduler
from agentkit.runtime.worker import WorkerConfig, Workers
from agentkit.serving import EmbeddedServer
from agentkit.settings import Settings
from agentkit.sim import SimConfig, Simulator
from agentkit.store.base import ActionRecord, JobRecord, Store
from agentkit.store.sqlite import SqliteStore
from agentkit.store.writer import EventWriter
from agentkit.testing.fake_llm import FakeLlm
from agentkit.testing.fixtures import fast_sim_config
from agentkit.testing.recorder import HttpRecorder, Recorded
from agentkit.testing.waiting import wait_until

SECRET = "whsec_harness_secret_000000001"


async def make_due(store: Store, name_prefix: str = "") -> list[JobRecord]:
    """Make the store's scheduled jobs whose name starts with ``name_prefix`` due now, as if
    their wait had passed; returns the ones moved."""
    moved = await store.scheduled(name_prefix)
    for job in moved:
        await store.reschedule(job.id, datetime.now(UTC))
    return moved


class BotHarness:
    """Simulator, receiver, store, workers, fake model and chat sink, wired together.

    ``env`` adds to the environment the settings are read from (e.g.
    ``{"AGENTKIT_BUSINESS_HOURS": "Mon-Fri 09:00-17:00 UTC"}``); the model is
    the fake unless ``model=False`` (then bots see no model configured).
    ``store``: an open store to use (and leave open) instead of a new SQLite file;
    ``clock``: what the bots take for now (a ``ManualClock``), instead of the time.
    """

    def __init__(
        self,
        bots: Sequence[Bot],
        tmp_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        sim_config: SimConfig | None = None,
        model: bool = True,
        prompts: str | Path = "./prompts",
        workers: WorkerConfig | None = None,
        store: Store | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.bots = list(bots)
        self._own_store = store is None
        self._clock = clock or (lambda: datetime.now(UTC))
        self.sim = Simulator(sim_config or fast_sim_config())
        self.llm = FakeLlm()
        self.chat = HttpRecorder()
        self.store: Store = store or SqliteStore(tmp_path / "agentkit.db", max_attempts=3)
        self.metrics = Metrics()
        self._env = dict(env or {})
        self._model = model
        self._prompts = prompts
        self._worker_config = workers or WorkerConfig(
            concurrency=8, lease_seconds=10, poll_interval=0.05, retry_base=0.05,
            retry_max=0.2, drain_timeout=2,
        )
        self.settings: Settings | None = None
        self.api: OdygyClient | None = None
        self.reads = ReadRecorder(self.store)
        self.environment: BotEnvironment | None = None
        self.workers: Workers | None = None
        self.scheduler: Scheduler | None = None
        self._writer: EventWriter | None = None
        self._server: EmbeddedServer | None = None

    async def __aenter__(self) -> BotHarness:
        await self.sim.start()
        await self.llm.__aenter__()
        await self.chat.__aenter__()
        if self._own_store:
            await self.store.open()
        # The API is the simulator: sandbox mode (its key, and the sandbox's dial countries).
        base = {"AGENTKIT_BUSINESS_HOURS": "always", "AGENTKIT_MODEL": "fake-model",
                "AGENTKIT_SANDBOX": "1"}
        if self._model:
            base["OPENAI_BASE_URL"] = self.llm.base_url
            base["OPENAI_API_KEY"] = "sk-harness"
        self.settings = Settings.from_env(
            {**base, **self._env, "ODYGY_API_KEY": self.sim.api_key,
             "ODYGY_WEBHOOK_SECRET": SECRET, "ODYGY_BASE_URL": self.sim.base_url},
            env_file=None,
        )
        self.api = OdygyClient(api_key=self.sim.api_key, base_url=self.sim.base_url,
                               metrics=self.metrics, on_read=self.reads)
        self.environment = BotEnvironment(
            self.settings, api=self.api, store=self.store, bots=self.bots,
            prompts=self._prompts,
            notifier=Notifier([WebhookChannel(self.chat.url + "/chat", name="chat")],
                              backoff_base=0.01, metrics=self.metrics),
            metrics=self.metrics, clock=self._clock,
        )
        self.workers = Workers(self.store, self.environment.dispatcher(), self.metrics,
                               self._worker_config, owner="harness",
                               on_dead_letter=self.environment.dead_letter_alert)
        await self.workers.start()
        self.environment.approvals.wake_with(self.workers.wake)
        self.scheduler = Scheduler(self.store, self.bots, on_stored=self.workers.wake,
                                   default_hours=self.environment.hours, clock=self._clock,
                                   time_zone=self.environment.time_zone)
        await self.scheduler.start()
        self._writer = EventWriter(self.store, on_commit=self.workers.wake)
        await self._writer.start()

        async def ready() -> str | None:
            return None

        app = create_receiver_app(secrets=[SECRET], writer=self._writer, metrics=self.metrics,
                                  ready=ready)
        if self.environment.slack is not None:
            app.quart.register_blueprint(slack_interactions(
                self.environment.approvals, self.environment.slack, self.settings.approvers))
        self._server = EmbeddedServer(app)
        await self._server.start()
        self.sim.add_webhook(self._server.url + WEBHOOK_PATH, SECRET)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await self._server.stop()
        if self._writer is not None:
            await self._writer.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.workers is not None:
            await self.workers.stop()
        if self.environment is not None:
            await self.environment.aclose()
        if self.api is not None:
            await self.api.aclose()
        await self.reads.aclose()
        if self._own_store:
            await self.store.close()
        await self.chat.__aexit__(exc_type, exc, tb)
        await self.llm.__aexit__(exc_type, exc, tb)
        await self.sim.stop()

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until calls have ended, deliveries are in, and no job is due or running.

        Retries due within a few seconds count; jobs scheduled for later (a
        callback at the next opening) do not.
        """

        async def quiet() -> bool:
            await self.sim.settle(timeout)
            return (
                await self.store.count_due(within=5.0) == 0
                # A job dead-lettered is out of the queue while its alert is still on its way.
                and (self.workers is None or self.workers.busy == 0)
                and not self.sim.engine.busy
                and not self.sim.dispatcher.busy
            )

        await wait_until(quiet, timeout=timeout, interval=0.02, message="the bots to settle")
        await self.reads.flush()

    async def run_scheduled(self, name_prefix: str = "") -> list[JobRecord]:
        """Make scheduled jobs (e.g. ``callback:``) due now; returns the ones moved."""
        moved = await make_due(self.store, name_prefix)
        if self.workers is not None:
            self.workers.wake()
        return moved

    @property
    def url(self) -> str:
        """The receiver's base URL (``/webhooks/odygy``, and ``/slack/interactions`` with the
        Slack app set up)."""
        if self._server is None:
            raise RuntimeError("the harness is not running: use it with 'async with'")
        return self._server.url

    # what reached the outside

    def calls_placed(self) -> list[Call]:
        """Outbound calls the simulator received, oldest first."""
        return self.sim.calls(direction="outbound")

    def chat_messages(self) -> list[dict[str, Any]]:
        """Chat messages posted, as the generic webhook JSON (title, text, fields, ...)."""
        return [r.json() for r in self.chat.accepted()]

    def chat_posts(self) -> list[Recorded]:
        return self.chat.accepted()

    async def actions(self, event_id: str) -> list[ActionRecord]:
        return await self.store.actions_for_event(event_id)

    async def dead_jobs(self) -> list[JobRecord]:
        """Every dead-lettered job, of any event."""
        return await self.store.jobs_in_state("dead", limit=1000)


__all__ = ["BotHarness", "ChatMessage"]
