"""A shadow bot as users run it: ``agentkit run`` with AGENTKIT_SHADOW, judged outside.

agentkit runs the shipped bots as a subprocess from a folder of its own (the set-up
of tests/approvals/test_served.py, approvals off); its team channel and its shadow
channel are HTTP sinks in this process, the simulator too.
"""

from __future__ import annotations

from agentkit.testing import HttpRecorder, wait_until
from tests.approvals.test_served import Served, served

__all__ = ["served"]


async def test_shadow_voicemail_bot_dials_nobody_and_posts_only_to_its_channel(
        served: Served) -> None:
    """The voicemail bot in shadow: no call at the simulator, nothing in the team's channel,
    its note in the shadow channel marked [shadow], its callback recorded as would-do."""
    async with HttpRecorder() as team, HttpRecorder() as shadow:
        agentkit = await served.start(
            AGENTKIT_APPROVALS="", AGENTKIT_SHADOW="voicemail-callback",
            AGENTKIT_SHADOW_CHANNEL=shadow.url + "/shadow",
            SLACK_WEBHOOK_URL=team.url + "/team")
        served.leave_voicemail()
        (note,) = [r.json() for r in await shadow.wait_for(1, timeout=20)]
        await wait_until(lambda: agentkit.logged("action.dry_run"), timeout=10,
                         message="the callback to be recorded as would-do")
        dry = agentkit.logged("action.dry_run")
    assert served.calls() == []
    assert team.requests == []
    assert note["title"].startswith("[shadow] Voicemail from")
    assert any(line.get("action") == "callback" and line.get("shadow") is True for line in dry)

