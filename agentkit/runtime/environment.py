"""What bots run with: the API client, the store, the model, chat, callbacks and flows.

One ``BotEnvironment`` per process builds each handler's ``Context`` and the
``Dispatcher`` that routes events to the bots. ``agentkit run`` makes one; so
do tests and ``agentkit.testing``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentkit.actions.callbacks import AFTER_TASK, CALLBACK_TASK, OUTCOME_TASK, Callbacks
from agentkit.actions.dialing import DialGate, DialLimits
from agentkit.actions.flows import FlowChanges
from agentkit.actions.hours import BusinessHours
from agentkit.actions.notify import ChatMessage, Notifier
from agentkit.actions.record import ActionLog
from agentkit.actions.toolkit import Actions
from agentkit.approvals.desk import APPROVAL_TASK, ApprovalConfig, ApprovalDesk
from agentkit.approvals.slack import SlackApp, SlackWebApi
from agentkit.approvals.tasks import ApprovalTasks
from agentkit.bot import Bot, unknown_shadow_bots
from agentkit.context import Context
from agentkit.errors import ConfigError
from agentkit.events import CallbackEnded, CallbackOutcome, Event
from agentkit.history import History
from agentkit.llm import LlmClient, LlmConfig, LlmTasks, PromptLibrary, Usage
from agentkit.llm.tasks import AnswerRecorder, TaskAnswer
from agentkit.logs import get_logger
from agentkit.metrics import Metrics
from agentkit.odygy.client import OdygyClient
from agentkit.reporting import Reports
from agentkit.runtime.dispatch import Dispatcher
from agentkit.runtime.worker import job_usage
from agentkit.settings import Settings
from agentkit.store.base import Job, ModelAnswer, Store

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class BotEnvironment:
    """The process-wide services bots use, and the contexts handlers get.

    ``metrics`` counts model calls and notifications of the notifier and model
    client built here (not of those passed in).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        api: OdygyClient,
        store: Store,
        bots: Sequence[Bot],
        prompts: str | Path = "./prompts",
        notifier: Notifier | None = None,
        llm: LlmClient | None = None,
        metrics: Metrics | None = None,
        clock: Clock = _now,
        dialled: Store | None = None,
    ) -> None:
        """``clock``: what handlers, joins and the dial caps take for now (a replay's runs
        on its events' time). ``dialled``: the store whose do-not-call list and calls
        placed the dial gate reads (default: ``store``; a replay's, the live one)."""
        self.settings = settings
        self.clock = clock
        self.api = api
        self.store = store
        self.bots = list(bots)
        self.prompts = PromptLibrary.for_project(prompts)
        self.notifier = notifier or Notifier.from_settings(settings, metrics=metrics)
        self.shadow_notifier = Notifier.for_shadow(settings, metrics=metrics)
        problem = unknown_shadow_bots(settings.shadow, self.bots)
        if problem is not None:
            raise ConfigError(problem)
        self.llm = llm or LlmClient(LlmConfig.from_settings(settings), cache=store,
                                    metrics=metrics)
        self.hours = BusinessHours.parse(settings.business_hours)
        # The business's time zone: callers' times, notes, the digest's day.
        self.time_zone = settings.time_zone or self.hours.zone or "UTC"
        self.reports = Reports(store, zone=self.time_zone, clock=clock)
        self.approvals = ApprovalDesk(store, ApprovalConfig.from_settings(settings))
        slack_app = SlackApp.from_settings(settings)
        self.slack = SlackWebApi(slack_app) if slack_app is not None else None
        self.flows = FlowChanges(api, store, approvals=self.approvals)
        self.gate = DialGate(
            api, dialled or store,
            DialLimits(countries=settings.dial_countries, daily_max=settings.dial_daily_max,
                       paused=settings.calls_paused),
            alert=self.alert, clock=clock,
        )
        self.callbacks = Callbacks(
            api, store, {bot.name: bot for bot in self.bots}, gate=self.gate,
            default_hours=self.hours, after_callback=self._after_callback,
            approvals=self.approvals, clock=clock,
        )
        self.approval_tasks = ApprovalTasks(
            store,
            {"callback": self.callbacks, "escalation": self.callbacks,
             "update_flow": self.flows, "attach_number": self.flows},
            notifier=self.notifier, slack=self.slack, console_url=settings.public_url,
        )

    async def alert(self, message: ChatMessage) -> None:
        """Tell the operators, on every chat channel; never raises."""
        await self.notifier.send(message)

    async def dead_letter_alert(self, job: Job, error: str, retried: bool) -> None:
        """One chat alert for a job given up on (``Workers(on_dead_letter=...)``)."""
        what = job.bot or job.name.split(":", 1)[0] or job.kind
        why = (f"it failed {job.attempts} times" if retried else
               "it will fail the same way on every attempt, so it was not retried: fix the "
               "cause, then retry the job")
        await self.alert(ChatMessage(
            title=f"Dead letter: {what}",
            text=f"{error[:1500]}\n\n{why}.",
            fields={"Job": str(job.id), "Kind": job.kind, "Event": job.event_id,
                    "Attempts": str(job.attempts)},
            urgency="high",
            reference=f"dead-letter:{job.id}",
        ))

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.bots, self.context, self.store, clock=self.clock,
            tasks={
                CALLBACK_TASK: self.callbacks.run_scheduled,
                OUTCOME_TASK: self.callbacks.follow,
                AFTER_TASK: self.callbacks.run_after_callback,
                APPROVAL_TASK: self.approval_tasks.run,
            },
            route_hooks=[self.callbacks.route_hook],
        )

    def context(
        self,
        event: Event,
        bot: Bot,
        job: Job,
        *,
        joined: dict[str, Event] | None = None,
        missing: tuple[str, ...] = (),
        acting_on: Event | None = None,
    ) -> Context[Any, Any]:
        """The context of one handler run; its actions are keyed by ``acting_on`` (default:
        the event)."""
        usage = job_usage.get(None) or Usage()
        shadow = self.is_shadow(bot)
        bot_log = get_logger(f"agentkit.bots.{bot.name}")
        prompts = self.prompts.before(bot.prompts) if bot.prompts else self.prompts
        keyed = acting_on or event
        return Context(
            event=event,
            bot=bot,
            settings=bot.settings,
            api=self.api,
            history=History(self.store, self.api, event=keyed, bot=bot.name, clock=self.clock),
            log=bot_log,
            attempt=job.attempts,
            llm=LlmTasks(self.llm, prompts, model=bot.model or self.settings.model,
                         usage=usage, prompt_names=bot.prompt_names, log=bot_log,
                         use_platform=bot.use_platform_ai,
                         recorder=self._answer_recorder(keyed.id, bot.name)),
            actions=Actions(
                record=ActionLog(self.store, event_id=keyed.id, bot=bot.name,
                                 dry_run=self.settings.dry_run, shadow=shadow,
                                 after_callback=isinstance(event, CallbackEnded)),
                event=keyed, bot=bot, callbacks=self.callbacks, flows=self.flows,
                notifier=self.shadow_notifier if shadow else self.notifier,
                console_url=self.settings.public_url,
            ),
            usage=usage,
            deployment=self.settings,
            joined=joined or {event.type: event},
            missing=missing,
            hours=bot.business_hours or self.hours,
            time_zone=self.time_zone,
            reports=self.reports,
            clock=self.clock,
        )

    def is_shadow(self, bot: Bot) -> bool:
        """Whether ``bot`` runs in shadow mode: its own ``mode``, or AGENTKIT_SHADOW."""
        return bot.mode == "shadow" or bot.name in self.settings.shadow

    def _answer_recorder(self, event_id: str, bot: str) -> AnswerRecorder:
        async def record(answer: TaskAnswer) -> None:
            await self.store.record_model_answer(ModelAnswer(
                event_id=event_id, bot=bot, task=answer.task, model=answer.model,
                prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                cost_usd=answer.cost_usd, cached=answer.cached, answer=answer.answer,
                created_at=datetime.now(UTC),
            ))

        return record

    async def _after_callback(
        self, bot: Bot, job: Job, event: Event, outcome: CallbackOutcome
    ) -> None:
        ended = CallbackEnded(
            id=f"{event.id}:callback-ended:{outcome.key}", created_at=datetime.now(UTC),
            raw_data={}, data=outcome, origin=event,
        )
        # Actions stay keyed by the event the callback was asked for on, as before.
        context = self.context(ended, bot, job, acting_on=event)
        for handler in bot.callback_listeners:
            await handler(context)

    async def aclose(self) -> None:
        await self.llm.aclose()
        if self.slack is not None:
            await self.slack.aclose()
