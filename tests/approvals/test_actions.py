"""Which actions wait, and what an approval then does: flow changes, escalations, rules.

Decisions here go through the ApprovalDesk, as the console and the CLI take
them; Slack's clicks are in test_slack.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit import Approvals, Bot, BotDefinitionError, ConfigError, Context, Settings
from agentkit.approvals.rules import waiting_rule
from agentkit.testing import BotHarness
from agentkit.testing.harness import SECRET

PORTED = "+40264000999"


def flow_bot(record: dict[str, Any], **options: Any) -> Bot:
    """On number.ported, sends the first flow to a new 'closed' block."""
    bot = Bot("flows", **options)

    @bot.on("number.ported")
    async def reroute(ctx: Context[Any]) -> None:
        flow = (await ctx.api.call_flows.list().to_list())[0]
        blocks = {**{k: v.model_dump(exclude_none=True) for k, v in flow.blocks.items()},
                  "closed": {"type": "voicemail", "mailbox_id": "vm_after_hours"}}
        record.update(await ctx.actions.update_flow(
            flow.id, entry="closed", blocks=blocks, reason="the office is closed"))

    return bot


def escalating_bot() -> Bot:
    bot = Bot("escalator")

    @bot.on("voicemail.received")
    async def escalate(ctx: Context[Any]) -> None:
        await ctx.actions.escalate(reason="angry customer", alert=False)

    return bot


async def ported(h: BotHarness) -> str:
    """Port a number in; the id of the flow the bot changes."""
    flow_id = next(iter(h.sim.state.call_flows))
    h.sim.port_in(PORTED, "RO")
    await h.settle()
    return flow_id


async def test_flow_change_waits_with_its_diff(tmp_path: Path) -> None:
    """flow_change: the change is not made; the approval holds the flow before, after, diff."""
    change: dict[str, Any] = {}
    async with BotHarness([flow_bot(change)], tmp_path,
                          env={"AGENTKIT_APPROVALS": "flow_change"}) as h:
        flow_id = await ported(h)
        (approval,) = await h.store.pending_approvals()
        entry = h.sim.state.call_flows[flow_id].entry
    assert entry == "greeting_1"
    assert change["approval_id"] == approval.id
    assert approval.kind == "update_flow"
    assert approval.what["after"]["entry"] == "closed"
    assert '+  "entry": "closed"' in approval.what["diff"]
    assert approval.why == {**approval.why, "reason": "the office is closed",
                            "rule": "flow_change"}


async def test_approved_flow_change_is_made_once(tmp_path: Path) -> None:
    """Approved, exactly the change shown is made, and recorded as done (revertible)."""
    async with BotHarness([flow_bot({})], tmp_path,
                          env={"AGENTKIT_APPROVALS": "flow_change"}) as h:
        flow_id = await ported(h)
        (approval,) = await h.store.pending_approvals()
        assert h.environment is not None
        verdict = await h.environment.approvals.decide(approval.id, "approved",
                                                       by="console:ana")
        await h.settle()
        record = await h.store.get_action(approval.action_key)
        entry = h.sim.state.call_flows[flow_id].entry
    assert verdict.decided
    assert entry == "closed"
    assert record is not None and (record.state, record.detail["outcome"],
                                   record.detail["approved_by"]) == (
        "done", "changed", "console:ana")


async def test_flow_changed_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    """A flow someone changed while the approval waited is left alone: outcome conflict."""
    async with BotHarness([flow_bot({})], tmp_path,
                          env={"AGENTKIT_APPROVALS": "flow_change"}) as h:
        flow_id = await ported(h)
        (approval,) = await h.store.pending_approvals()
        assert h.api is not None and h.environment is not None
        await h.api.call_flows.update(flow_id, name="Renamed by a person")
        await h.environment.approvals.decide(approval.id, "approved", by="console:ana")
        await h.settle()
        record = await h.store.get_action(approval.action_key)
        flow = h.sim.state.call_flows[flow_id]
    assert (flow.name, flow.entry) == ("Renamed by a person", "greeting_1")
    assert record is not None and (record.state, record.detail["outcome"]) == (
        "failed", "conflict")


async def test_rejected_flow_change_is_never_made(tmp_path: Path) -> None:
    """Rejected: the flow stays as it was, and the action says rejected."""
    async with BotHarness([flow_bot({})], tmp_path,
                          env={"AGENTKIT_APPROVALS": "flow_change"}) as h:
        flow_id = await ported(h)
        (approval,) = await h.store.pending_approvals()
        assert h.environment is not None
        await h.environment.approvals.decide(approval.id, "rejected", by="cli:root",
                                             reason="not today")
        await h.settle()
        record = await h.store.get_action(approval.action_key)
        entry = h.sim.state.call_flows[flow_id].entry
        notes = [m["title"] for m in h.chat_messages()]
    assert entry == "greeting_1"
    assert record is not None and (record.detail["outcome"], record.detail["reason"]) == (
        "rejected", "not today")
    assert "Rejected by root (cli): change to call flow " + flow_id in notes


async def test_bot_approvals_replace_the_deployment_rules(tmp_path: Path) -> None:
    """Approvals() on a bot turns the deployment's rules off for it: the change is made."""
    async with BotHarness([flow_bot({}, approvals=Approvals())], tmp_path,
                          env={"AGENTKIT_APPROVALS": "flow_change"}) as h:
        flow_id = await ported(h)
        pending = await h.store.pending_approvals()
        entry = h.sim.state.call_flows[flow_id].entry
    assert pending == []
    assert entry == "closed"


async def test_bot_timeout_sets_the_deadline(tmp_path: Path) -> None:
    """Approvals(timeout=...) gives the bot's approvals their own deadline."""
    async with BotHarness(
            [flow_bot({}, approvals=Approvals(rules=("flow_change",), timeout=7200))],
            tmp_path) as h:
        await ported(h)
        (approval,) = await h.store.pending_approvals()
    assert 7195 <= (approval.deadline - approval.created_at).total_seconds() <= 7205


async def test_escalation_rule_holds_escalations(tmp_path: Path) -> None:
    """escalation: an escalation waits for a person; nobody is dialled meanwhile."""
    async with BotHarness([escalating_bot()], tmp_path,
                          env={"AGENTKIT_APPROVALS": "escalation"}) as h:
        h.sim.leave_voicemail("+442079460000", words="This is unacceptable.")
        await h.settle()
        (approval,) = await h.store.pending_approvals()
    assert approval.kind == "escalation"
    assert h.calls_placed() == []


async def test_dry_run_never_asks(tmp_path: Path) -> None:
    """With AGENTKIT_DRY_RUN=1 nothing is asked and nothing is done."""
    async with BotHarness([escalating_bot()], tmp_path,
                          env={"AGENTKIT_APPROVALS": "escalation",
                               "AGENTKIT_DRY_RUN": "1"}) as h:
        h.sim.leave_voicemail("+442079460000", words="This is unacceptable.")
        await h.settle()
        pending = await h.store.pending_approvals()
    assert pending == []
    assert h.calls_placed() == []


# the rules and their settings


@pytest.mark.parametrize(("kind", "rules", "to", "caller", "rule"), [
    ("callback", ("callback_to_other_number",), "+442079460999", "+442079460000",
     "callback_to_other_number"),
    ("callback", ("callback_to_other_number",), "+442079460000", "+442079460000", None),
    ("callback", ("callback_to_other_number",), "+442079460000", None,
     "callback_to_other_number"),
    ("callback", ("flow_change", "escalation"), "+442079460999", "+442079460000", None),
    ("escalation", ("escalation",), "+442079460000", "+442079460000", "escalation"),
    ("callback", ("all_callbacks",), "+442079460000", "+442079460000", "all_callbacks"),
    ("escalation", ("all_callbacks",), "+442079460000", "+442079460000", "all_callbacks"),
    ("update_flow", ("flow_change",), None, None, "flow_change"),
    ("attach_number", ("flow_change",), None, None, "flow_change"),
    ("update_flow", ("all_callbacks",), None, None, None),
])
def test_waiting_rule(kind: str, rules: tuple[str, ...], to: str | None, caller: str | None,
                      rule: str | None) -> None:
    """Each rule covers its actions; a callback to the caller's own ID is not 'other'."""
    assert waiting_rule(kind, rules, to=to, caller=caller) == rule


def test_required_wins_over_rules() -> None:
    """approval='required' makes any action wait, with no rule at all."""
    assert waiting_rule("callback", (), required=True) == "required"


def test_unknown_rule_in_a_bot_is_a_definition_error() -> None:
    """Approvals(rules=[typo]) fails when the bot is declared, naming the rules."""
    with pytest.raises(BotDefinitionError, match="all_callbacks"):
        Approvals(rules=("all_callback",))


def test_unknown_rule_in_the_environment_is_refused() -> None:
    """AGENTKIT_APPROVALS with an unknown rule is a configuration error naming it."""
    with pytest.raises(ConfigError, match="unknown rules everything"):
        Settings.from_env({"AGENTKIT_APPROVALS": "flow_change,everything"}, sandbox=True,
                          env_file=None)


def test_slack_app_needs_all_three_settings() -> None:
    """A Slack bot token without the signing secret and channel is refused, naming them."""
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET, SLACK_APPROVAL_CHANNEL"):
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "ODYGY_WEBHOOK_SECRET": SECRET},
                          sandbox=True, env_file=None)


async def test_without_slack_the_note_links_to_the_console(tmp_path: Path) -> None:
    """No Slack app: the chat note (Teams, webhooks) asks, linking to the console's approvals."""
    async with BotHarness([escalating_bot()], tmp_path, env={
            "AGENTKIT_APPROVALS": "escalation",
            "AGENTKIT_PUBLIC_URL": "https://agentkit.example.com"}) as h:
        h.sim.leave_voicemail("+442079460000", words="This is unacceptable.")
        await h.settle()
        (approval,) = await h.store.pending_approvals()
        (note,) = [m for m in h.chat_messages() if m["title"].startswith("Approval needed")]
    assert note["links"] == {
        "Approve or reject in the console": "https://agentkit.example.com/console/approvals"}
    assert approval.id in note["text"]
    assert note["fields"]["Why"] == "angry customer"
