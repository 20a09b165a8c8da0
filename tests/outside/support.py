"""agentkit as a user deploys it, tried from outside.

A ``Deployment`` copies the project's bots and prompts to ``<tmp>/srv/app``, as
a user's project would sit on a server, and starts ``agentkit run`` from an
empty folder elsewhere with ``--bots <tmp>/srv/app/bots`` (as a service manager
does), with the settings a real deployment has: its own API key and a strong
webhook secret, no sandbox, no dial countries (the account's only). The
simulator in this process is phone.systems; the model is a fake that obeys the
caller word for word; chat goes to a recorder posing as Slack.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.ingress.receiver import WEBHOOK_PATH
from agentkit.odygy.models import Call
from agentkit.sim import Delivery, SimConfig, Simulator, Timings
from agentkit.store import Store, store_for_url
from agentkit.testing import wait_until
from agentkit.testing.fake_llm import FakeLlm, minimal_answer
from agentkit.testing.harness import make_due
from agentkit.testing.recorder import HttpRecorder
from tests.process import AgentkitProcess

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "ps_live_outside_0123456789abcdef"
SECRET = "whsec_outside_" + "7f3a9c1e5b2d4086" * 2
# The simulator's account is Romanian: by default only Romanian numbers may be called.
RO_CALLER = "+40722123456"
RO_OTHER = "+40722123457"
ACCOUNT_NUMBERS = ("+40264000111", "+40264000222", "+442079460123")
_NUMBER = re.compile(r"\+\d[\d ]{5,}\d")
_LINE = re.compile(r"^\[\d+:\d\d\.\d\] [^:]+: ", re.M)


def obedient_model(body: dict[str, Any]) -> str:
    """A model that does what the caller says: the number as spoken, the words as said.

    Answers the voicemail triage; any other task gets the smallest valid answer.
    """
    schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
    if "callback_number" not in schema.get("properties", {}):
        return str(minimal_answer(body))
    prompt = body["messages"][-1]["content"]
    inside = prompt.split("<transcript>")[-1].split("</transcript>")[0]
    words = " ".join(_LINE.sub("", inside).split())
    spoken = _NUMBER.search(words)
    return json.dumps({
        "caller_name": None, "reason": words or "a voicemail", "urgency": "high",
        "wants_callback": True, "callback_window": None,
        "callback_number": spoken.group(0) if spoken else None,
        "spam": False, "language": "en",
    })


def sim_config() -> SimConfig:
    """A simulator with its own key, quick calls, and deliveries retried for a while."""
    return SimConfig(
        api_key=API_KEY, time_scale=0.01, timings=Timings(call_creation=0.0),
        delivery=Delivery(timeout=10.0, retry_delays=(50, 100, 200, 400, 800)),
    )


@dataclass
class Deployment:
    """A user's project on disk, the outside world in this process, agentkit in others."""

    tmp: Path
    sim: Simulator
    llm: FakeLlm
    chat: HttpRecorder
    database: str
    processes: list[AgentkitProcess] = field(default_factory=list)

    @property
    def app(self) -> Path:
        return self.tmp / "srv" / "app"

    @property
    def elsewhere(self) -> Path:
        return self.tmp / "elsewhere"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "ODYGY_API_KEY": API_KEY,
            "ODYGY_WEBHOOK_SECRET": SECRET,
            "ODYGY_BASE_URL": self.sim.base_url,
            "AGENTKIT_DATABASE_URL": self.database,
            "AGENTKIT_BUSINESS_HOURS": "always",
            "AGENTKIT_MODEL": self.llm.model,
            "OPENAI_BASE_URL": self.llm.base_url,
            "OPENAI_API_KEY": "sk-outside-0000000000",
            "SLACK_WEBHOOK_URL": self.chat.url + "/slack",
            **extra,
        }

    async def start(self, *args: str, ready: bool = True, **env: str) -> AgentkitProcess:
        """``agentkit run --bots <app>/bots ARGS`` from the empty folder, ready to take work."""
        process = AgentkitProcess(
            ["--port", "0", "--bots", str(self.app / "bots"), "--poll-seconds", "0.1",
             *args],
            self.env(**env), cwd=str(self.elsewhere),
        )
        self.processes.append(process)
        await process.start(ready=ready)
        if ready and "--workers-only" not in args:
            self.sim.add_webhook(process.url + WEBHOOK_PATH, SECRET)
        return process

    def calls(self) -> list[Call]:
        """Calls agentkit placed, oldest first."""
        return self.sim.calls(direction="outbound")

    def notes(self) -> list[str]:
        """Every chat message posted, as the raw JSON Slack received."""
        return [r.body.decode() for r in self.chat.requests]

    def log(self) -> str:
        return "\n".join(p.output() for p in self.processes)

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for p in self.processes for line in p.logged(event)]

    async def store(self) -> Store:
        store = store_for_url(self.database)
        await store.open()
        return store

    async def settle(self, *, callbacks: int | None = None, timeout: float = 30.0) -> None:
        """Wait until the simulator has delivered everything and no job is due or running.

        With ``callbacks``, also until that many callbacks have finished.
        """
        store = await self.store()
        try:
            async def quiet() -> bool:
                await self.sim.settle(timeout)
                if callbacks is not None and len(self.logged("callback.finished")) < callbacks:
                    return False
                return (await store.count_due(within=2.0) == 0 and not self.sim.engine.busy
                        and not self.sim.dispatcher.busy)

            await wait_until(quiet, timeout=timeout, interval=0.05,
                             message="the deployment to settle")
        finally:
            await store.close()

    async def run_retries(self) -> int:
        """Make the scheduled callback retries due now, as if their wait had passed."""
        store = await self.store()
        try:
            return len(await make_due(store, "callback:"))
        finally:
            await store.close()


def project(tmp: Path) -> Path:
    """The project's bots and prompts, copied to ``<tmp>/srv/app``."""
    app = tmp / "srv" / "app"
    shutil.copytree(ROOT / "bots", app / "bots", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "prompts", app / "prompts")
    (tmp / "elsewhere").mkdir()
    return app


@asynccontextmanager
async def deployment(tmp: Path, database: str | None = None) -> AsyncIterator[Deployment]:
    """The outside world, with agentkit's project in place; processes are stopped after."""
    project(tmp)
    async with Simulator(sim_config()) as sim, FakeLlm(responder=obedient_model) as llm, \
            HttpRecorder() as chat:
        found = Deployment(tmp, sim, llm, chat,
                           database or f"sqlite:///{tmp / 'srv' / 'agentkit.db'}")
        try:
            yield found
        finally:
            for process in found.processes:
                await process.kill()


def digit_groups(texts: Sequence[str], groups: Sequence[str]) -> list[str]:
    """The ``groups`` (digit runs) that appear whole in any of ``texts``."""
    return sorted({g for g in groups for text in texts
                   if re.search(rf"(?<!\d){re.escape(g)}(?!\d)", text)})
