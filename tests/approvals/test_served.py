"""Slack approvals as ``agentkit run`` serves them: asked by one process, decided by the next.

The simulator (phone.systems) and a fake Slack run in this process and outlive
agentkit; agentkit runs the shipped bots as subprocesses from a folder of its
own, on one SQLite store file, with every callback waiting for approval and
no model (so the voicemail bot calls every caller back). Clicks are signed as
Slack signs them and posted over HTTP to ``/slack/interactions``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentkit.ingress.receiver import WEBHOOK_PATH
from agentkit.odygy.models import Call
from agentkit.sim import SimConfig, Simulator, Timings
from agentkit.store import Approval, store_for_url
from agentkit.testing import wait_until
from agentkit.testing.slack import FakeSlack, signed_click
from tests.approvals.support import APPROVER, SIGNING_SECRET, STRANGER, slack_env
from tests.process import API_KEY, SECRET, AgentkitProcess, run_env

ROOT = Path(__file__).resolve().parents[2]
BOTS = str(ROOT / "bots")
# The simulator's account is Romanian: by default only Romanian numbers may be called.
CALLER = "+40722123456"


@dataclass
class Served:
    """The outside world in this process; agentkit, started as often as asked, in others."""

    tmp: Path
    sim: Simulator
    slack: FakeSlack
    processes: list[AgentkitProcess] = field(default_factory=list)

    @property
    def database(self) -> str:
        return f"sqlite:///{self.tmp / 'srv' / 'agentkit.db'}"

    async def start(self, **more: str) -> AgentkitProcess:
        """``agentkit run`` with the shipped bots, from an empty folder, taking the webhooks
        (``more``: variables added to or replacing the Slack app's)."""
        env = run_env(
            self.tmp, self.database, ODYGY_API_KEY=API_KEY, ODYGY_WEBHOOK_SECRET=SECRET,
            ODYGY_BASE_URL=self.sim.base_url, AGENTKIT_BUSINESS_HOURS="always",
            **{**slack_env(self.slack), **more},
        )
        process = AgentkitProcess(["--port", "0", "--bots", BOTS, "--poll-seconds", "0.1"],
                                  env, cwd=str(self.tmp / "elsewhere"))
        self.processes.append(process)
        await process.start()
        self.sim.add_webhook(process.url + WEBHOOK_PATH, SECRET)
        return process

    def calls(self) -> list[Call]:
        """The calls agentkit placed."""
        return self.sim.calls(direction="outbound")

    def leave_voicemail(self) -> None:
        self.sim.leave_voicemail(CALLER, words="Hi, my internet is down. Please call me back.")

    async def asked(self) -> str:
        """Leave a voicemail; once Slack has the request, the approval id its buttons carry."""
        self.leave_voicemail()
        await self.slack.wait_for("chat.postMessage", timeout=15)
        (request,) = self.slack.posted("chat.postMessage")
        buttons = {button["action_id"]: button for block in request["blocks"]
                   if block["type"] == "actions" for button in block["elements"]}
        assert {a: b["text"]["text"] for a, b in buttons.items()} == {
            "approve": "Approve", "reject": "Reject"}
        approval_id = buttons["approve"]["value"]
        assert buttons["reject"]["value"] == approval_id
        return str(approval_id)

    async def approval(self, approval_id: str) -> Approval | None:
        """The approval as the store has it now."""
        store = store_for_url(self.database)
        await store.open()
        try:
            return await store.get_approval(approval_id)
        finally:
            await store.close()

    async def click(self, process: AgentkitProcess, approval_id: str, *, user: str = APPROVER,
                    secret: str = SIGNING_SECRET) -> httpx.Response:
        """Click Approve as ``user``, signed with ``secret``, over HTTP."""
        body, headers = signed_click(secret, approval_id, "approve", user=user,
                                     response_url=self.slack.response_url(user))
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(process.url + "/slack/interactions", content=body,
                                   headers=headers)

    async def ephemeral(self, count: int) -> list[dict[str, Any]]:
        await wait_until(lambda: len(self.slack.ephemeral) >= count, timeout=10,
                         message=f"{count} ephemeral Slack replies")
        return self.slack.ephemeral


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    (tmp_path / "srv").mkdir()
    (tmp_path / "elsewhere").mkdir()
    config = SimConfig(api_key=API_KEY, time_scale=0.01, timings=Timings(call_creation=0.0))
    async with Simulator(config) as sim, FakeSlack() as slack:
        found = Served(tmp_path, sim, slack)
        try:
            yield found
        finally:
            for process in found.processes:
                await process.kill()


async def test_an_approval_asked_before_a_restart_is_carried_out_once_after_it(
        served: Served) -> None:
    """A callback asked in Slack by one process is approved in the next one: one call is placed,
    the message says who approved, and a second click changes nothing."""
    first = await served.start()
    approval_id = await served.asked()
    # Stopped once the request is recorded as posted, as a service manager might at any time.
    await wait_until(lambda: first.logged("approval.posted"), timeout=10,
                     message="the request to be recorded as posted")
    first.signal(signal.SIGTERM)
    assert await first.wait() == 0
    assert served.calls() == []
    pending = await served.approval(approval_id)
    assert pending is not None and pending.state == "pending"

    second = await served.start()
    assert (await served.click(second, approval_id)).status_code == 200
    await wait_until(served.calls, timeout=15, message="the approved callback to be placed")
    await served.slack.wait_for("chat.update", timeout=15)
    assert [call.to for call in served.calls()] == [CALLER]
    message = served.slack.message_for(approval_id)
    assert message is not None
    assert f"*Approved* by <@{APPROVER}>" in json.dumps(message["blocks"])
    assert message["text"].startswith("Approved: callback to " + CALLER)

    assert (await served.click(second, approval_id)).status_code == 200
    (reply,) = await served.ephemeral(1)
    assert reply["response_type"] == "ephemeral"
    assert f"already approved by Slack user {APPROVER}" in reply["text"]
    assert [call.to for call in served.calls()] == [CALLER]
    assert len(second.logged("approval.decided")) == 1
    assert len(served.slack.posted("chat.postMessage")) == 1


async def test_a_strangers_click_and_a_forged_click_place_no_call(served: Served) -> None:
    """A click by someone not in AGENTKIT_APPROVERS is told it is not allowed, a badly signed
    click is refused with 401, and the callback still waits."""
    agentkit = await served.start()
    approval_id = await served.asked()

    assert (await served.click(agentkit, approval_id, user=STRANGER)).status_code == 200
    (reply,) = await served.ephemeral(1)
    assert reply["response_type"] == "ephemeral"
    assert "not allowed" in reply["text"]
    forged = await served.click(agentkit, approval_id, secret="not-the-signing-secret-0000")
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_signature"

    approval = await served.approval(approval_id)
    assert approval is not None and approval.state == "pending"
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(agentkit.url + "/metrics")).text
    assert "agentkit_approvals_waiting 1.0" in metrics
    assert agentkit.logged("approval.decided") == []
    assert served.slack.posted("chat.update") == []
    assert served.calls() == []
