"""Missed call to callback: a caller who hung up before anyone answered is called back once.

On an inbound call that ended missed, unanswered or busy, the bot waits two
minutes (``MISSED_CALL_GRACE_SECONDS``) for a voicemail (a join on
voicemail.received, not polling): a caller
who leaves one is the voicemail bot's. Otherwise it asks for a callback
through the same action as the voicemail bot, so the same dial policy,
business hours, retries and caps apply, and one caller has one callback open
at a time: a voicemail left on another call is merged into it. A chat note
says who called, how many times, when, and what was done.

Left alone, with a note or a log line: a withheld or invalid caller ID (noted,
never dialled); a call that rang under ``min_ring_seconds`` (one-ring calls
are how Wangiri fraud lures callbacks); a caller already called back within
``window_minutes`` (several missed calls make one callback); calls to numbers
the bot does not serve.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentkit import (
    Bot,
    CallbackPolicy,
    CallCompleted,
    ChatMessage,
    ConfigError,
    Context,
    Team,
    VoicemailReceived,
    to_e164,
)

MISSED = ("missed", "no_answer", "busy")


class MissedCallSettings(BaseSettings):
    """What the missed-call bot serves and leaves alone; read from the environment
    (``MISSED_CALL_GRACE_SECONDS=300``, ``MISSED_CALL_NUMBERS='["+40264000111"]'``)."""

    model_config = SettingsConfigDict(env_prefix="MISSED_CALL_", extra="ignore", frozen=True)

    numbers: list[str] = Field(
        default_factory=list,
        description="the account's numbers whose missed calls are called back (E.164); "
                    "empty: all of them")
    min_ring_seconds: float = Field(
        default=5.0, ge=0, description="a call that rang for less is not called back (Wangiri)")
    window_minutes: int = Field(
        default=30, ge=1,
        description="missed calls from one caller within this many minutes make one callback")
    grace_seconds: int = Field(
        default=120, ge=10, le=3600,
        description="how long to wait for a voicemail before calling back")


SETTINGS = MissedCallSettings()


bot = Bot(
    "missed-call",
    team=Team(role="agent"),
    callbacks=CallbackPolicy(max_attempts=2),
    settings=SETTINGS,
)
Ctx = Context[CallCompleted, MissedCallSettings]


@bot.on(CallCompleted, join=VoicemailReceived, join_timeout=SETTINGS.grace_seconds,
        direction="inbound", status=MISSED)
async def call_back(ctx: Ctx) -> None:
    call = ctx.event.data
    if "voicemail.received" in ctx.joined:
        return  # the voicemail bot calls back, with the caller's own words
    settings = ctx.settings
    if settings.numbers and call.to not in settings.numbers:
        ctx.log.info("missed_call.not_served", number=call.to)
        return
    rang = (call.ended_at - call.started_at).total_seconds() if call.ended_at else 0.0
    if rang < settings.min_ring_seconds:
        ctx.log.warning("missed_call.one_ring", rang_s=rang, limit_s=settings.min_ring_seconds)
        return
    caller = _valid(call.from_)
    if caller is None:
        await ctx.actions.notify(ChatMessage(
            title="Missed call from a withheld number",
            text=f"A caller with no usable caller ID ({call.from_ or 'none'}) rang {call.to} "
                 "and hung up; there is no number to call back.",
            fields={"Called": call.to, "When": _local(call.started_at, ctx.time_zone)},
            reference=call.id,
        ))
        return
    recent = await ctx.history.calls(caller, within=timedelta(minutes=settings.window_minutes))
    missed = [c for c in recent if c.direction == "inbound" and c.status in MISSED]
    called = [c for c in recent if c.direction == "outbound" and c.to == caller]
    times = max(1, len(missed))
    if called:
        ctx.log.info("missed_call.already_called_back", call_id=called[0].id)
        return
    result = await ctx.actions.callback(
        to=caller, urgency="normal",
        reason=f"missed call{'s' if times > 1 else ''} ({times}) with no voicemail")
    if result.status == "merged":
        # The callback open for this caller has its own note; this call joined it.
        ctx.log.info("missed_call.merged", into=result.merged_into)
        return
    await ctx.actions.notify(ChatMessage(
        title=f"Missed call from {caller}",
        text=f"{caller} rang {call.to} {_times(times)} and left no voicemail.",
        fields={"Called": call.to, "Calls": str(times),
                "When": _local(call.started_at, ctx.time_zone),
                "Callback": result.plan(ctx.time_zone)},
        reference=result.key,
    ))


def _valid(number: str | None) -> str | None:
    if not number or not number.startswith("+"):
        return None
    try:
        return to_e164(number)
    except ConfigError:
        return None


def _times(times: int) -> str:
    return "once" if times == 1 else f"{times} times in a row"


def _local(moment: datetime, zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(zone)):%a %d %b %H:%M %Z}"
