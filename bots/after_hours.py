"""After hours: the main number goes to an after-hours flow when the hours close, and back.

On the business hours (AGENTKIT_BUSINESS_HOURS, or the bot's own), and on
request (``agentkit request after-hours close`` or ``open``), the main number
(the account's first, unless the bot's settings name one) is attached to the
"After hours" flow, created if missing (straight to voicemail), or back to the
flow it had during the day. Every switch is recorded in the action log with the
flow before and after, and posted to the chat channel.
"""

from __future__ import annotations

from typing import Any

from agentkit import Bot, Context
from agentkit.actions.notify import ChatMessage
from agentkit.odygy.models import CallFlow, Number
from agentkit.store.base import ActionRecord

NIGHT_FLOW = "After hours"
MAILBOX = "vm_after_hours"

bot = Bot("after-hours", settings={"number": None, "night_flow": NIGHT_FLOW})


@bot.on_schedule()
async def follow_the_hours(ctx: Context[Any]) -> None:
    await _switch(ctx, closed=ctx.event.data.state == "closed", why="business hours")


@bot.on_request("close")
async def close_now(ctx: Context[Any]) -> None:
    await _switch(ctx, closed=True, why=f"asked by {ctx.event.data.requested_by or 'operator'}")


@bot.on_request("open")
async def open_now(ctx: Context[Any]) -> None:
    await _switch(ctx, closed=False, why=f"asked by {ctx.event.data.requested_by or 'operator'}")


async def _switch(ctx: Context[Any], *, closed: bool, why: str) -> None:
    number = await _main_number(ctx)
    night = await _night_flow(ctx)
    if closed:
        if number.call_flow_id == night.id:
            ctx.log.info("after_hours.already", state="closed")
            return
        await ctx.actions.attach_number(number.id, night.id, key="close")
        target = night.name
    else:
        day_flow = await _day_flow(ctx, number, night)
        if day_flow is None or number.call_flow_id == day_flow:
            ctx.log.info("after_hours.already", state="open")
            return
        await ctx.actions.attach_number(number.id, day_flow, key="open")
        target = day_flow
    await ctx.actions.notify(ChatMessage(
        title=f"{number.number} now routes to {target}",
        text=f"{'After hours' if closed else 'Open'}: {why}.",
        fields={"Number": number.number, "Flow": target},
        reference=ctx.event.id,
    ))


async def _main_number(ctx: Context[Any]) -> Number:
    numbers = await ctx.api.numbers.list().to_list()
    wanted = ctx.bot.settings.get("number")
    for number in numbers:
        if wanted is None or number.number == wanted:
            return number
    raise LookupError(f"the account has no number {wanted!r}: set the after-hours bot's number")


async def _night_flow(ctx: Context[Any]) -> CallFlow:
    name = str(ctx.bot.settings.get("night_flow") or NIGHT_FLOW)
    for flow in await ctx.api.call_flows.list().to_list():
        if flow.name == name:
            return flow
    return await ctx.api.call_flows.create(
        name=name, entry="voicemail",
        blocks={"voicemail": {"type": "voicemail", "mailbox_id": MAILBOX}},
    )


async def _day_flow(ctx: Context[Any], number: Number, night: CallFlow) -> str | None:
    """The flow the number had before it was last switched to the night flow."""
    if number.call_flow_id != night.id:
        return number.call_flow_id
    last: ActionRecord | None = None
    for record in await _attach_records(ctx):
        if record.detail.get("number_id") == number.id and record.detail.get("after") == night.id:
            if last is None or record.updated_at > last.updated_at:
                last = record
    before = last.detail.get("before") if last is not None else None
    return str(before) if before else None


async def _attach_records(ctx: Context[Any]) -> list[ActionRecord]:
    return await ctx.store.actions_of_kind("attach_number", bot=ctx.bot.name)
