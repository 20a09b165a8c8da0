"""The console on a real pipeline: a harness's store and client, the blueprint on a Quart app.

Tests sign in through the login form and act through the pages' own forms,
with Quart's test client; the bots, the store, the simulator and the model
behind them are the real ones (the harness).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol

from agentkit.approvals.desk import ApprovalDesk
from agentkit.console.access import LoginLimiter, Role, UsersFile
from agentkit.console.app import ConsoleConfig, console_blueprint
from agentkit.console.operations import ConsoleOperations
from agentkit.console.session import ConsoleAccess
from agentkit.testing.harness import BotHarness

SHARED_TOKEN = "shared-console-token-0123456789"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    """One console app over a harness, and a signed-in (or not) test client."""

    app: Quart
    client: TestClientProtocol
    harness: BotHarness
    csrf: str = ""
    users: dict[str, str] = field(default_factory=dict)

    async def login(self, token: str = SHARED_TOKEN, name: str = "Dana",
                    address: str = "127.0.0.1") -> Any:
        """Sign in through the form; keeps the session's CSRF token."""
        response = await self.client.post(
            "/console/login", form={"token": token, "name": name},
            scope_base={"client": (address, 40000)},
        )
        if response.status_code == 303:
            page = await self.client.get("/console/health")
            found = _CSRF.search(await page.get_data(as_text=True))
            assert found, "a signed-in page carries the CSRF token"
            self.csrf = found.group(1)
        return response

    async def get(self, path: str) -> tuple[int, str]:
        response = await self.client.get(path)
        return response.status_code, await response.get_data(as_text=True)

    async def post(self, path: str, **form: str) -> Any:
        """POST a form with this session's CSRF token (unless ``csrf`` is given)."""
        return await self.client.post(path, form={"csrf": self.csrf, **form})


def make_console(
    h: BotHarness,
    *,
    shared_token: str = SHARED_TOKEN,
    users_file: UsersFile | None = None,
    regions: Sequence[str] = ("GB", "RO"),
    url_token: str | None = None,
    limiter: LoginLimiter | None = None,
    page_size: int = 50,
    url_role: Role | None = None,
    approvals: ApprovalDesk | None = None,
) -> Console:
    """The console blueprint over ``h``'s store, client and workers, on a Quart app of its own.

    Decisions go through ``approvals``, by default the harness's own desk.
    """
    access = ConsoleAccess(secret_key="test-session-key", shared_token=shared_token,
                           users=users_file, url_role=url_role)
    config = ConsoleConfig(
        access=access, bots=tuple(bot.name for bot in h.bots), regions=tuple(regions),
        calls_daily_max=h.settings.dial_daily_max, url_token=url_token,
        limiter=limiter or LoginLimiter(), page_size=page_size,
    )
    operations = ConsoleOperations(h.store, api=h.api, wake=h.workers.wake)
    app = Quart(__name__)
    app.register_blueprint(console_blueprint(config, h.store, operations, api=h.api,
                                             approvals=approvals or h.environment.approvals))
    return Console(app=app, client=app.test_client(), harness=h)
