"""Reports on every engine: a day's figures from the shipped bots' work, and where a day
begins and ends in a time zone."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from agentkit.errors import ConfigError
from agentkit.reporting import CallbackFigures, Reports
from agentkit.store import ModelAnswer, NewEvent, Store
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import BotHarness
from tests.shipped.helpers import CALLER, PROMPTS, WORDS, shipped, triage

ZONE = "Europe/Bucharest"
VOICEMAIL_CALLER = "+442079460111"
ANSWERED_CALLER = "+442079460222"
UNWANTED_CALLER = "+442079460333"
RING = 8.0
# Local midnight starting 23 April 2026 in Bucharest (summer time, UTC+3).
MIDNIGHT = datetime(2026, 4, 22, 21, 0, tzinfo=UTC)
TICK = timedelta(milliseconds=1)


def completed(name: str, at: datetime) -> NewEvent:
    """An inbound call that ended answered, created ``at``."""
    body = {"id": name, "type": "call.completed", "created_at": at.isoformat(),
            "data": {"id": f"cal_{name}", "direction": "inbound", "status": "completed"}}
    return NewEvent(id=name, type="call.completed", created_at=at, call_id=f"cal_{name}",
                    body=json.dumps(body).encode(), routable=False)


def reports(store: Store, now: datetime = MIDNIGHT, zone: str | None = ZONE) -> Reports:
    return Reports(store, zone=zone, clock=lambda: now)


async def test_day_of_the_shipped_bots_work(store: Store, tmp_path: Path) -> None:
    """A missed call and a voicemail called back and reached, a call answered, and a missed
    call from a do-not-call number refused: the day's report counts exactly those."""
    started = datetime.now(UTC)
    await store.add_do_not_call(UNWANTED_CALLER, reason="asked not to be called",
                                added_by="tester")
    bots = [shipped("missed_call"), shipped("voicemail_callback")]
    async with BotHarness(bots, tmp_path, prompts=PROMPTS, store=store) as h:
        h.llm.reply(triage())
        h.sim.inbound_call(CALLER, outcome="missed", ring=RING)
        h.sim.leave_voicemail(VOICEMAIL_CALLER, words=WORDS)
        h.sim.inbound_call(ANSWERED_CALLER)
        h.sim.inbound_call(UNWANTED_CALLER, outcome="missed", ring=RING)
        await h.settle()
        await h.run_scheduled("join-timeout")
        await h.settle()
        assert sorted(c.to for c in h.calls_placed()) == [CALLER, VOICEMAIL_CALLER]
        report = await reports(h.store, now=started).day()
    if report.end <= datetime.now(UTC):
        pytest.skip("the test ran over local midnight: its calls are in two days")
    assert (report.calls_in, report.calls_out, report.missed, report.voicemails) == (4, 2, 2, 1)
    assert report.callbacks == CallbackFigures(
        placed=2, reached=2, unreached=0, refused=1, expired=0, cancelled=0, rejected=0,
        merged=0, failed=0, refusals={
            f"{UNWANTED_CALLER} is on the do-not-call list (added by tester: "
            "asked not to be called)": 1,
        },
    )
    assert (report.escalations, report.dead_letters) == (0, 0)
    assert (report.model_answers, report.cached_answers) == (1, 0)
    assert (report.approvals_pending, report.callbacks_open) == (0, 0)


async def test_day_is_cut_at_local_midnight(store: Store) -> None:
    """A call a moment before local midnight is in the day before; one at midnight is in
    the day it starts."""
    await store.add_events([completed("e1", MIDNIGHT - TICK), completed("e2", MIDNIGHT),
                            completed("e3", MIDNIGHT + TICK)])
    before = await reports(store).day(date(2026, 4, 22))
    after = await reports(store).day(date(2026, 4, 23))
    assert (before.calls_in, after.calls_in) == (1, 2)
    assert (before.end, after.start) == (MIDNIGHT, MIDNIGHT)


async def test_today_is_the_date_in_the_time_zone(store: Store) -> None:
    """Half an hour after Bucharest's midnight (still the day before in UTC), today is the
    new local day."""
    report = await reports(store, now=MIDNIGHT + timedelta(minutes=30)).day()
    assert (report.day, report.time_zone) == (date(2026, 4, 23), ZONE)
    assert (report.start, report.end) == (MIDNIGHT, MIDNIGHT + timedelta(days=1))


@pytest.mark.parametrize(("day", "start", "hours"), [
    (date(2026, 10, 25), datetime(2026, 10, 24, 21, tzinfo=UTC), 25),
    (date(2026, 3, 29), datetime(2026, 3, 28, 22, tzinfo=UTC), 23),
])
async def test_a_day_the_clocks_change_is_longer_or_shorter(
    store: Store, day: date, start: datetime, hours: int
) -> None:
    """In Bucharest the last Sunday of October lasts 25 hours and the last of March 23, each
    from its local midnight to the next."""
    report = await reports(store).day(day)
    assert (report.start, report.end - report.start) == (start, timedelta(hours=hours))


async def test_a_call_late_on_the_long_day_counts_in_it(store: Store) -> None:
    """On the 25-hour day, a call at 23:30 local time (21:30 UTC) is still that day's."""
    await store.add_events([completed("e1", datetime(2026, 10, 25, 21, 30, tzinfo=UTC))])
    assert (await reports(store).day(date(2026, 10, 25))).calls_in == 1
    assert (await reports(store).day(date(2026, 10, 26))).calls_in == 0


async def test_no_time_zone_is_utc(store: Store) -> None:
    """Without a time zone a day runs from midnight UTC to the next."""
    report = await reports(store, zone=None).day(date(2026, 4, 23))
    assert report.time_zone == "UTC"
    assert (report.start, report.end) == (datetime(2026, 4, 23, tzinfo=UTC),
                                          datetime(2026, 4, 24, tzinfo=UTC))


async def test_callback_figures_by_outcome(store: Store) -> None:
    """Each outcome of an ended callback or escalation lands in its own figure."""
    outcomes = ["reached", "unreached", "unreached", "refused", "expired", "cancelled",
                "rejected", "merged", "failed"]
    started = datetime.now(UTC)
    for n, outcome in enumerate(outcomes):
        key = f"e1:bot:callback:{n}"
        await store.claim_action(key, event_id="e1", bot="bot", kind="callback", detail={})
        await store.settle_action(key, "failed", {"outcome": outcome, "reason": "why"})
    report = await reports(store, now=started).day()
    if report.end <= datetime.now(UTC):
        pytest.skip("the test ran over local midnight: its callbacks are in two days")
    assert report.callbacks == CallbackFigures(
        placed=0, reached=1, unreached=2, refused=1, expired=1, cancelled=1, rejected=1,
        merged=1, failed=1, refusals={"why": 1},
    )


async def test_top_three_topics_most_named_first_ties_by_name(store: Store) -> None:
    """The three topics named most come first, those named as often in name order."""
    for topics in (["billing", "refund", "delivery"], ["Billing", "address", "refund"],
                   ["billing", "delivery", "address", "zebra"]):
        await store.record_model_answer(ModelAnswer(
            event_id="e1", bot="b", task="t", model="m", prompt_tokens=1, completion_tokens=1,
            cost_usd=0.0, cached=False, answer=json.dumps({"topics": topics}),
            created_at=MIDNIGHT + timedelta(hours=1)))
    report = await reports(store).day(date(2026, 4, 23))
    assert report.topics == [("billing", 3), ("address", 2), ("delivery", 2)]


def test_an_unknown_time_zone_is_a_config_error(tmp_path: Path) -> None:
    """A time zone that is not an IANA name is refused at once, saying what to use."""
    with pytest.raises(ConfigError, match="IANA time zone"):
        Reports(SqliteStore(tmp_path / "agentkit.db"), zone="Mars/Olympus",
                clock=lambda: MIDNIGHT)
