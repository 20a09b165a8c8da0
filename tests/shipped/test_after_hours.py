"""The shipped after-hours bot, end to end: schedules and requests, simulator, chat sink."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agentkit.actions.record import ActionLog
from agentkit.runtime.scheduler import schedule_event
from agentkit.store.base import ActionRecord
from agentkit.testing import wait_until
from agentkit.testing.harness import BotHarness
from tests.shipped.helpers import CLOSED, MAIN, dead_jobs, harness, request, shipped

BOT = "after-hours"


async def started(h: BotHarness) -> None:
    """Wait for the start-up schedule event (the hours' current state) to be handled."""
    await wait_until(h.store.count_events, timeout=10, message="the start-up schedule event")
    await h.settle()


async def hours_change(h: BotHarness, state: str, at: datetime | None = None) -> None:
    """Store the schedule event the scheduler stores when the hours open or close."""
    (bot,) = h.bots
    listener = bot.listener("follow_the_hours")
    assert listener is not None and h.workers is not None
    await h.store.add_events([schedule_event(bot, listener, at or datetime.now(UTC), state)])
    h.workers.wake()
    await h.settle()


def main_flow(h: BotHarness) -> str:
    """The name of the flow the main number routes to."""
    number = h.sim.state.number_by_e164(MAIN)
    assert number is not None and number.call_flow_id is not None
    return h.sim.state.call_flows[number.call_flow_id].name


def flow_id(h: BotHarness, name: str) -> str:
    (found,) = [f.id for f in h.sim.state.call_flows.values() if f.name == name]
    return found


async def switches(h: BotHarness) -> list[ActionRecord]:
    """The bot's recorded number switches, oldest first."""
    return sorted(await h.store.actions_of_kind("attach_number", bot=BOT),
                  key=lambda r: r.created_at)


# on the schedule


async def test_closing_hours_route_the_main_number_to_after_hours(tmp_path: Path) -> None:
    """When the hours are closed, the main number goes to a new "After hours" voicemail flow."""
    async with harness(shipped("after_hours"), tmp_path, env=CLOSED) as h:
        await started(h)
        assert main_flow(h) == "After hours"
        night = h.sim.state.call_flows[flow_id(h, "After hours")]
        (note,) = h.chat_messages()
        assert await dead_jobs(h) == 0
    assert night.entry == "voicemail"
    assert night.blocks["voicemail"].type == "voicemail"
    assert note["title"] == f"{MAIN} now routes to After hours"
    assert note["text"] == "After hours: business hours."
    assert note["fields"] == {"Number": MAIN, "Flow": "After hours"}


async def test_opening_hours_route_back_to_the_day_flow(tmp_path: Path) -> None:
    """When the hours open again, the main number goes back to the flow it had by day."""
    async with harness(shipped("after_hours"), tmp_path, env=CLOSED) as h:
        await started(h)
        await hours_change(h, "open")
        assert main_flow(h) == "Main IVR"
        assert [m["title"] for m in h.chat_messages()] == [
            f"{MAIN} now routes to After hours", f"{MAIN} now routes to Main IVR",
        ]


async def test_open_hours_at_start_up_change_nothing(tmp_path: Path) -> None:
    """Starting in open hours leaves the number, the flows and the channel alone."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        flows = set(h.sim.state.call_flows)
        await started(h)
        assert set(h.sim.state.call_flows) == flows
        assert main_flow(h) == "Main IVR"
        assert h.chat_messages() == []
        assert await switches(h) == []


async def test_existing_after_hours_flow_reused(tmp_path: Path) -> None:
    """A flow already named "After hours" is used, not created again."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        assert h.api is not None
        mine = await h.api.call_flows.create(
            name="After hours", entry="closed",
            blocks={"closed": {"type": "voicemail", "mailbox_id": "vm_mine"}},
        )
        await hours_change(h, "closed")
        assert flow_id(h, "After hours") == mine.id
        assert main_flow(h) == "After hours"


async def test_schedule_event_stored_twice_switches_once(tmp_path: Path) -> None:
    """The same change stored by two schedulers switches the number and posts once."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        at = datetime(2030, 1, 7, 17, 30, tzinfo=UTC)
        await hours_change(h, "closed", at)
        await hours_change(h, "closed", at)
        assert main_flow(h) == "After hours"
        assert len(await switches(h)) == 1
        assert len(h.chat_messages()) == 1


# on request


async def test_request_close_then_open(tmp_path: Path) -> None:
    """An operator's close and open requests switch the number there and back, each noted."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        await request(h, BOT, "close")
        assert main_flow(h) == "After hours"
        await request(h, BOT, "open")
        assert main_flow(h) == "Main IVR"
        assert [m["text"] for m in h.chat_messages()] == [
            "After hours: asked by tester.", "Open: asked by tester.",
        ]
        assert await dead_jobs(h) == 0


async def test_request_close_twice_switches_once(tmp_path: Path) -> None:
    """Closing when already closed changes nothing and posts nothing."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        await request(h, BOT, "close")
        await request(h, BOT, "close")
        assert len(await switches(h)) == 1
        assert len(h.chat_messages()) == 1


async def test_every_switch_recorded_with_before_and_after(tmp_path: Path) -> None:
    """Each switch is in the action log with the flow the number had and the one it got."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        await request(h, BOT, "close")
        await request(h, BOT, "open")
        day, night = flow_id(h, "Main IVR"), flow_id(h, "After hours")
        number = h.sim.state.number_by_e164(MAIN)
        assert number is not None
        close, open_ = await switches(h)
        notes = h.chat_messages()
    assert (close.state, open_.state) == ("done", "done")
    assert close.detail == {"number_id": number.id, "before": day, "after": night,
                            "outcome": "attached"}
    assert open_.detail == {"number_id": number.id, "before": night, "after": day,
                            "outcome": "attached"}
    assert [m["reference"] for m in notes] == [close.key, open_.key]


async def test_no_model_needed(tmp_path: Path) -> None:
    """The bot switches flows without a model: with none configured nothing is asked."""
    async with harness(shipped("after_hours"), tmp_path, env=CLOSED, model=False) as h:
        await started(h)
        assert main_flow(h) == "After hours"
        assert h.llm.requests == []
        assert await dead_jobs(h) == 0


# reverting a recorded switch


async def test_revert_request_puts_the_number_back(tmp_path: Path) -> None:
    """Reverting a recorded close puts the number back in its day flow, recorded and noted."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        await request(h, BOT, "close")
        (close,) = await switches(h)
        await request(h, BOT, "revert", action=close.key)
        assert main_flow(h) == "Main IVR"
        _, revert = await switches(h)
        note = h.chat_messages()[-1]
    assert revert.detail["before"] == close.detail["after"]
    assert revert.detail["after"] == close.detail["before"]
    assert note["title"] == f"{MAIN} now routes to Main IVR"
    assert note["text"] == f"Reverted {close.key}: tester."


async def test_revert_refused_after_a_newer_change(tmp_path: Path) -> None:
    """A switch whose number was moved since is not reverted unless forced."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        await request(h, BOT, "close")
        (close,) = await switches(h)
        assert h.api is not None
        other = await h.api.call_flows.create(
            name="Holiday", entry="closed",
            blocks={"closed": {"type": "voicemail", "mailbox_id": "vm_holiday"}},
        )
        await h.api.numbers.attach(close.detail["number_id"], call_flow_id=other.id)
        await request(h, BOT, "revert", action=close.key)
        assert main_flow(h) == "Holiday"
        assert h.chat_messages()[-1]["title"] == f"Nothing reverted: {MAIN} moved since"
        await request(h, BOT, "revert", action=close.key, force="1")
        assert main_flow(h) == "Main IVR"


async def test_revert_of_an_unknown_action_says_so(tmp_path: Path) -> None:
    """Reverting an action key the bot never recorded changes nothing and says so."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        await request(h, BOT, "revert", action="evt_nope:after-hours:attach_number:close")
        assert main_flow(h) == "Main IVR"
        assert h.chat_messages()[-1]["title"].startswith("Nothing reverted")
        assert await dead_jobs(h) == 0


async def test_framework_revert_flow_undoes_a_recorded_switch(tmp_path: Path) -> None:
    """agentkit's own revert_flow puts back a number switched by attach_number."""
    async with harness(shipped("after_hours"), tmp_path) as h:
        await started(h)
        await request(h, BOT, "close")
        (close,) = await switches(h)
        assert h.environment is not None
        log = ActionLog(h.store, event_id=close.event_id, bot="operator", dry_run=False)
        await h.environment.flows.revert(log, close.key)
        assert main_flow(h) == "Main IVR"
