"""The shipped missed-call bot in the sandbox: one callback per caller, never to a withheld
number or after a one-ring call, at the next opening when closed.

The join's two-minute grace passes at once through ``run_scheduled``, as the tests do for
every timer; the simulator's missed calls ring 8 s unless a test says otherwise.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agentkit.testing.harness import BotHarness
from tests.shipped.helpers import CALLER, CLOSED, PROMPTS, shipped, titled, triage

RING = 8.0


async def grace_passes(h: BotHarness) -> None:
    await h.settle()
    await h.run_scheduled("join-timeout")
    await h.settle()


def called_back(h: BotHarness) -> int:
    return len([c for c in h.calls_placed() if c.to == CALLER])


async def test_a_missed_call_without_voicemail_is_called_back_once(tmp_path: Path) -> None:
    """A call that rang out and left no voicemail: one callback to the caller, and a note
    saying who called, when, and that it is being called back."""
    async with BotHarness([shipped("missed_call")], tmp_path, prompts=PROMPTS) as h:
        h.sim.inbound_call(CALLER, outcome="missed", ring=RING)
        await grace_passes(h)
        (note,) = titled(h, "Missed call from")
    assert called_back(h) == 1
    assert CALLER in note["title"] and note["fields"]["Callback"] == "calling back now"
    assert note["fields"]["Calls"] == "1"


async def test_a_missed_call_then_a_voicemail_is_one_callback(tmp_path: Path) -> None:
    """A missed call, then a voicemail on another call: the voicemail bot calls back, and the
    missed-call bot does not call a second time."""
    bots = [shipped("missed_call"), shipped("voicemail_callback")]
    async with BotHarness(bots, tmp_path, prompts=PROMPTS) as h:
        h.llm.reply(triage())
        h.sim.inbound_call(CALLER, outcome="missed", ring=RING)
        await h.settle()
        h.sim.leave_voicemail(CALLER, words="It's Ana, please call me back.")
        await grace_passes(h)
    assert called_back(h) == 1
    assert titled(h, "Missed call from") == []


async def test_three_missed_calls_are_one_callback(tmp_path: Path) -> None:
    """Three missed calls in a row: one callback, one note that counts three calls."""
    async with BotHarness([shipped("missed_call")], tmp_path, prompts=PROMPTS) as h:
        for _ in range(3):
            h.sim.inbound_call(CALLER, outcome="missed", ring=RING)
            await h.settle()
        await grace_passes(h)
        notes = titled(h, "Missed call from")
    assert called_back(h) == 1
    assert [n["fields"]["Calls"] for n in notes] == ["3"]


async def test_a_withheld_number_is_noted_not_dialled(tmp_path: Path) -> None:
    """A withheld caller ID: no call anywhere, a note saying there is no number to call."""
    async with BotHarness([shipped("missed_call")], tmp_path, prompts=PROMPTS) as h:
        h.sim.inbound_call("anonymous", outcome="missed", ring=RING)
        await grace_passes(h)
        (note,) = titled(h, "Missed call from a withheld number")
    assert h.calls_placed() == []
    assert "no number to call back" in note["text"]


async def test_a_one_ring_call_is_not_called_back(tmp_path: Path) -> None:
    """A call that rang 2 s, as Wangiri lures ring: no callback and no note."""
    async with BotHarness([shipped("missed_call")], tmp_path, prompts=PROMPTS) as h:
        h.sim.inbound_call(CALLER, outcome="missed", ring=2.0)
        await grace_passes(h)
    assert h.calls_placed() == [] and titled(h, "Missed call") == []


async def test_closed_hours_call_back_at_the_next_opening(tmp_path: Path) -> None:
    """Missed while closed: nobody is dialled now; the callback waits for the next opening,
    and the note says when."""
    async with BotHarness([shipped("missed_call")], tmp_path, prompts=PROMPTS,
                          env=CLOSED) as h:
        h.sim.inbound_call(CALLER, outcome="missed", ring=RING)
        await grace_passes(h)
        (note,) = titled(h, "Missed call from")
        waiting = await h.store.scheduled("callback:")
    assert h.calls_placed() == []
    assert note["fields"]["Callback"].startswith("callback planned for")
    assert len(waiting) == 1


def test_the_grace_and_numbers_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MISSED_CALL_GRACE_SECONDS sets how long the bot waits for a voicemail, and
    MISSED_CALL_NUMBERS the numbers it serves."""
    monkeypatch.setenv("MISSED_CALL_GRACE_SECONDS", "300")
    monkeypatch.setenv("MISSED_CALL_NUMBERS", '["+40264000111"]')
    bot = shipped("missed_call")
    (listener,) = bot.listeners
    assert listener.join_timeout == timedelta(seconds=300)
    assert bot.settings is not None and bot.settings.model_dump()["numbers"] == ["+40264000111"]
