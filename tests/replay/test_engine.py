"""Replay over a store the simulator and the shipped bots filled: what it reproduces and finds.

The store is opened again from its file after the live run stopped, simulator and all, so
every API read the replay makes comes from what the store kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agentkit import Bot, CallCompleted, Context, DialPolicy, VoicemailReceived
from agentkit.replay.engine import ReplayScope, shadow_report
from agentkit.testing.fake_llm import FakeLlm
from agentkit.testing.harness import BotHarness
from tests.replay.support import CALLERS, STRICT, fill, live_bots, live_store, replay, scripted
from tests.shipped.helpers import PROMPTS, shipped

LIVE_TABLES = ("events", "jobs", "actions", "model_answers", "bot_runs", "placed_calls",
               "dial_claims", "joins", "api_reads", "approvals")


async def test_live_bots_replayed_make_no_difference(tmp_path: Path) -> None:
    """The determinism check: the live bots as the candidate decide exactly what they did live,
    across joins, a timed-out join and a retried handler, and their unchanged prompts cost no
    tokens: every answer comes from the cache."""
    async with live_store(tmp_path) as (store, settings), FakeLlm(responder=scripted) as model:
        report = await replay(store, settings, live_bots(), model=model)
    assert report.calls >= 5 and report.errors == 0
    assert report.counts == {} and report.differing == []
    assert report.live.actions == report.replayed.actions
    assert report.live.actions["callback"] == 2 and report.live.actions["escalation"] == 1
    assert report.replayed.model_answers == report.replayed.cached_answers > 0
    assert report.replayed.tokens == 0 and report.live.tokens > 0
    assert model.requests == []


async def test_a_changed_prompt_shows_changed_urgency(tmp_path: Path) -> None:
    """A stricter triage prompt: the invoice voicemail's callback becomes urgent, the model's
    urgency field changes, and the new prompt's answers cost tokens."""
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS, prompts)
    triage = prompts / "voicemail_triage.j2"
    triage.write_text(triage.read_text().replace(
        "{% block system %}", "{% block system %}\n" + STRICT + ": a wrong invoice is urgent."))
    async with live_store(tmp_path / "live") as (store, settings), \
            FakeLlm(responder=scripted) as model:
        report = await replay(store, settings, live_bots(), model=model, prompts=prompts)
    changed = [d for call in report.differing for d in call.differences.actions]
    assert [(d.change, d.kind, d.fields) for d in changed] == [
        ("changed", "callback", ["urgency"])]
    assert (changed[0].live or {})["urgency"] == "normal"
    assert (changed[0].candidate or {})["urgency"] == "urgent"
    assert (changed[0].live or {})["to"] == CALLERS[0]
    fields = [(f.task, f.field, f.live, f.candidate)
              for call in report.differing for f in call.differences.fields]
    assert ("extract", "urgency", "normal", "urgent") in fields
    assert report.counts["changed-callbacks"] == 1
    assert report.replayed.tokens > 0 and len(model.requests) == report.replayed.model_answers \
        - report.replayed.cached_answers


async def test_a_changed_policy_shows_refused_callbacks(tmp_path: Path) -> None:
    """A dial policy that allows only Romanian numbers: both callbacks to British callers are
    refused; nothing else changes."""
    async with live_store(tmp_path) as (store, settings), FakeLlm(responder=scripted) as model:
        bots = live_bots()
        bots[0].dial_policy = DialPolicy(allowed_countries=frozenset({"RO"}))
        report = await replay(store, settings, bots, model=model)
    changed = [d for call in report.differing for d in call.differences.actions]
    assert len(changed) == 2
    for difference in changed:
        assert (difference.change, difference.kind, difference.fields) == (
            "changed", "callback", ["decision"])
        assert (difference.candidate or {})["decision"] == "refused"
    assert report.counts == {"changed-callbacks": 2}


async def test_a_removed_handler_shows_removed_notes(tmp_path: Path) -> None:
    """The CRM bot without its call handler: each inbound call's CRM note is removed."""
    async with live_store(tmp_path) as (store, settings), FakeLlm(responder=scripted) as model:
        crm = Bot("crm-note")

        @crm.on(VoicemailReceived)
        async def nothing(ctx: Context[Any]) -> None:
            return None

        report = await replay(store, settings, [*live_bots()[:3], crm], model=model)
    removed = [d for call in report.differing for d in call.differences.actions]
    assert {(d.change, d.kind, d.bot) for d in removed} == {("removed", "notify", "crm-note")}
    assert report.counts == {"removed-notes": 5} and report.calls_differing == 5


async def test_a_candidate_is_compared_with_its_namesakes_only(tmp_path: Path) -> None:
    """Replaying the summary bot alone compares it with the live summary bot, not with the
    others: no difference, and the other bots' actions are not counted."""
    async with live_store(tmp_path) as (store, settings), FakeLlm(responder=scripted) as model:
        report = await replay(store, settings, [shipped("call_summary")], model=model)
    assert report.against == ["call-summary"] and report.counts == {}
    assert report.live.actions == report.replayed.actions == {"notify": 2}


async def test_scope_by_call_and_limit(tmp_path: Path) -> None:
    """--call replays only the calls named; --limit the oldest N."""
    async with live_store(tmp_path) as (store, settings), FakeLlm(responder=scripted) as model:
        rows = await store.replay_calls(limit=100)
        one = await replay(store, settings, live_bots(), model=model,
                           scope=ReplayScope(call_ids=(rows[-1].call_id,)))
        two = await replay(store, settings, live_bots(), model=model,
                           scope=ReplayScope(limit=2))
        later = await replay(store, settings, live_bots(), model=model,
                             scope=ReplayScope(since=rows[-1].started_at))
    assert (one.calls, two.calls) == (1, 2)
    assert later.calls == sum(1 for row in rows if row.started_at >= rows[-1].started_at)


async def test_replay_writes_nothing_to_the_live_tables(tmp_path: Path) -> None:
    """A replay with a changed prompt adds only model-answer cache entries to the live store."""
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS, prompts)
    triage = prompts / "voicemail_triage.j2"
    triage.write_text(triage.read_text().replace("{% block system %}",
                                                 "{% block system %}\n" + STRICT))
    async with live_store(tmp_path / "live") as (store, settings), \
            FakeLlm(responder=scripted) as model:
        before = {table: await _rows(store, table) for table in (*LIVE_TABLES, "llm_cache")}
        report = await replay(store, settings, live_bots(), model=model, prompts=prompts)
        after = {table: await _rows(store, table) for table in (*LIVE_TABLES, "llm_cache")}
    assert report.counts
    assert {t: after[t] for t in LIVE_TABLES} == {t: before[t] for t in LIVE_TABLES}
    assert after["llm_cache"] > before["llm_cache"]


async def test_a_bot_that_writes_to_the_api_is_refused(tmp_path: Path) -> None:
    """A candidate that places a call itself, behind agentkit's back, is refused by the
    read-only client; the replay reports the error and goes on."""
    async with live_store(tmp_path) as (store, settings), FakeLlm(responder=scripted) as model:
        rogue = Bot("rogue")

        @rogue.on(CallCompleted, direction="inbound")
        async def dial(ctx: Context[CallCompleted]) -> None:
            await ctx.api.calls.create(from_=ctx.event.data.to, to="+442079460999")

        report = await replay(store, settings, [rogue], model=model)
    assert report.errors == 5
    assert all("ReadOnlyError" in e and "POST" in e
               for call in report.differing for e in call.errors)


async def test_shadow_report_compares_a_shadow_bot_with_the_live_one(tmp_path: Path) -> None:
    """A stricter voicemail bot run in shadow beside the live one: the shadow report reads both
    from the action log and shows the urgency it would have changed."""
    strict = tmp_path / "prompts"
    shutil.copytree(PROMPTS, strict)
    triage = strict / "voicemail_triage.j2"
    triage.write_text(triage.read_text().replace("{% block system %}",
                                                 "{% block system %}\n" + STRICT))
    live = shipped("voicemail_callback")
    candidate = shipped("voicemail_callback")
    candidate.name, candidate.mode, candidate.prompts = "voicemail-strict", "shadow", strict
    async with BotHarness([live, candidate], tmp_path, prompts=PROMPTS) as h:
        await fill(h)
        report = await shadow_report(h.store, "voicemail-strict",
                                     against=["voicemail-callback"])
    assert report.source == "shadow" and report.calls >= 5
    changed = [d for call in report.differing for d in call.differences.actions]
    assert [(d.kind, d.fields) for d in changed] == [("callback", ["urgency"])]
    assert report.counts == {"changed-callbacks": 1, "changed-fields": 1}


async def _rows(store: Any, table: str) -> int:
    return int(await store._read(
        lambda db: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]))
