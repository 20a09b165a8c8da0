"""What the approval tests share: a harness with the Slack app pointed at a fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from agentkit.store import Approval
from agentkit.testing import BotHarness, wait_until
from agentkit.testing.slack import FakeSlack, signed_click
from tests.shipped.helpers import CALLER, WORDS, harness, shipped, triage

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVER = "U0APPROVER"
STRANGER = "U0STRANGER"
OTHER_NUMBER = "+442079460999"
BOT = "voicemail-callback"


def slack_env(slack: FakeSlack, **more: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APPROVAL_CHANNEL": "C0APPROVALS", "SLACK_API_URL": slack.api_url,
        "AGENTKIT_APPROVERS": f"{APPROVER},U0SECOND", "AGENTKIT_APPROVALS": "all_callbacks",
        **more,
    }


@asynccontextmanager
async def voicemail_harness(tmp_path: Path, **env: str) -> AsyncIterator[
        tuple[BotHarness, FakeSlack]]:
    """The shipped voicemail bot, every callback waiting for approval, Slack faked."""
    async with FakeSlack() as slack:
        async with harness(shipped("voicemail_callback"), tmp_path,
                           env=slack_env(slack, **env)) as h:
            yield h, slack


async def leave_voicemail(h: BotHarness, slack: FakeSlack, **answer: Any) -> Approval:
    """A voicemail asking for a callback; the approval it leads to, once asked in Slack."""
    h.llm.reply(triage(**answer))
    h.sim.leave_voicemail(CALLER, words=WORDS)
    await slack.wait_for("chat.postMessage")
    (posted,) = slack.posted("chat.postMessage")
    (approval_id,) = {e["value"] for b in posted["blocks"] if b["type"] == "actions"
                      for e in b["elements"]}
    approval = await h.store.get_approval(approval_id)
    assert approval is not None
    return approval


async def click(h: BotHarness, slack: FakeSlack, approval_id: str, action: str = "approve", *,
                user: str = APPROVER, secret: str = SIGNING_SECRET,
                **options: Any) -> httpx.Response:
    """Click an approval's button as Slack would send it, signed, over HTTP."""
    body, headers = signed_click(secret, approval_id, action, user=user,
                                 response_url=slack.response_url(user), **options)
    return await post_click(h, body, headers)


async def post_click(h: BotHarness, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST a body to the harness's /slack/interactions as it is."""
    async with httpx.AsyncClient() as client:
        return await client.post(h.url + "/slack/interactions", content=body, headers=headers)


async def until_ephemeral(slack: FakeSlack, count: int) -> list[dict[str, Any]]:
    await wait_until(lambda: len(slack.ephemeral) >= count, timeout=10,
                     message=f"{count} ephemeral replies")
    return slack.ephemeral
