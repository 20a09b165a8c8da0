"""What an operator changes from the console: each change done, and recorded with who and when."""

from __future__ import annotations

import html
import re
from pathlib import Path

from agentkit import Bot, Context, VoicemailReceived
from agentkit.actions.callbacks import callback_key
from agentkit.testing.harness import BotHarness
from tests.console.support import make_console
from tests.console.test_pages import voicemail
from tests.shipped.helpers import CALLER, CLOSED, harness, shipped


def flaky_bot(broken: list[bool], handled: list[str]) -> Bot:
    """A bot whose handler raises while ``broken[0]`` holds."""
    bot = Bot("flaky")

    @bot.on("voicemail.received")
    async def handle(ctx: Context[VoicemailReceived]) -> None:
        if broken[0]:
            raise RuntimeError("the CRM is down\nTraceback line that varies")
        handled.append(ctx.event.id)

    return bot


def flow_bot() -> Bot:
    """A bot that renames the sandbox's main flow on each voicemail."""
    bot = Bot("flow-changer")

    @bot.on("voicemail.received")
    async def rename(ctx: Context[VoicemailReceived]) -> None:
        flow = [f async for f in ctx.api.call_flows.list(limit=10) if f.name.startswith("Main")]
        await ctx.actions.update_flow(flow[0].id, name="Main IVR (night)")

    return bot


async def console_changes(h: BotHarness) -> list[dict[str, object]]:
    """The console's changes in the action log, as (kind, detail) dicts."""
    found = []
    for kind in ("console.retry", "console.discard", "console.cancel", "console.revert"):
        for action in await h.store.actions_of_kind(kind, bot="console"):
            found.append({"kind": action.kind, "at": action.created_at, **action.detail})
    return found


async def test_a_dead_letter_retried_from_its_page_runs_and_succeeds(tmp_path: Path) -> None:
    """A handler that failed to the end is dead; fixed, and retried from the dead letters'
    page, it runs through the workers and succeeds; the retry is recorded with who did it."""
    broken, handled = [True], []
    async with BotHarness([flaky_bot(broken, handled)], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Call me.")
        await h.settle()
        (dead,) = await h.dead_jobs()
        console = make_console(h)
        await console.login(name="Dana")
        _, page = await console.get("/console/dead")
        assert "flaky" in page and "RuntimeError: the CRM is down" in html.unescape(page)
        assert "Traceback line" not in page  # grouped by the first line
        broken[0] = False
        response = await console.post(f"/console/dead/{dead.id}/retry", back="/console/dead")
        assert response.status_code == 303
        assert response.headers["Location"] == "/console/dead?note=retried"
        await h.settle()
        assert handled == [dead.event_id]
        assert await h.dead_jobs() == []
        (change,) = await console_changes(h)
    assert change["kind"] == "console.retry" and change["by"] == "Dana"
    assert change["shared_login"] is True and change["job_id"] == dead.id


async def test_a_group_of_dead_letters_is_retried_at_once(tmp_path: Path) -> None:
    """Retry all retries every dead letter of one bot and error, each recorded."""
    broken, handled = [True], []
    async with BotHarness([flaky_bot(broken, handled)], tmp_path) as h:
        for n in range(3):
            h.sim.leave_voicemail(f"+44207946000{n}", words="Call me.")
        await h.settle()
        assert len(await h.dead_jobs()) == 3
        (group,) = await h.store.dead_groups()
        console = make_console(h)
        await console.login()
        broken[0] = False
        response = await console.post("/console/dead/retry-group", bot="flaky",
                                      error=group.error, back="/console/dead")
        assert response.status_code == 303
        await h.settle()
        assert len(handled) == 3 and await h.dead_jobs() == []
        assert len(await console_changes(h)) == 3


async def test_discarding_needs_a_reason_and_keeps_it(tmp_path: Path) -> None:
    """Discard without a reason is a 400; with one, the job leaves the dead letters for
    good and the reason is in the action log."""
    broken, handled = [True], []
    async with BotHarness([flaky_bot(broken, handled)], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Call me.")
        await h.settle()
        (dead,) = await h.dead_jobs()
        console = make_console(h)
        await console.login(name="Dana")
        refused = await console.post(f"/console/dead/{dead.id}/discard", reason="  ")
        assert refused.status_code == 400
        assert await h.dead_jobs() != []
        done = await console.post(f"/console/dead/{dead.id}/discard",
                                  reason="spam caller, handled by phone")
        assert done.status_code == 303
        assert await h.dead_jobs() == []
        assert (await h.store.get_job(dead.id)).state == "discarded"  # type: ignore[union-attr]
        again = await console.post(f"/console/dead/{dead.id}/retry")
        assert again.status_code == 404
        (change,) = await console_changes(h)
    assert change["reason"] == "spam caller, handled by phone" and change["by"] == "Dana"


async def test_a_scheduled_callback_is_cancelled_and_never_placed(tmp_path: Path) -> None:
    """Cancelling a callback planned for later marks it cancelled, drops its planned
    attempt, frees the caller for a new callback, and records who cancelled it."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=CLOSED) as h:
        call_id = await voicemail(h)
        (voicemail_event,) = h.sim.deliveries.emitted("voicemail.received")
        key = callback_key(voicemail_event.id, "voicemail-callback")
        assert await h.store.scheduled("callback:") != []
        console = make_console(h)
        await console.login(name="Dana")
        response = await console.post("/console/callbacks/cancel", key=key,
                                      back=f"/console/calls/{call_id}")
        assert response.status_code == 303
        action = await h.store.get_action(key)
        assert action is not None and action.state == "failed"
        assert action.detail["outcome"] == "cancelled"
        assert await h.store.scheduled("callback:") == []
        assert h.calls_placed() == []
        again = await console.post("/console/callbacks/cancel", key=key)
        assert again.status_code == 409
        _, page = await console.get(f"/console/calls/{call_id}")
        (change,) = await console_changes(h)
    assert change["kind"] == "console.cancel" and change["by"] == "Dana"
    assert "console: cancel" in page and "cancelled in the console by Dana" in page


async def test_a_flow_change_is_shown_as_a_diff_and_reverted(tmp_path: Path) -> None:
    """The flows page shows the rename as a diff; revert puts the flow back in the
    simulator, is recorded, and the change can no longer be reverted."""
    async with BotHarness([flow_bot()], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Hello.")
        await h.settle()
        (change,) = await h.store.actions_of_kind("update_flow")
        console = make_console(h)
        await console.login(name="Dana")
        _, page = await console.get("/console/flows")
        text = html.unescape(page)
        assert '-  "name": "Main IVR"' in text and '+  "name": "Main IVR (night)"' in text
        response = await console.post("/console/flows/revert", key=change.key,
                                      back="/console/flows")
        assert response.status_code == 303
        flow = h.sim.state.call_flows[change.detail["flow_id"]]
        assert flow.name == "Main IVR"
        _, page = await console.get("/console/flows")
        assert "reverted" in page
        assert not re.search(rf'name="key" value="{re.escape(change.key)}"', page)
        (recorded,) = await console_changes(h)
    assert recorded["change"] == change.key and recorded["by"] == "Dana"


async def test_a_revert_is_refused_when_the_flow_changed_since(tmp_path: Path) -> None:
    """The revert's own check holds: a flow changed after the recorded change gets 409."""
    async with BotHarness([flow_bot()], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Hello.")
        await h.settle()
        (change,) = await h.store.actions_of_kind("update_flow")
        flow_id = change.detail["flow_id"]
        await h.api.call_flows.update(flow_id, name="Main IVR (edited by hand)")
        console = make_console(h)
        await console.login()
        response = await console.post("/console/flows/revert", key=change.key)
        assert response.status_code == 409
        assert "changed after" in await response.get_data(as_text=True)
        assert h.sim.state.call_flows[flow_id].name == "Main IVR (edited by hand)"
        assert await console_changes(h) == []


async def test_a_change_made_from_a_refreshed_part_returns_to_the_whole_page(
        tmp_path: Path) -> None:
    """Forms in a live part fetched as a fragment still send the operator back to the page,
    not to the bare fragment."""
    broken, handled = [True], []
    async with BotHarness([flaky_bot(broken, handled)], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Call me.")
        await h.settle()
        (group,) = await h.store.dead_groups()
        console = make_console(h)
        await console.login()
        _, fragment = await console.get("/console/dead?fragment=1")
        backs = set(re.findall(r'name="back" value="([^"]*)"', fragment))
        broken[0] = False
        response = await console.post("/console/dead/retry-group", bot="flaky",
                                      error=group.error, back=backs.pop())
    assert backs == set()
    assert response.headers["Location"] == "/console/dead?note=retried-group"
