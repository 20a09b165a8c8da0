"""The simulated API's routes: one blueprint per resource, as the client has one module each."""

from quart import Blueprint

from agentkit.sim.routes import (
    account,
    call_flows,
    calls,
    numbers,
    recordings,
    users,
    webhooks,
)
from agentkit.sim.routes._base import ApiHost, attach, error_response, host

BLUEPRINTS: tuple[Blueprint, ...] = (
    account.blueprint,
    users.blueprint,
    numbers.blueprint,
    call_flows.blueprint,
    calls.blueprint,
    recordings.blueprint,
    webhooks.blueprint,
)

__all__ = ["BLUEPRINTS", "ApiHost", "attach", "error_response", "host"]
