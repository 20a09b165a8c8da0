"""Approvals in Slack, end to end: the request, the clicks, and what reaches the phone."""

from __future__ import annotations

from pathlib import Path

from tests.approvals.support import click, leave_voicemail, voicemail_harness
from tests.shipped.helpers import CALLER


async def test_approve_places_the_callback_once(tmp_path: Path) -> None:
    """An approved callback is placed once, to the number shown; the message shows who."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h)
        assert h.calls_placed() == []
        await slack.wait_for("chat.postMessage")
        answer = await click(h, slack, approval.id)
        assert answer.status_code == 200
        await h.settle()
        await slack.wait_for("chat.update")
        (call,) = h.calls_placed()
        assert call.to == CALLER
