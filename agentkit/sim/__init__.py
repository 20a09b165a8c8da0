"""The embedded phone.systems simulator: the API, live calls and signed webhooks."""

from agentkit.sim.calls import PlacedCall
from agentkit.sim.config import (
    SANDBOX_API_KEY,
    SANDBOX_DIAL_COUNTRIES,
    SANDBOX_WEBHOOK_SECRET,
    Delivery,
    Faults,
    Limits,
    SimConfig,
    Timings,
)
from agentkit.sim.delivery import DeliveryAttempt, DeliveryLog, SimEvent
from agentkit.sim.simulator import Simulator

__all__ = [
    "SANDBOX_API_KEY",
    "SANDBOX_DIAL_COUNTRIES",
    "SANDBOX_WEBHOOK_SECRET",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryLog",
    "Faults",
    "Limits",
    "PlacedCall",
    "SimConfig",
    "SimEvent",
    "Simulator",
    "Timings",
]
