"""What the shipped voicemail bot may dial, end to end: the policy holds at every attempt,
one open callback per caller, the caps, the do-not-call list and the calls switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentkit.store.base import CALLS_PAUSED, DialClaim
from agentkit.testing.harness import BotHarness
from tests.shipped.helpers import CALLER, MAIN, harness, shipped, titled

SPACED = "+44 20 7946 0999"
SPACED_E164 = "+442079460999"
OWN_LONDON = "+442079460123"  # the sandbox account's own London number


def triage(**fields: Any) -> dict[str, Any]:
    return {
        "caller_name": None, "reason": "asks to be called back", "urgency": "normal",
        "wants_callback": True, "callback_window": None, "callback_number": None,
        "spam": False, "language": "en", **fields,
    }


def bot_harness(tmp_path: Path, **env: str) -> BotHarness:
    return harness(shipped("voicemail_callback"), tmp_path, env=env)


async def test_number_said_with_spaces_is_called_once_in_e164(tmp_path: Path) -> None:
    """A model answer '+44 20 7946 0999' is dialled once, as +442079460999, and shown so."""
    async with bot_harness(tmp_path) as h:
        h.llm.reply(triage(callback_number=SPACED))
        h.sim.leave_voicemail(CALLER, words=f"Call me back on {SPACED} please.")
        await h.settle()
        (call,) = h.calls_placed()
        (note,) = titled(h, "Voicemail from")
        assert await h.dead_jobs() == []
    assert call.to == SPACED_E164
    assert note["fields"]["Callback number"] == SPACED_E164


async def test_account_own_number_is_never_called(tmp_path: Path) -> None:
    """'Call me back on' the account's own number: that number is refused, the caller is called."""
    async with bot_harness(tmp_path) as h:
        h.llm.reply(triage(callback_number="+44 20 7946 0123"))
        h.sim.leave_voicemail(CALLER, words="Call me back on 020 7946 0123.")
        await h.settle()
        calls = h.calls_placed()
        (note,) = titled(h, "Voicemail from")
    assert [c.to for c in calls] == [CALLER]
    assert "account's own numbers" in note["fields"]["Refused number"]


async def test_caller_abroad_is_not_called_back(tmp_path: Path) -> None:
    """A Somali caller asking for a call back is not called: the country is not allowed."""
    async with bot_harness(tmp_path) as h:
        h.llm.reply(triage())
        h.sim.leave_voicemail("+252611234567", words="Please call me back urgently.")
        await h.settle()
        (note,) = titled(h, "Voicemail from")
        assert h.calls_placed() == []
    assert "outside the countries allowed" in note["fields"]["Callback"]


async def test_later_voicemails_join_the_open_callback(tmp_path: Path) -> None:
    """Three unanswered voicemails from one caller: one callback, at most three calls, and
    the later notes list every voicemail."""
    async with bot_harness(tmp_path) as h:
        h.sim.script_outbound(CALLER, ["no_answer"] * 9)
        for reason in ("first", "second", "third"):
            h.llm.reply(triage(reason=reason))
            h.sim.leave_voicemail(CALLER, words=f"The {reason} message, call me back.")
            await h.settle()
        for _ in range(3):
            await h.run_scheduled("callback:")
            await h.settle()
        calls = h.calls_placed()
        notes = titled(h, "Voicemail from")
        outcome = titled(h, "Callback to")
    assert len(calls) == 3
    assert notes[-1]["fields"]["Voicemails"] == "1. first\n2. second\n3. third"
    assert notes[-1]["fields"]["Callback"].startswith("no second callback: this caller already")
    assert len(outcome) == 1 and outcome[0]["fields"]["Voicemails"] == "3"


async def test_simultaneous_voicemails_from_one_caller_get_one_call(tmp_path: Path) -> None:
    """Ten voicemails from one number at the same moment lead to exactly one call."""
    async with bot_harness(tmp_path) as h:
        h.llm.reply(*[triage(reason=f"message {n}") for n in range(10)])
        for n in range(10):
            h.sim.leave_voicemail(CALLER, words=f"Message {n}: call me back.")
        await h.settle(timeout=30)
        assert len(h.calls_placed()) == 1
        assert await h.dead_jobs() == []


async def test_retries_count_against_the_daily_cap(tmp_path: Path) -> None:
    """With two calls already claimed today, an unanswered callback makes one more, no retry."""
    async with bot_harness(tmp_path) as h:
        for n in range(2):
            await h.store.claim_dial(DialClaim(f"earlier{n}", 1, CALLER, "x", 3, 500,
                                               datetime.now(UTC) - timedelta(days=1)))
        h.sim.script_outbound(CALLER, ["no_answer"] * 3)
        h.llm.reply(triage())
        h.sim.leave_voicemail(CALLER, words="Call me back.")
        await h.settle()
        await h.run_scheduled("callback:")
        await h.settle()
        (outcome,) = titled(h, "Callback to")
        assert len(h.calls_placed()) == 1
    assert "already called 3 times today" in outcome["text"]


async def test_do_not_call_list_is_checked_again_before_a_retry(tmp_path: Path) -> None:
    """A number put on the do-not-call list after the first attempt gets no retry."""
    async with bot_harness(tmp_path) as h:
        h.sim.script_outbound(CALLER, ["busy", "busy"])
        h.llm.reply(triage())
        h.sim.leave_voicemail(CALLER, words="Call me back.")
        await h.settle()
        await h.store.add_do_not_call(CALLER, reason="asked to stop", added_by="ops")
        await h.run_scheduled("callback:")
        await h.settle()
        (outcome,) = titled(h, "Callback to")
        assert len(h.calls_placed()) == 1
    assert "do-not-call list" in outcome["text"]


async def test_paused_callbacks_wait_and_are_placed_on_resume(tmp_path: Path) -> None:
    """While calls are paused nothing is dialled; on resume the waiting callback is placed."""
    async with bot_harness(tmp_path) as h:
        await h.store.set_switch(CALLS_PAUSED, True, changed_by="ops")
        h.llm.reply(triage())
        h.sim.leave_voicemail(CALLER, words="Call me back.")
        await h.settle()
        (note,) = titled(h, "Voicemail from")
        assert h.calls_placed() == []
        assert note["fields"]["Callback"].startswith("calls are paused")
        await h.store.set_switch(CALLS_PAUSED, False, changed_by="ops")
        moved = await h.run_scheduled("callback:")
        await h.settle()
        assert len(moved) == 1
        assert [c.to for c in h.calls_placed()] == [CALLER]


async def test_calls_paused_variable_places_nothing(tmp_path: Path) -> None:
    """AGENTKIT_CALLS_PAUSED=1 stops every call, whatever the store's switch says."""
    async with bot_harness(tmp_path, AGENTKIT_CALLS_PAUSED="1") as h:
        h.llm.reply(triage())
        h.sim.leave_voicemail(CALLER, words="Call me back.")
        await h.settle()
        await h.run_scheduled("callback:")
        await h.settle()
        assert h.calls_placed() == []


async def test_daily_maximum_stops_callbacks_with_one_alert(tmp_path: Path) -> None:
    """With AGENTKIT_DIAL_DAILY_MAX=2, the third caller is not called and one alert is posted."""
    callers = ["+442079460001", "+442079460002", "+442079460003", "+442079460004"]
    async with bot_harness(tmp_path, AGENTKIT_DIAL_DAILY_MAX="2") as h:
        h.llm.reply(*[triage() for _ in callers])
        for caller in callers:
            h.sim.leave_voicemail(caller, words="Call me back.")
            await h.settle()
        alerts = titled(h, "Callbacks stopped")
        assert len(h.calls_placed()) == 2
    assert len(alerts) == 1
    assert "AGENTKIT_DIAL_DAILY_MAX" in alerts[0]["text"]


async def test_callback_numbers_are_stored_in_e164(tmp_path: Path) -> None:
    """The action log holds the number dialled in E.164, not as the model wrote it."""
    async with bot_harness(tmp_path) as h:
        h.llm.reply(triage(callback_number=SPACED))
        h.sim.leave_voicemail(CALLER, words=f"Call me on {SPACED}.")
        await h.settle()
        (voicemail,) = h.sim.deliveries.emitted("voicemail.received")
        actions = await h.actions(voicemail.id)
    callbacks = [a for a in actions if a.kind == "callback"]
    assert [a.detail["to"] for a in callbacks] == [SPACED_E164]
    assert all(a.detail["from"] == MAIN for a in callbacks)
