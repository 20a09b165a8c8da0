"""Settings of the simulator: its limits, its pace, and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SANDBOX_API_KEY = "ps_test_sandbox_key_0000000000"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_0000000000000000"
# The sandbox account is Romanian and owns a London number; its demo callers are in
# Ofcom's London drama range, so the sandbox's callbacks may go to both countries.
SANDBOX_DIAL_COUNTRIES = frozenset({"RO", "GB"})


@dataclass
class Limits:
    """phone.systems' documented per-key limits; ``enabled=False`` lifts them."""

    requests_per_second: float = 100.0
    burst: int = 200
    max_call_creations: int = 20
    enabled: bool = True


@dataclass
class Timings:
    """How long each step of a call takes, in simulated seconds.

    ``SimConfig.time_scale`` turns simulated seconds into real ones, so tests
    run a two-minute call in a fraction of a second.
    """

    ring: float = 3.0
    talk: float = 20.0
    recording_delay: float = 2.0
    transcript_delay: float = 5.0
    call_creation: float = 0.02


FaultKind = Literal["error", "lost_answer", "timeout", "rate_limit"]


@dataclass
class ScriptedFault:
    """One fault for the next request that matches ``method`` and ``path`` (None: any).

    ``error``: a ``status`` before anything happens. ``lost_answer``: the request
    takes effect, then ``status`` comes back. ``timeout``: the request takes
    effect, then the answer is held ``hold`` seconds. ``rate_limit``: a 429 with
    ``Retry-After: retry_after``.
    """

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    status: int = 503
    hold: float = 30.0
    retry_after: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path == path
        )


@dataclass
class Faults:
    """Faults injected into ``/v1`` answers, each a probability from 0 to 1.

    ``error_rate``: a 5xx before anything happens. ``lost_answer_rate``: the
    request takes effect, then a 5xx comes back. ``timeout_rate``: the request
    takes effect, then the answer is held for ``timeout_hold`` seconds.
    ``rate_limit_rate``: a 429 before anything happens. ``latency`` seconds
    are added to every answer.
    """

    error_rate: float = 0.0
    lost_answer_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_hold: float = 30.0
    rate_limit_rate: float = 0.0
    latency: float = 0.0
    scripted: list[ScriptedFault] = field(default_factory=list)

    def take(self, method: str, path: str) -> ScriptedFault | None:
        """The first scripted fault that matches this request, removed from the script."""
        for i, fault in enumerate(self.scripted):
            if fault.matches(method, path):
                return self.scripted.pop(i)
        return None


@dataclass
class Delivery:
    """How webhooks are delivered.

    ``duplicate_rate``: the share of events delivered twice. ``reorder_jitter``:
    each delivery waits a random 0 to that many real seconds, so events overtake
    each other. ``retry_delays``: simulated seconds between attempts on non-2xx.
    """

    duplicate_rate: float = 0.0
    reorder_jitter: float = 0.0
    timeout: float = 10.0
    retry_delays: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class SimConfig:
    """Everything the simulator can be told at start-up."""

    api_key: str = SANDBOX_API_KEY
    limits: Limits = field(default_factory=Limits)
    timings: Timings = field(default_factory=Timings)
    faults: Faults = field(default_factory=Faults)
    delivery: Delivery = field(default_factory=Delivery)
    time_scale: float = 1.0
    seed_data: bool = True
    random_seed: int | None = None
    max_body_bytes: int = 1024 * 1024
