"""Escalation: an angry caller, a complaint, a threat to cancel or a legal word go to supervisors.

On an answered inbound call or a voicemail, once its transcript is ready
(call.completed joined with transcript.ready, in either order): a legal word
(lawyer, solicitor, court, sue, ombudsman, ...) from the caller escalates at
once, without asking the model; otherwise the model's check decides, or, when
the model is unavailable, phone.systems' own sentiment. An escalation rings a
supervisor first to call the customer back and posts an alert that says why.
The handler runs on call.completed rather than transcript.ready because an
escalation's callback needs the caller and the number they called, which only
the call's own events carry.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from agentkit import (
    Bot,
    CallCompleted,
    Context,
    Escalation,
    LlmError,
    LlmTasks,
    Team,
    Transcript,
    TranscriptReady,
)

Reason = Literal["strongly_negative", "complaint", "cancellation_threat", "legal"]

# "sue" only in lower case: "Sue" is more often a name ("Hi, it's Sue from accounts").
LEGAL_WORDS = re.compile(
    r"\b(lawyers?|solicitors?|attorneys?|legal action|court|(?-i:sue)|suing|lawsuit|ombudsman|"
    r"tribunal|avocat|avocatul|instan[tț][aă]|proces|anwalt|rechtsanwalt|gericht|klage)\b",
    re.I,
)


class EscalationCheck(BaseModel):
    escalate: bool = Field(description="true if a supervisor should handle this caller")
    reasons: list[Reason] = Field(
        description="strongly_negative: angry or distressed; complaint: a formal complaint; "
        "cancellation_threat: threatens to cancel or leave; legal: mentions legal steps"
    )
    explanation: str = Field(description="why, in one sentence for the supervisor")
    quote: str | None = Field(description="the caller's words that show it, copied exactly")


bot = Bot(
    "escalation",
    escalation=Escalation(team=Team(role="supervisor"), urgency="high"),
    prompt_names={"extract": "escalation_check"},
)


@bot.model_task
async def check(llm: LlmTasks, source: Transcript | str | None) -> EscalationCheck:
    """Whether the call needs a supervisor, and why."""
    return await llm.extract(EscalationCheck, source)


@bot.on(CallCompleted, join=TranscriptReady, join_timeout=15 * 60, direction="inbound",
        status=("completed", "voicemail"))
async def maybe_escalate(ctx: Context[CallCompleted]) -> None:
    transcript = await ctx.transcript()
    if transcript is None:
        return  # an unrecorded call: its transcript never came
    # Read again: phone.systems' own AI results come with the transcript, after call.completed.
    call = await ctx.api.calls.retrieve(ctx.event.data.id)
    caller_words = " ".join(s.text for s in transcript.segments if s.speaker != "agent")
    legal = LEGAL_WORDS.search(caller_words)
    if legal:
        await ctx.actions.escalate(
            reason=f"legal words from the caller: “{legal.group(0)}”", urgency="urgent"
        )
        return
    try:
        found = await check(ctx.llm, transcript)
    except LlmError as exc:
        ctx.log.warning("escalation.fallback", reason=type(exc).__name__)
        ctx.llm.count_fallback(exc)
        if call.ai is not None and call.ai.sentiment == "negative":
            await ctx.actions.escalate(reason="phone.systems rates the call strongly negative "
                                              "(not checked by the model)")
        return
    if found.escalate and found.reasons:
        reason = found.explanation
        if found.quote:
            reason += f" (“{found.quote}”)"
        await ctx.actions.escalate(reason=f"{', '.join(found.reasons)}: {reason}",
                                   urgency="urgent" if "legal" in found.reasons else "high")
