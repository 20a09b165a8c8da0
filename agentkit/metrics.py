"""Prometheus metrics of one agentkit process, in a registry of its own.

The client, the model layer and the notifier report through small protocols of
their own (``api_error``, ``llm_call``, ``notification``...), which ``Metrics``
meets; used as a library without one, they report nothing. Every label takes
values from a short, fixed or configured set, never from a request.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

DELIVERY_OUTCOMES = (
    "stored",
    "duplicate",
    "bad_signature",
    "bad_request",
    "too_large",
    "unsupported_media_type",
    "store_unavailable",
)
JOB_STATES = ("pending", "running", "done", "dead", "discarded")
LLM_TASKS = ("summarise", "classify", "extract", "decide")
LLM_OUTCOMES = ("ok", "cached", "invalid", "error")
FALLBACK_REASONS = ("no_model", "unavailable", "refused", "invalid_answer", "error")


class Metrics:
    """Deliveries, queue depth, jobs, model calls and their cost, API errors, notifications."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "agentkit_deliveries", "Webhook deliveries received, by outcome.", ["outcome"],
            registry=self.registry,
        )
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome=outcome)
        self.queue_depth = Gauge(
            "agentkit_queue_depth", "Jobs in the store, by state.", ["state"],
            registry=self.registry,
        )
        self.ingest_batch = Histogram(
            "agentkit_ingest_batch_events", "Events written per store transaction.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry,
        )
        self.job_duration = Histogram(
            "agentkit_job_duration_seconds", "How long a job ran, by kind and outcome.",
            ["kind", "outcome"], registry=self.registry,
        )
        self.job_wait = Histogram(
            "agentkit_job_wait_seconds", "From a job being due to a worker starting it.",
            ["kind"], registry=self.registry,
        )
        self.retries = Counter(
            "agentkit_job_retries", "Failed job attempts that will be retried.", ["kind", "bot"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "agentkit_dead_letters", "Jobs given up after their last attempt.", ["kind", "bot"],
            registry=self.registry,
        )
        self.llm_calls = Counter(
            "agentkit_llm_calls", "Model answers (and failures to answer), by task and outcome.",
            ["task", "outcome"], registry=self.registry,
        )
        for task in LLM_TASKS:
            for outcome in LLM_OUTCOMES:
                self.llm_calls.labels(task=task, outcome=outcome)
        self.llm_tokens = Counter(
            "agentkit_llm_tokens", "Tokens the model server counted, by model and kind.",
            ["model", "kind"], registry=self.registry,
        )
        self.llm_cost = Counter(
            "agentkit_llm_cost_usd", "What model calls cost at list price, in US dollars.",
            ["model"], registry=self.registry,
        )
        self.llm_fallbacks = Counter(
            "agentkit_llm_fallbacks", "Handlers that went on without the model's answer.",
            ["reason"], registry=self.registry,
        )
        for reason in FALLBACK_REASONS:
            self.llm_fallbacks.labels(reason=reason)
        self.api_errors = Counter(
            "agentkit_api_errors", "phone.systems answers with status 400 or more, by status.",
            ["status"], registry=self.registry,
        )
        self.notifications = Counter(
            "agentkit_notifications", "Chat notifications, by channel and outcome.",
            ["channel", "outcome"], registry=self.registry,
        )
        # The deployment's figures, read from the store at each scrape (as the console shows them).
        self.jobs_per_minute = Gauge(
            "agentkit_jobs_per_minute", "Jobs finished in the last 60 seconds, every process.",
            registry=self.registry,
        )
        self.dead_letters_waiting = Gauge(
            "agentkit_dead_letters_waiting", "Dead letters not yet retried or discarded.",
            registry=self.registry,
        )
        self.llm_spend_today = Gauge(
            "agentkit_llm_spend_today_usd", "Model spend since midnight UTC, every process.",
            registry=self.registry,
        )
        self.calls_24h = Gauge(
            "agentkit_outbound_calls_last_day", "Outbound calls claimed in the last 24 hours.",
            registry=self.registry,
        )
        self.call_budget_used = Gauge(
            "agentkit_call_budget_used_ratio",
            "Share of AGENTKIT_DIAL_DAILY_MAX used in the last 24 hours.",
            registry=self.registry,
        )
        self.approvals_waiting = Gauge(
            "agentkit_approvals_waiting", "Actions waiting for a person's approval.",
            registry=self.registry,
        )

    def set_queue_depth(self, counts: dict[str, int]) -> None:
        for state in JOB_STATES:
            self.queue_depth.labels(state=state).set(counts.get(state, 0))

    def set_health(self, *, jobs_per_minute: int, dead_letters: int, spend_today_usd: float,
                   calls_24h: int, budget_used: float) -> None:
        """The deployment's figures, as the console's health panel shows them."""
        self.jobs_per_minute.set(jobs_per_minute)
        self.dead_letters_waiting.set(dead_letters)
        self.llm_spend_today.set(spend_today_usd)
        self.calls_24h.set(calls_24h)
        self.call_budget_used.set(budget_used)

    def llm_call(self, *, task: str, outcome: str) -> None:
        """Count one model answer: ok, cached, invalid (did not fit), or error (none came)."""
        self.llm_calls.labels(task=task, outcome=outcome).inc()

    def llm_tokens_used(
        self, *, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float
    ) -> None:
        """Add one answer's tokens and cost to its model's totals."""
        self.llm_tokens.labels(model=model, kind="prompt").inc(prompt_tokens)
        self.llm_tokens.labels(model=model, kind="completion").inc(completion_tokens)
        self.llm_cost.labels(model=model).inc(cost_usd)

    def llm_fallback(self, *, reason: str) -> None:
        """Count one handler going on without the model's answer."""
        self.llm_fallbacks.labels(reason=reason).inc()

    def api_error(self, status: int) -> None:
        """Count one phone.systems answer with a status of 400 or more."""
        self.api_errors.labels(status=str(status) if 400 <= status <= 599 else "other").inc()

    def notification(self, *, channel: str, sent: bool) -> None:
        """Count one message delivered to, or given up on, one chat channel."""
        self.notifications.labels(channel=channel, outcome="sent" if sent else "failed").inc()

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
