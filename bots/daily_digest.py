"""Daily digest: one note a day with the day's calls, callbacks and what needs a person.

When business hours close, or every day at ``DAILY_DIGEST_AT`` (``18:00``, in the
business's time zone, AGENTKIT_TIME_ZONE), the bot reads the day's figures through
``ctx.reports``, read-only: calls in and out, missed calls, voicemails, callbacks
placed and how they ended (the dial policy's refusals with their reasons),
escalations, dead letters, the model's tokens and cost, and the three topics named
most. It posts them as one chat note: a few lines of figures, then what needs a
person ("2 callbacks unreached", "1 dead letter", "3 approvals pending"), with links
to the console when AGENTKIT_PUBLIC_URL is set. Schedule events are stored once per
change, so however many workers run, it is posted once.

``agentkit request daily-digest send`` posts today's so far;
``--arg day=2026-12-01`` posts that day's.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentkit import Bot, ChatMessage, Context, DayReport, Requested, ScheduleChanged

# A closing older than this when the bot first hears of it (agentkit was down at the
# time, or is starting for the first time) is not worth a digest any more.
STALE_AFTER = timedelta(hours=36)


class DigestSettings(BaseSettings):
    """When the digest is posted: read from the environment (``DAILY_DIGEST_AT``)."""

    model_config = SettingsConfigDict(env_prefix="DAILY_DIGEST_", extra="ignore", frozen=True)

    at: str | None = Field(
        default=None,
        description="post every day at this time (HH:MM, 00:01 to 23:59) in the business's "
                    "time zone; unset: when business hours close")


SETTINGS = DigestSettings()
bot = Bot("daily-digest", settings=SETTINGS)


@bot.on_schedule(at=SETTINGS.at)
async def at_closing(ctx: Context[ScheduleChanged, DigestSettings]) -> None:
    change = ctx.event.data
    if change.state != "closed":
        return
    if ctx.now() - change.at > STALE_AFTER:
        ctx.log.info("digest.stale", closed_at=change.at.isoformat())
        return
    await _post(ctx, change.at.astimezone(ZoneInfo(ctx.time_zone)).date())


@bot.on_request("send")
async def send_now(ctx: Context[Requested, DigestSettings]) -> None:
    """Post a digest now: today's so far, or ``--arg day=YYYY-MM-DD``."""
    asked = str(ctx.event.data.args.get("day") or "")
    try:
        day = date.fromisoformat(asked) if asked else None
    except ValueError:
        await ctx.actions.notify(ChatMessage(
            title="No digest posted", text=f"day={asked!r} is not a date: give YYYY-MM-DD.",
            reference=ctx.event.id))
        return
    await _post(ctx, day)


async def _post(ctx: Context[ScheduleChanged | Requested, DigestSettings],
                day: date | None) -> None:
    report = await ctx.reports.day(day)
    ctx.log.info("digest.posting", day=report.day.isoformat(), calls_in=report.calls_in)
    await ctx.actions.notify(digest_message(report, console=ctx.deployment.public_url))


def digest_message(report: DayReport, *, console: str | None = None) -> ChatMessage:
    """The digest of one day as a chat note: figures as fields, then what needs a person."""
    callbacks = report.callbacks
    ended = {"reached": callbacks.reached, "unreached": callbacks.unreached,
             "refused": callbacks.refused, "expired": callbacks.expired,
             "cancelled": callbacks.cancelled, "rejected": callbacks.rejected,
             "merged": callbacks.merged, "failed": callbacks.failed}
    fields = {
        "Calls": f"{report.calls_in} in · {report.calls_out} out",
        "Missed": str(report.missed),
        "Voicemails": str(report.voicemails),
        "Callbacks": " · ".join([f"{callbacks.placed} placed",
                                 *(f"{n} {word}" for word, n in ended.items() if n)]),
    }
    if callbacks.refusals:
        fields["Refused because"] = "; ".join(
            f"{reason or 'no reason given'} ({n})"
            for reason, n in sorted(callbacks.refusals.items(), key=lambda r: -r[1]))
    fields["Escalations"] = str(report.escalations)
    fields["Dead letters"] = str(report.dead_letters)
    fields["Model"] = (f"{report.model_answers} answers ({report.cached_answers} cached) · "
                       f"{report.prompt_tokens + report.completion_tokens:,} tokens · "
                       f"${report.cost_usd:.4f}")
    fields["Top topics"] = " · ".join(f"{t} ({n})" for t, n in report.topics) or "none"
    needs = [
        _count(callbacks.unreached, "callback unreached", "callbacks unreached"),
        _count(callbacks.expired, "callback given up (not placed in time)",
               "callbacks given up (not placed in time)"),
        _count(callbacks.failed, "callback phone.systems refused to place",
               "callbacks phone.systems refused to place"),
        _count(report.dead_letters, "dead letter", "dead letters"),
        _count(report.approvals_pending, "approval pending", "approvals pending"),
    ]
    listed = [item for item in needs if item]
    text = ("Needs a person:\n" + "\n".join(f"- {item}" for item in listed) if listed
            else "Nothing needs a person.")
    links: dict[str, str] = {}
    if console:
        base = f"{console.rstrip('/')}/console"
        links["Calls"] = f"{base}/calls"
        if callbacks.unreached or callbacks.expired or callbacks.failed:
            links["Callbacks"] = f"{base}/callbacks"
        if report.dead_letters:
            links["Dead letters"] = f"{base}/dead"
        if report.approvals_pending:
            links["Approvals"] = f"{base}/approvals"
    return ChatMessage(
        title=f"Daily digest for {report.day:%a %d %b %Y}", text=text, fields=fields,
        urgency="high" if listed else "low", reference=f"daily-digest:{report.day}",
        links=links,
    )


def _count(n: int, one: str, many: str) -> str:
    return "" if n == 0 else f"{n} {one if n == 1 else many}"
