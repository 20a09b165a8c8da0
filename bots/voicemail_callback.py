"""Voicemail to callback: read the voicemail, call the caller back, tell the team.

On a voicemail and its transcript (either order), the model extracts who
called, why, how urgent, whether and when they want a call back, and whether
it is spam. A wanted callback is scheduled for the team inside business
hours, urgent ones first, and a chat note says who, why, how urgent, when.
When the caller names a time ("tomorrow after 3pm"), the model resolves it
against the voicemail's time in the business's time zone, and the callback
waits for that window's start; a window that is unreadable, in the past or
more than 7 days ahead is ignored, and the note says so.
When the callback is answered, or fails after its attempts, another note says
so. Spam and robocalls are noted and not called back. With no model, every
voicemail is called back (a person decides on the phone).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator

from agentkit import (
    Bot,
    CallbackEnded,
    CallbackPolicy,
    CallbackResult,
    CallbackWindow,
    ChatMessage,
    Context,
    LlmError,
    LlmTasks,
    Team,
    Transcript,
    TranscriptReady,
    VoicemailReceived,
    mask_segments,
    read_window,
)


class VoicemailTriage(BaseModel):
    """What a voicemail asks for."""

    caller_name: str | None = Field(description="the caller's name if they said it, else null")
    reason: str = Field(description="why they called, in one short sentence in English")
    urgency: Literal["low", "normal", "high", "urgent"] = Field(
        description="urgent: harm, outage or money at stake today; high: they ask for a call "
        "soon or are upset; normal: an ordinary request; low: no action really needed"
    )
    wants_callback: bool = Field(description="true if they ask to be called back")
    callback_window: str | None = Field(
        description="when they want the call, in their words ('after 3pm'); null if not said"
    )
    callback_after: str | None = Field(
        default=None,
        description="the earliest time they want the call, as an ISO 8601 date-time with the "
        "business's UTC offset (2026-03-10T15:00:00+02:00), resolved against when the "
        "voicemail was left; null if they named no time",
    )
    callback_before: str | None = Field(
        default=None,
        description="the latest time they want the call, ISO 8601 with the offset like "
        "callback_after; null if they gave no end",
    )
    callback_number: str | None = Field(
        description="a number they ask to be called on, in E.164 (+ and country code), "
        "written out from digits or words; null if they gave none"
    )
    callback_number_quote: str | None = Field(
        default=None,
        description="the caller's own words giving that number, quoted exactly from the "
        "transcript; null if they gave none",
    )
    spam: bool = Field(
        description="true for robocalls, recorded sales pitches, scams or silent messages"
    )
    language: str = Field(description="the language spoken, as a BCP 47 tag: en, ro, de, ...")

    @field_validator("callback_after", "callback_before", mode="before")
    @classmethod
    def _any_time(cls, value: object) -> object:
        # Checked later, alone: a window the model got wrong never costs the rest.
        return value if isinstance(value, str) or value is None else None


FALLBACK = VoicemailTriage(
    caller_name=None, reason="voicemail (not triaged: no model answer, no transcript)",
    urgency="normal",
    wants_callback=True, callback_window=None, callback_number=None, spam=False, language="und",
)

bot = Bot(
    "voicemail-callback",
    team=Team(role="agent"),
    callbacks=CallbackPolicy(max_attempts=3),
    prompt_names={"extract": "voicemail_triage"},
)


@bot.model_task
async def triage(
    llm: LlmTasks, source: Transcript | str | None, *, received_at: datetime | None = None,
    time_zone: str = "UTC",
) -> VoicemailTriage:
    """The voicemail's triage, as the model reads it; times the caller names are resolved
    against ``received_at`` in ``time_zone``."""
    local = (received_at or datetime.now(UTC)).astimezone(ZoneInfo(time_zone))
    return await llm.extract(VoicemailTriage, source,
                             received_at=f"{local:%A %Y-%m-%d %H:%M} (UTC{local:%z})",
                             time_zone=time_zone)


@bot.on(VoicemailReceived, join=TranscriptReady, join_timeout=15 * 60)
async def call_back(ctx: Context[VoicemailReceived]) -> None:
    voicemail = ctx.event.data
    transcript = await ctx.transcript()
    # Masked as one text before it is cut for the note, so no half of a card survives.
    words = " ".join(mask_segments([s.text for s in transcript.segments])) if transcript else ""
    found, model = FALLBACK, False
    if transcript is None:
        # The transcript never came (the join timed out): nothing to triage, a person decides.
        ctx.log.warning("voicemail.fallback", reason="no transcript")
    else:
        try:
            found, model = await triage(ctx.llm, transcript, received_at=voicemail.received_at,
                                        time_zone=ctx.time_zone), True
        except Exception as exc:
            # Whatever failed (the model, its answer, a prompt), a person decides on the phone.
            ctx.llm.count_fallback(exc)
            ctx.log.warning("voicemail.fallback", reason=type(exc).__name__,
                            llm=isinstance(exc, LlmError))
            if words:
                found = FALLBACK.model_copy(update={"reason": f"“{words[:280]}”"})
    ctx.log.info("voicemail.triaged", urgency=found.urgency, wants_callback=found.wants_callback,
                 spam=found.spam, model=model)
    if found.spam:
        await ctx.actions.notify(_note(ctx, found, "not called back: looks like spam", None))
        return
    if not found.wants_callback:
        await ctx.actions.notify(_note(ctx, found, "no callback asked for", None))
        return
    result: CallbackResult | None = None
    extra: dict[str, str] = {}
    asked = read_window(found.callback_after, found.callback_before, now=ctx.now(),
                        zone=ctx.time_zone, asked=found.callback_window or "")
    window = asked.window
    if asked.problem:
        ctx.log.warning("voicemail.window_problem", problem=asked.problem)
        extra["When"] = f"{found.callback_window or 'a time'} ({asked.problem})"
    if found.callback_number and found.callback_number != voicemail.from_:
        # A number only spoken is no proof it is theirs: whoever approves sees their words.
        result = await ctx.actions.callback(
            to=found.callback_number, urgency=found.urgency, reason=found.reason,
            name="requested-number", quote=found.callback_number_quote or words[:280],
            window=window,
        )
        if result.status == "refused":
            ctx.log.warning("voicemail.number_refused", reason=result.reason)
            extra["Refused number"] = f"{found.callback_number}: {result.reason}"
            result = None
        else:
            extra["Callback number"] = result.number or found.callback_number
    if result is None:
        result = await ctx.actions.callback(urgency=found.urgency, reason=found.reason,
                                            quote=words[:280], window=window)
    if result.status == "merged" and result.requests:
        extra["Voicemails"] = "\n".join(
            f"{n}. {reason}" for n, reason in enumerate(result.requests, start=1)
        )
    await ctx.actions.notify(_note(ctx, found, _plan(result, window, ctx.time_zone), result,
                                   extra))


@bot.after_callback
async def report_outcome(ctx: Context[CallbackEnded]) -> None:
    outcome = ctx.event.data
    words = {
        "reached": "reached",
        "unreached": f"not reached after {outcome.attempts} attempt(s)",
        "expired": "given up: it could not be placed in time",
        "refused": "stopped by the dial policy",
        "cancelled": "cancelled: the caller was reached meanwhile",
        "failed": "failed",
        "rejected": "not approved, so not called back",
    }.get(outcome.outcome, outcome.outcome)
    fields = {"Attempts": str(outcome.attempts), "Calls": ", ".join(outcome.call_ids)}
    if outcome.merged:
        fields["Voicemails"] = str(1 + len(outcome.merged))
    await ctx.actions.notify(
        ChatMessage(
            title=f"Callback to {outcome.to}: {words}",
            text=outcome.reason,
            fields=fields,
            urgency="normal" if outcome.outcome == "reached" else "high",
            reference=outcome.key,
        ),
        name="outcome",
    )


def _plan(result: CallbackResult, window: CallbackWindow | None, zone: str) -> str:
    plan = result.plan(zone)
    if window is not None and result.status in ("placed", "scheduled"):
        plan += f" (asked: {window.asked or 'a time'})"
    return plan


def _note(
    ctx: Context[VoicemailReceived], found: VoicemailTriage, plan: str,
    result: CallbackResult | None, extra: dict[str, str] | None = None,
) -> ChatMessage:
    voicemail = ctx.event.data
    fields = {
        "Caller": found.caller_name or "unknown",
        "Number": voicemail.from_,
        "Called": voicemail.to,
        "Urgency": found.urgency,
        "Callback": plan,
    }
    if found.callback_window:
        fields["When"] = found.callback_window
    fields.update(extra or {})
    return ChatMessage(
        title=f"Voicemail from {found.caller_name or voicemail.from_}",
        text=found.reason,
        fields=fields,
        urgency="low" if found.spam else found.urgency,
        reference=result.key if result else voicemail.id,
    )
