"""``ctx.history``: what a handler reads of what happened before, end to end."""

from __future__ import annotations

from pathlib import Path

from agentkit import (
    ActionRecord,
    Bot,
    Call,
    CallbackEnded,
    CallCompleted,
    Context,
    History,
    VoicemailReceived,
)
from agentkit.testing import BotHarness

CALLER = "+442079460000"


async def test_history_shows_this_calls_actions_across_its_events(tmp_path: Path) -> None:
    """A handler on call.completed sees the note posted on the voicemail of the same call."""
    seen: list[list[ActionRecord]] = []
    bot = Bot("reader")

    @bot.on(VoicemailReceived)
    async def note(ctx: Context[VoicemailReceived]) -> None:
        await ctx.actions.notify("voicemail noted", name="vm")

    @bot.on(CallCompleted, join="voicemail.received", status="voicemail")
    async def read(ctx: Context[CallCompleted]) -> None:
        seen.append(await ctx.history.actions())

    async with BotHarness([bot], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Hi.")
        await h.settle()
    (records,) = seen
    assert [(r.kind, r.state) for r in records] == [("notify", "done")]
    assert records[0].key.endswith(":reader:notify:vm")


async def test_history_lists_the_numbers_recent_calls(tmp_path: Path) -> None:
    """``calls()`` gives the caller's recent calls, newest first, from the API."""
    found: list[list[Call]] = []
    bot = Bot("reader")

    @bot.on(VoicemailReceived)
    async def read(ctx: Context[VoicemailReceived]) -> None:
        found.append(await ctx.history.calls())

    async with BotHarness([bot], tmp_path) as h:
        h.sim.inbound_call(CALLER)
        await h.settle()
        h.sim.leave_voicemail(CALLER, words="Me again.")
        await h.settle()
    (calls,) = found
    assert len(calls) == 2
    assert all(CALLER in (c.from_, c.to) for c in calls)
    assert calls[0].started_at >= calls[1].started_at


async def test_history_action_reads_only_this_bots_actions(tmp_path: Path) -> None:
    """``action(key)`` finds this bot's earlier action by the key ``ctx.actions.key`` gave,
    and another bot asking for the same key gets None."""
    keys: list[str] = []
    reads: dict[str, ActionRecord | None] = {}
    mine, other = Bot("mine"), Bot("other")

    @mine.on(VoicemailReceived)
    async def write_then_read(ctx: Context[VoicemailReceived]) -> None:
        if not keys:
            await ctx.actions.notify("hello", name="x")
            keys.append(ctx.actions.key("notify", "x"))
        else:
            reads["mine"] = await ctx.history.action(keys[0])

    @other.on(VoicemailReceived)
    async def peek(ctx: Context[VoicemailReceived]) -> None:
        if keys:
            reads["other"] = await ctx.history.action(keys[0])

    async with BotHarness([mine, other], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Hi.")
        await h.settle()
        assert keys
        h.sim.leave_voicemail(CALLER, words="Hi again.")
        await h.settle()
    record = reads["mine"]
    assert record is not None and (record.key, record.state) == (keys[0], "done")
    assert reads["other"] is None


def test_history_has_no_way_to_write() -> None:
    """History offers reads only: nothing that leases, settles or dead-letters."""
    public = {name for name in dir(History) if not name.startswith("_")}
    assert public == {"actions", "action", "bot_actions", "calls"}


async def test_after_callback_gets_a_typed_outcome(tmp_path: Path) -> None:
    """An after_callback handler reads the outcome from ``ctx.event.data`` and the asking
    event from ``ctx.event.origin``."""
    ended: list[CallbackEnded] = []
    bot = Bot("caller")

    @bot.on(VoicemailReceived)
    async def call_back(ctx: Context[VoicemailReceived]) -> None:
        await ctx.actions.callback(reason="asked")

    @bot.after_callback
    async def heard(ctx: Context[CallbackEnded]) -> None:
        ended.append(ctx.event)

    async with BotHarness([bot], tmp_path) as h:
        h.sim.script_outbound(CALLER, ["answered"])
        h.sim.leave_voicemail(CALLER, words="Call me.")
        await h.settle()
    (event,) = ended
    assert event.data.outcome == "reached"
    assert event.data.to == CALLER
    assert event.origin.type == "voicemail.received"
    assert event.call_id == event.origin.call_id
