"""Prometheus metrics of one agentkit process, in a registry of its own."""

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
JOB_STATES = ("pending", "running", "done", "dead")


class Metrics:
    """Deliveries by outcome, queue depth, job latency, retries and dead letters."""

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

    def set_queue_depth(self, counts: dict[str, int]) -> None:
        for state in JOB_STATES:
            self.queue_depth.labels(state=state).set(counts.get(state, 0))

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
