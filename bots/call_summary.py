"""Call summary: after an answered call, a summary with its follow-ups, to the team's channel.

On transcript.ready of an answered call: a summary, the sentiment, the topics
and the follow-up items, each with the quote and the time in the transcript
that backs it (items whose quote is not in the transcript are dropped).
phone.systems' own summary, sentiment and topics are used where the call has
them; then the model is asked only for the follow-ups.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from agentkit import (
    Bot,
    Call,
    ChatMessage,
    Context,
    LlmError,
    LlmTasks,
    Transcript,
    TranscriptReady,
    mask_segments,
)


class FollowUp(BaseModel):
    item: str = Field(description="something someone promised or asked to be done")
    quote: str = Field(description="the words of the transcript that say so, copied exactly")
    t: float = Field(description="the time, in seconds, of the segment the quote is from")


class FollowUps(BaseModel):
    follow_ups: list[FollowUp] = Field(description="every follow-up, in order; [] if none")


class CallSummary(BaseModel):
    summary: str = Field(description="what the call was about and how it ended, 2 sentences")
    sentiment: Literal["positive", "neutral", "negative"] = Field(
        description="the caller's mood by the end of the call"
    )
    topics: list[str] = Field(description="one to four short topic words, e.g. billing")
    follow_ups: list[FollowUp] = Field(description="every follow-up, in order; [] if none")


bot = Bot("call-summary", prompt_names={"extract": "call_summary"})


@bot.model_task
async def summarise(llm: LlmTasks, source: Transcript | str | None) -> CallSummary:
    """The call's summary, sentiment, topics and follow-ups."""
    return await llm.extract(CallSummary, source)


@bot.on(TranscriptReady)
async def post_summary(ctx: Context[TranscriptReady]) -> None:
    call = await ctx.api.calls.retrieve(ctx.event.data.call_id)
    if call.answered_at is None or call.status != "completed":
        return  # voicemails and missed calls are other bots' business
    transcript = await ctx.transcript()
    if transcript is None:
        return
    result = await _summary(ctx, call, transcript)
    if result is None:
        await ctx.actions.notify(ChatMessage(
            title=f"Call {call.from_} -> {call.to}",
            text="No summary: the model is unavailable. The transcript begins and ends:",
            fields={"Duration": f"{call.duration} s", **_excerpt(transcript)},
            reference=call.id,
        ))
        return
    kept = [f for f in result.follow_ups if _backed(f, transcript)]
    dropped = len(result.follow_ups) - len(kept)
    if dropped:
        ctx.log.warning("summary.unbacked_follow_ups", dropped=dropped)
    fields = {
        "Sentiment": result.sentiment,
        "Topics": ", ".join(result.topics) or "-",
        "Duration": f"{call.duration} s",
    }
    for n, follow_up in enumerate(kept, start=1):
        fields[f"Follow-up {n}"] = (
            f"{follow_up.item} — “{follow_up.quote}” (at {_clock(follow_up.t)})"
        )
    await ctx.actions.notify(ChatMessage(
        title=f"Call {call.from_} -> {call.to}",
        text=result.summary,
        fields=fields,
        urgency="high" if result.sentiment == "negative" else "normal",
        reference=call.id,
    ))


async def _summary(
    ctx: Context[TranscriptReady], call: Call, transcript: Transcript
) -> CallSummary | None:
    ai = call.ai
    platform_complete = bool(ai and ai.summary and ai.sentiment and ai.topics is not None)
    try:
        if ctx.bot.use_platform_ai and ai is not None and platform_complete:
            ctx.log.info("summary.platform_ai")
            items = await ctx.llm.extract(FollowUps, transcript)
            sentiment = ai.sentiment if ai.sentiment in ("positive", "neutral", "negative") \
                else "neutral"
            return CallSummary(summary=ai.summary or "", sentiment=sentiment,
                               topics=list(ai.topics or []), follow_ups=items.follow_ups)
        return await summarise(ctx.llm, transcript)
    except LlmError as exc:
        ctx.log.warning("summary.fallback", reason=type(exc).__name__)
        ctx.llm.count_fallback(exc)
        if ai is not None and ai.summary:
            sentiment = ai.sentiment if ai.sentiment in ("positive", "neutral", "negative") \
                else "neutral"
            return CallSummary(summary=ai.summary, sentiment=sentiment,
                               topics=list(ai.topics or []), follow_ups=[])
        return None


def _excerpt(transcript: Transcript, width: int = 200) -> dict[str, str]:
    """The transcript's first and last lines, masked, for a note without a summary."""
    lines = [f"{s.speaker}: {text}" for s, text in zip(
        transcript.segments, mask_segments([s.text for s in transcript.segments]), strict=True)]
    if not lines:
        return {}
    cut = [line if len(line) <= width else line[: width - 1] + "…" for line in lines]
    if len(cut) == 1:
        return {"First line": cut[0]}
    return {"First line": cut[0], "Last line": cut[-1]}


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _backed(follow_up: FollowUp, transcript: Transcript) -> bool:
    """Whether the quote stands in a segment near the time given (within 5 s)."""
    quote = _words(follow_up.quote)
    return bool(quote) and any(
        quote in _words(segment.text) and abs(segment.t - follow_up.t) <= 5
        for segment in transcript.segments
    )


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"
