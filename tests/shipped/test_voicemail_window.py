"""A callback at the time the caller asked for: the voicemail bot with a clock the test moves.

The fake model answers with the window a real model would resolve; agentkit checks
it against the test's clock, schedules the callback at its start (clamped into
business hours) and places it when that comes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agentkit.testing import ManualClock
from tests.shipped.helpers import CALLER, WORDS, harness, shipped, titled, triage

ZONE = "Europe/Bucharest"
LOCAL = ZoneInfo(ZONE)
ALWAYS = {"AGENTKIT_BUSINESS_HOURS": "always", "AGENTKIT_TIME_ZONE": ZONE}
DAYTIME = {"AGENTKIT_BUSINESS_HOURS": f"Mon-Sun 09:00-17:00 {ZONE}"}


def window(start: datetime, end: datetime | None, words: str) -> dict[str, Any]:
    """A triage answer asking for a call between ``start`` and ``end``, as local times."""
    return triage(callback_window=words, callback_after=start.astimezone(LOCAL).isoformat(),
                  callback_before=end.astimezone(LOCAL).isoformat() if end else None)


def local(moment: datetime) -> str:
    return f"{moment.astimezone(LOCAL):%a %d %b %H:%M %Z}"


async def test_the_prompt_gives_the_voicemail_time_in_the_business_zone(tmp_path: Path) -> None:
    """The model is told when the voicemail was left, in the business's local time and zone,
    to resolve "tomorrow morning" against."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=ALWAYS) as h:
        h.llm.reply(triage())
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (voicemail,) = h.sim.deliveries.emitted("voicemail.received")
        prompt = "\n".join(m["content"] for m in h.llm.messages(0))
    left = datetime.fromisoformat(voicemail.data["received_at"]).astimezone(LOCAL)
    assert f"left on {left:%A %Y-%m-%d %H:%M} (UTC{left:%z})" in prompt
    assert f"time zone {ZONE}" in prompt


async def test_the_callback_waits_for_the_window_and_is_placed_at_its_start(
    tmp_path: Path,
) -> None:
    """"After 3pm", two hours from now: nobody is dialled now; the callback is due at the
    window's start, the note says when and what was asked, and it is placed when it comes."""
    clock = ManualClock()
    start = clock() + timedelta(hours=2)
    async with harness(shipped("voicemail_callback"), tmp_path, env=ALWAYS, clock=clock) as h:
        h.llm.reply(window(start, start + timedelta(hours=3), "after 3pm"))
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        assert h.calls_placed() == []
        (task,) = await h.store.scheduled("callback:")
        (note,) = titled(h, "Voicemail from")
        assert task.run_at == start + timedelta(seconds=5)  # high urgency: 5 s after
        assert note["fields"]["Callback"] == (
            f"callback planned for {local(task.run_at)} (asked: after 3pm)")
        clock.set(task.run_at)
        await h.run_scheduled("callback:")
        await h.settle()
        assert [c.to for c in h.calls_placed()] == [CALLER]


async def test_a_window_outside_business_hours_starts_at_the_next_opening(
    tmp_path: Path,
) -> None:
    """"Tomorrow from 7", with hours from 9: the callback is planned for 09:00 that day."""
    clock = ManualClock()
    tomorrow = (clock().astimezone(LOCAL) + timedelta(days=1)).date()
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 7, tzinfo=LOCAL)
    async with harness(shipped("voicemail_callback"), tmp_path, env=DAYTIME, clock=clock) as h:
        h.llm.reply(window(start, start + timedelta(hours=4), "tomorrow from 7"))
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (task,) = await h.store.scheduled("callback:")
    assert task.run_at == start.replace(hour=9).astimezone(UTC) + timedelta(seconds=5)
    assert h.calls_placed() == []


async def test_a_window_in_the_past_is_ignored_and_the_note_says_so(tmp_path: Path) -> None:
    """The clock is a day on: the window the model gave has passed, so the caller is called
    back now, and the note says the window was ignored."""
    clock = ManualClock(datetime.now(UTC) + timedelta(days=1))
    passed = clock() - timedelta(hours=5)
    async with harness(shipped("voicemail_callback"), tmp_path, env=ALWAYS, clock=clock) as h:
        h.llm.reply(window(passed, passed + timedelta(hours=2), "this morning"))
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (note,) = titled(h, "Voicemail from")
        assert [c.to for c in h.calls_placed()] == [CALLER]
    assert note["fields"]["When"] == "this morning (ignored: it is in the past)"
    assert note["fields"]["Callback"] == "calling back now"


async def test_a_window_too_far_ahead_is_ignored(tmp_path: Path) -> None:
    """Ten days ahead is beyond the 7 days a window may reach: called back now, noted."""
    clock = ManualClock()
    far = clock() + timedelta(days=10)
    async with harness(shipped("voicemail_callback"), tmp_path, env=ALWAYS, clock=clock) as h:
        h.llm.reply(window(far, None, "in ten days"))
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (note,) = titled(h, "Voicemail from")
        assert [c.to for c in h.calls_placed()] == [CALLER]
    assert note["fields"]["When"] == "in ten days (ignored: more than 7 days ahead)"


async def test_an_unreadable_window_leaves_the_rest_of_the_triage(tmp_path: Path) -> None:
    """A start that is no date-time is dropped alone: the urgency, reason and callback stand."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=ALWAYS) as h:
        h.llm.reply(triage(callback_after="after lunch", callback_before=42))
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (note,) = titled(h, "Voicemail from")
        assert [c.to for c in h.calls_placed()] == [CALLER]
    assert note["text"] == "invoice 4011 is wrong" and note["fields"]["Urgency"] == "high"
    assert "'after lunch' is not a date-time; dropped" in note["fields"]["When"]
