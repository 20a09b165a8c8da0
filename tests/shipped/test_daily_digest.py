"""The shipped daily-digest bot: its figures from a day the simulator made, its formats,
and when it is posted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agentkit import CallbackFigures, DayReport
from agentkit.actions.notify import ConsoleChannel, SlackChannel, TeamsChannel
from agentkit.bot import Bot
from agentkit.store import Store
from agentkit.testing import BotHarness, ManualClock
from tests.shipped.helpers import CALLER, PROMPTS, WORDS, request, shipped, titled, triage

ZONE = "Europe/Bucharest"
RING = 8.0


def digest_bot(monkeypatch: pytest.MonkeyPatch, at: str | None = None) -> Bot:
    """The shipped bot, loaded with DAILY_DIGEST_AT as given."""
    if at is None:
        monkeypatch.delenv("DAILY_DIGEST_AT", raising=False)
    else:
        monkeypatch.setenv("DAILY_DIGEST_AT", at)
    return shipped("daily_digest")


def report(**changes: object) -> DayReport:
    """A day with a little of everything, and two things that need a person."""
    values: dict[str, object] = dict(
        day=date(2026, 12, 1), time_zone=ZONE, start=datetime(2026, 11, 30, 22, tzinfo=UTC),
        end=datetime(2026, 12, 1, 22, tzinfo=UTC), calls_in=12, calls_out=5, missed=3,
        voicemails=4,
        callbacks=CallbackFigures(placed=5, reached=3, unreached=2, refused=1, expired=0,
                                  cancelled=0, rejected=0, merged=1, failed=0,
                                  refusals={"+19005550100 is a premium-rate number": 1}),
        escalations=1, dead_letters=1, model_answers=9, cached_answers=2, prompt_tokens=12000,
        completion_tokens=345, cost_usd=0.0123, topics=[("billing", 4), ("outage", 2)],
        approvals_pending=0, callbacks_open=1)
    values.update(changes)
    return DayReport.model_validate(values)


async def test_the_digest_counts_what_the_simulator_did(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missed call and a voicemail called back, an answered call and a missed call too
    short to call back: asked for now, the digest says exactly that, on each engine."""
    started = datetime.now(UTC)
    bots = [shipped("missed_call"), shipped("voicemail_callback"), digest_bot(monkeypatch)]
    async with BotHarness(bots, tmp_path, prompts=PROMPTS, store=store,
                          env={"AGENTKIT_TIME_ZONE": ZONE}) as h:
        h.llm.reply(triage())
        h.sim.inbound_call(CALLER, outcome="missed", ring=RING)
        h.sim.leave_voicemail("+442079460111", words=WORDS)
        h.sim.inbound_call("+442079460222")
        h.sim.inbound_call("+442079460333", outcome="missed", ring=1)
        await h.settle()
        await h.run_scheduled("join-timeout")
        await h.settle()
        await request(h, "daily-digest", "send")
        (digest,) = titled(h, "Daily digest for")
    local = started.astimezone(ZoneInfo(ZONE))
    if local.date() != datetime.now(UTC).astimezone(local.tzinfo).date():
        pytest.skip("the test ran over local midnight: its calls are in two days")
    assert digest["title"] == f"Daily digest for {local:%a %d %b %Y}"
    assert digest["fields"]["Calls"] == "4 in · 2 out"
    assert (digest["fields"]["Missed"], digest["fields"]["Voicemails"]) == ("2", "1")
    assert digest["fields"]["Callbacks"] == "2 placed · 2 reached"
    assert digest["fields"]["Dead letters"] == "0"
    assert digest["fields"]["Model"].startswith("1 answers (0 cached)")
    assert digest["text"] == "Nothing needs a person."


def test_slack_shows_figures_then_what_needs_a_person() -> None:
    """Block Kit: the title as header, the needs as a list, the figures as fields, the
    console links as one line."""
    from bots.daily_digest import digest_message

    message = digest_message(report(approvals_pending=3), console="https://ops.example.com")
    blocks = SlackChannel("https://hooks.slack.com/services/T/B/x").render(message)["blocks"]
    assert blocks[0]["text"]["text"].endswith("Daily digest for Tue 01 Dec 2026")
    assert blocks[1]["text"]["text"] == ("Needs a person:\n- 2 callbacks unreached\n"
                                         "- 1 dead letter\n- 3 approvals pending")
    shown = [f["text"] for f in blocks[2]["fields"]]
    assert "*Calls*\n12 in · 5 out" in shown
    assert "*Callbacks*\n5 placed · 3 reached · 2 unreached · 1 refused · 1 merged" in shown
    assert "*Model*\n9 answers (2 cached) · 12,345 tokens · $0.0123" in shown
    assert "*Top topics*\nbilling (4) · outage (2)" in shown
    assert "<https://ops.example.com/console/dead|Dead letters>" in blocks[3]["text"]["text"]


def test_teams_card_has_the_facts_and_buttons() -> None:
    """The Teams card: a fact per figure and a button per console page that needs a look."""
    from bots.daily_digest import digest_message

    message = digest_message(report(), console="https://ops.example.com")
    card = TeamsChannel("https://example.webhook.office.com/x").render(message)
    content = card["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in content["body"][2]["facts"]}
    assert facts["Refused because"] == "+19005550100 is a premium-rate number (1)"
    assert [a["title"] for a in content["actions"]] == ["Calls", "Callbacks", "Dead letters"]


def test_console_text_reads_at_a_glance() -> None:
    """Console text: the title, the needs, then one aligned line per figure; no links
    without AGENTKIT_PUBLIC_URL."""
    from bots.daily_digest import digest_message

    quiet = report(dead_letters=0, callbacks=report().callbacks.model_copy(
        update={"unreached": 0}))
    text = ConsoleChannel().render(digest_message(quiet))
    lines = text.splitlines()
    assert lines[1:3] == ["Daily digest for Tue 01 Dec 2026", "Nothing needs a person."]
    assert "  Calls            12 in · 5 out" in lines
    assert not any("console/" in line for line in lines)


async def test_posted_once_at_the_daily_time_even_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DAILY_DIGEST_AT passed a minute ago: the digest is posted once; agentkit restarted
    on the same store (the same SQLite file) does not post it again."""
    clock = ManualClock(datetime.now(UTC).replace(hour=12, minute=1))
    bot = digest_bot(monkeypatch, at="12:00")
    async with BotHarness([bot], tmp_path, prompts=PROMPTS, clock=clock,
                          env={"AGENTKIT_TIME_ZONE": "UTC"}) as h:
        await h.settle()
        assert len(titled(h, "Daily digest for")) == 1
    async with BotHarness([digest_bot(monkeypatch, at="12:00")], tmp_path, prompts=PROMPTS,
                          clock=clock, env={"AGENTKIT_TIME_ZONE": "UTC"}) as again:
        await again.settle()
        assert titled(again, "Daily digest for") == []


async def test_no_digest_before_the_daily_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 11:59 with DAILY_DIGEST_AT=12:00, the last change is midnight's opening: nothing."""
    clock = ManualClock(datetime.now(UTC).replace(hour=11, minute=59))
    async with BotHarness([digest_bot(monkeypatch, at="12:00")], tmp_path, prompts=PROMPTS,
                          clock=clock, env={"AGENTKIT_TIME_ZONE": "UTC"}) as h:
        await h.settle()
        assert h.chat_messages() == []


async def test_a_closing_days_old_is_not_posted_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started three days after the hours last closed: no stale digest at start-up."""
    now = datetime.now(UTC)
    closed_day = (now - timedelta(days=3)).strftime("%a")
    async with BotHarness([digest_bot(monkeypatch)], tmp_path, prompts=PROMPTS,
                          env={"AGENTKIT_BUSINESS_HOURS": f"{closed_day} 00:00-00:01 UTC"}) as h:
        await h.settle()
        assert h.chat_messages() == []


async def test_a_day_that_is_no_date_is_refused_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """agentkit request daily-digest send --arg day=yesterday: a note says how to ask."""
    async with BotHarness([digest_bot(monkeypatch)], tmp_path, prompts=PROMPTS) as h:
        await request(h, "daily-digest", "send", day="yesterday")
        (note,) = h.chat_messages()
    assert note["title"] == "No digest posted"
    assert note["text"] == "day='yesterday' is not a date: give YYYY-MM-DD."


def test_a_bad_daily_time_stops_the_bot_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAILY_DIGEST_AT=6pm: the bot does not load, and the message shows the form wanted."""
    from agentkit.bot import BotDefinitionError

    with pytest.raises(BotDefinitionError, match=r"at='6pm' must be a time of day .*HH:MM"):
        digest_bot(monkeypatch, at="6pm")


def test_a_callback_phone_systems_refused_needs_a_person() -> None:
    """A callback the API refused to place is listed for a person, and counted as failed."""
    from bots.daily_digest import digest_message

    failed = report(dead_letters=0, callbacks=report().callbacks.model_copy(
        update={"unreached": 0, "failed": 1}))
    message = digest_message(failed)
    assert message.text == "Needs a person:\n- 1 callback phone.systems refused to place"
    assert message.fields["Callbacks"].endswith("· 1 failed")
