"""Voicemail to callback: read the voicemail, call the caller back, tell the team.

On a voicemail and its transcript (either order), the model extracts who
called, why, how urgent, whether and when they want a call back, and whether
it is spam. A wanted callback is scheduled for the team inside business
hours, urgent ones first, and a chat note says who, why, how urgent, when.
When the callback is answered, or fails after its attempts, another note says
so. Spam and robocalls are noted and not called back. With no model, every
voicemail is called back (a person decides on the phone).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agentkit import (
    Bot,
    CallbackEnded,
    CallbackPolicy,
    CallbackResult,
    ChatMessage,
    Context,
    LlmError,
    LlmTasks,
    Team,
    Transcript,
    TranscriptReady,
    VoicemailReceived,
    mask_segments,
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
async def triage(llm: LlmTasks, source: Transcript | str | None) -> VoicemailTriage:
    """The voicemail's triage, as the model reads it."""
    return await llm.extract(VoicemailTriage, source)


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
            found, model = await triage(ctx.llm, transcript), True
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
    if found.callback_number and found.callback_number != voicemail.from_:
        # A number only spoken is no proof it is theirs: whoever approves sees their words.
        result = await ctx.actions.callback(
            to=found.callback_number, urgency=found.urgency, reason=found.reason,
            name="requested-number", quote=found.callback_number_quote or words[:280],
        )
        if result.status == "refused":
            ctx.log.warning("voicemail.number_refused", reason=result.reason)
            extra["Refused number"] = f"{found.callback_number}: {result.reason}"
            result = None
        else:
            extra["Callback number"] = result.number or found.callback_number
    if result is None:
        result = await ctx.actions.callback(urgency=found.urgency, reason=found.reason,
                                            quote=words[:280])
    if result.status == "merged" and result.requests:
        extra["Voicemails"] = "\n".join(
            f"{n}. {reason}" for n, reason in enumerate(result.requests, start=1)
        )
    await ctx.actions.notify(_note(ctx, found, _plan(result), result, extra))


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


def _plan(result: CallbackResult) -> str:
    if result.status == "placed":
        return "calling back now"
    if result.status == "scheduled" and result.at is not None:
        return f"callback planned for {result.at:%a %d %b %H:%M} UTC"
    if result.status == "refused":
        return f"not called back: {result.reason}"
    if result.status == "merged":
        return f"no second callback: {result.reason} ({len(result.requests)} voicemails)"
    if result.status == "paused":
        return "calls are paused: called back when they resume"
    if result.status == "awaiting_approval" and result.at is not None:
        return (f"waiting for approval until {result.at:%a %d %b %H:%M} UTC (not called back "
                "unless approved)")
    return f"callback {result.status}"


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
