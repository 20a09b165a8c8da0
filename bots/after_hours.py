"""After hours: the main number goes to an after-hours flow when the hours close, and back.

On the business hours (AGENTKIT_BUSINESS_HOURS, or the bot's own), and on
request (``agentkit request after-hours close`` or ``open``), the main number
(the account's first, unless the bot's settings name one) is attached to the
"After hours" flow, created if missing (straight to voicemail), or back to the
flow it had during the day. Every switch is recorded in the action log with the
flow before and after, and posted to the chat channel. A recorded switch is
undone with ``agentkit request after-hours revert --arg action=<its action key>``
(the key is the note's reference), refused if the number was moved since unless
``--arg force=1``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from agentkit import (
    ActionRecord,
    Bot,
    CallFlow,
    ChatMessage,
    Context,
    Number,
    Requested,
    ScheduleChanged,
)

NIGHT_FLOW = "After hours"
MAILBOX = "vm_after_hours"



class AfterHoursSettings(BaseModel):
    """Which number switches, and to which flow."""

    number: str | None = Field(
        default=None, description="the number to switch, E.164; default: the account's first"
    )
    night_flow: str = Field(default=NIGHT_FLOW, description="the after-hours flow's name")


bot = Bot("after-hours", settings=AfterHoursSettings())
Ctx = Context[ScheduleChanged | Requested, AfterHoursSettings]


@bot.on_schedule()
async def follow_the_hours(ctx: Context[ScheduleChanged, AfterHoursSettings]) -> None:
    await _switch(ctx, closed=ctx.event.data.state == "closed", why="business hours")


@bot.on_request("close")
async def close_now(ctx: Context[Requested, AfterHoursSettings]) -> None:
    await _switch(ctx, closed=True, why=f"asked by {ctx.event.data.requested_by or 'operator'}")


@bot.on_request("open")
async def open_now(ctx: Context[Requested, AfterHoursSettings]) -> None:
    await _switch(ctx, closed=False, why=f"asked by {ctx.event.data.requested_by or 'operator'}")


@bot.on_request("revert")
async def revert(ctx: Context[Requested, AfterHoursSettings]) -> None:
    """Put a number back in the flow a recorded switch (``--arg action=KEY``) took it from."""
    args = ctx.event.data.args
    key = str(args.get("action") or "")
    who = ctx.event.data.requested_by or "operator"
    record = await ctx.history.action(key) if key else None
    if record is None or record.kind != "attach_number" or record.state != "done":
        await _tell(ctx, f"Nothing reverted: {key or '(no action given)'}",
                    "give --arg action=<the action key of a switch this bot made>")
        return
    number_id, before, after = (record.detail.get(k) for k in ("number_id", "before", "after"))
    if not before:
        await _tell(ctx, f"Nothing reverted: {key}", "the number had no call flow before it")
        return
    numbers = await ctx.api.numbers.list().to_list()
    number = next((n for n in numbers if n.id == number_id), None)
    if number is None:
        await _tell(ctx, f"Nothing reverted: {key}", f"the account has no number {number_id}")
        return
    if number.call_flow_id != after and str(args.get("force", "")) not in ("1", "true", "yes"):
        await _tell(ctx, f"Nothing reverted: {number.number} moved since",
                    f"it routes to {number.call_flow_id}, not {after} as {key} left it; "
                    "add --arg force=1 to revert anyway")
        return
    await ctx.actions.attach_number(number.id, str(before), key="revert")
    flow = await _flow_name(ctx, str(before))
    await ctx.actions.notify(ChatMessage(
        title=f"{number.number} now routes to {flow}",
        text=f"Reverted {key}: {who}.",
        fields={"Number": number.number, "Flow": flow},
        reference=_key(ctx, "revert"),
    ))


async def _switch(ctx: Ctx, *, closed: bool, why: str) -> None:
    number = await _main_number(ctx)
    night = await _night_flow(ctx, create=closed)
    if closed:
        assert night is not None
        if number.call_flow_id == night.id:
            ctx.log.info("after_hours.already", state="closed")
            return
        await ctx.actions.attach_number(number.id, night.id, key="close")
        key, target = "close", night.name
    else:
        day_flow = await _day_flow(ctx, number, night)
        if day_flow is None or number.call_flow_id == day_flow:
            ctx.log.info("after_hours.already", state="open")
            return
        await ctx.actions.attach_number(number.id, day_flow, key="open")
        key, target = "open", await _flow_name(ctx, day_flow)
    await ctx.actions.notify(ChatMessage(
        title=f"{number.number} now routes to {target}",
        text=f"{'After hours' if closed else 'Open'}: {why}.",
        fields={"Number": number.number, "Flow": target},
        reference=_key(ctx, key),
    ))


def _key(ctx: Ctx, name: str) -> str:
    """The action-log key of this run's switch ``name``: what revert takes."""
    return ctx.actions.key("attach_number", name)


async def _tell(ctx: Ctx, title: str, text: str) -> None:
    await ctx.actions.notify(ChatMessage(title=title, text=text, reference=ctx.event.id))


async def _main_number(ctx: Ctx) -> Number:
    numbers = await ctx.api.numbers.list().to_list()
    wanted = ctx.settings.number
    for number in numbers:
        if wanted is None or number.number == wanted:
            return number
    raise LookupError(f"the account has no number {wanted!r}: set the after-hours bot's number")


async def _night_flow(ctx: Ctx, *, create: bool) -> CallFlow | None:
    """The night flow; created when missing only if ``create`` (opening never creates it)."""
    name = ctx.settings.night_flow
    for flow in await ctx.api.call_flows.list().to_list():
        if flow.name == name:
            return flow
    if not create:
        return None
    return await ctx.api.call_flows.create(
        name=name, entry="voicemail",
        blocks={"voicemail": {"type": "voicemail", "mailbox_id": MAILBOX}},
    )


async def _flow_name(ctx: Ctx, flow_id: str) -> str:
    for flow in await ctx.api.call_flows.list().to_list():
        if flow.id == flow_id:
            return flow.name
    return flow_id


async def _day_flow(ctx: Ctx, number: Number, night: CallFlow | None) -> str | None:
    """The flow the number had before it was last switched to the night flow."""
    if night is None or number.call_flow_id != night.id:
        return number.call_flow_id
    last: ActionRecord | None = None
    for record in await _attach_records(ctx):
        if record.detail.get("number_id") == number.id and record.detail.get("after") == night.id:
            if last is None or record.updated_at > last.updated_at:
                last = record
    before = last.detail.get("before") if last is not None else None
    return str(before) if before else None


async def _attach_records(ctx: Ctx) -> list[ActionRecord]:
    return await ctx.history.bot_actions("attach_number")
