"""Approvals in Slack, end to end: the request, the clicks, and what reaches the phone.

The shipped voicemail bot runs with every callback waiting for approval; Slack
is a fake Web API on loopback and clicks are signed exactly as Slack signs
them. In every case the callback is placed exactly once, or never.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from agentkit.actions.callbacks import callback_key
from agentkit.testing import wait_until
from agentkit.testing.slack import signed_click
from tests.approvals.support import (
    APPROVER,
    BOT,
    SIGNING_SECRET,
    STRANGER,
    click,
    leave_voicemail,
    post_click,
    until_ephemeral,
    voicemail_harness,
)
from tests.shipped.helpers import CALLER, titled


def buttons(message: dict[str, object]) -> list[dict[str, str]]:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


# the request


async def test_request_has_approve_and_reject_buttons_naming_the_approval(tmp_path: Path) -> None:
    """The request is posted with chat.postMessage to the channel: two buttons, the id as value."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.postMessage")
        (posted,) = slack.posted("chat.postMessage")
    assert posted["channel"] == "C0APPROVALS"
    assert [(b["action_id"], b["value"]) for b in buttons(posted)] == [
        ("approve", approval.id), ("reject", approval.id)]
    assert (await_message := slack.message_for(approval.id)) is not None
    assert await_message["channel"] == "C0APPROVALS"


async def test_request_says_what_why_and_until_when(tmp_path: Path) -> None:
    """The request shows the normalised number, the reason, the caller's words and the deadline."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.postMessage")
        text = json.dumps(slack.posted("chat.postMessage")[0]["blocks"])
    assert approval.what["to"] == CALLER
    assert CALLER in text
    assert "invoice 4011 is wrong" in text
    assert "Please call me back after 3pm" in text
    assert f"{approval.deadline:%Y-%m-%d %H:%M:%S} UTC" in text


async def test_callers_words_cannot_ping_or_link_in_slack(tmp_path: Path) -> None:
    """A caller's <!channel> or <http://x|y> reaches Slack escaped, never as markup."""
    async with voicemail_harness(tmp_path) as (h, slack):
        await leave_voicemail(h, slack, reason="<!channel> <http://evil.example|your bank>")
        await slack.wait_for("chat.postMessage")
        text = json.dumps(slack.posted("chat.postMessage")[0]["blocks"])
    assert "<!channel>" not in text and "<http://evil" not in text
    assert "&lt;!channel&gt;" in text


async def test_the_callback_waits_and_the_bot_says_so(tmp_path: Path) -> None:
    """Nothing is dialled before a decision; the bot's note says the callback waits."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await h.settle()
        record = await h.store.get_action(approval.action_key)
        (note,) = titled(h, "Voicemail from")
    assert h.calls_placed() == []
    assert record is not None and record.detail["state"] == "awaiting_approval"
    assert note["fields"]["Callback"].startswith("waiting for approval until")


# deciding


async def test_approve_places_the_callback_once(tmp_path: Path) -> None:
    """An approved callback is placed once, to the number shown; the message shows who and when."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.postMessage")
        answer = await click(h, slack, approval.id)
        await h.settle()
        await slack.wait_for("chat.update")
        (call,) = h.calls_placed()
        message = slack.message_for(approval.id)
        stored = await h.store.get_approval(approval.id)
    assert answer.status_code == 200
    assert call.to == CALLER
    assert message is not None and buttons(message) == []
    text = json.dumps(message["blocks"])
    assert f"<@{APPROVER}>" in text and "Approved" in text
    assert stored is not None and (stored.state, stored.decided_by) == (
        "approved", f"slack:{APPROVER}")


async def test_reject_never_dials_and_tells_the_bot(tmp_path: Path) -> None:
    """A rejected callback is never placed; the action ends rejected, the bot's note says so."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.postMessage")
        answer = await click(h, slack, approval.id, "reject")
        await h.settle()
        await slack.wait_for("chat.update")
        record = await h.store.get_action(approval.action_key)
        message = slack.message_for(approval.id)
        outcome = titled(h, f"Callback to {CALLER}")
    assert answer.status_code == 200
    assert h.calls_placed() == []
    assert record is not None and (record.state, record.detail["outcome"]) == (
        "failed", "rejected")
    assert message is not None and "Rejected" in json.dumps(message["blocks"])
    assert [m["title"] for m in outcome] == [f"Callback to {CALLER}: not approved, so not "
                                             "called back"]


async def test_timeout_rejects_and_posts_a_note(tmp_path: Path) -> None:
    """Nobody decides: at the deadline the action is rejected, a note says so, Slack shows it."""
    async with voicemail_harness(tmp_path, AGENTKIT_APPROVAL_TIMEOUT="1") as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.update", timeout=15)
        await h.settle()
        stored = await h.store.get_approval(approval.id)
        record = await h.store.get_action(approval.action_key)
        expired = titled(h, "Approval expired")
        message = slack.message_for(approval.id)
    assert h.calls_placed() == []
    assert stored is not None and stored.state == "expired"
    assert record is not None and record.detail["outcome"] == "rejected"
    assert len(expired) == 1 and "nothing was done" in expired[0]["text"]
    assert message is not None and "Expired" in json.dumps(message["blocks"])


async def test_double_click_decides_once(tmp_path: Path) -> None:
    """Two approvals at once: one counts, the other is told it was already approved."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.postMessage")
        first, second = await asyncio.gather(
            click(h, slack, approval.id), click(h, slack, approval.id, user="U0SECOND"))
        (reply,) = await until_ephemeral(slack, 1)
        await h.settle()
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(h.calls_placed()) == 1
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert "already approved by Slack user" in reply["text"]


async def test_reject_after_approve_changes_nothing(tmp_path: Path) -> None:
    """A reject after an approve gets an ephemeral 'already approved'; the call still goes."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await click(h, slack, approval.id)
        await click(h, slack, approval.id, "reject", user="U0SECOND")
        (reply,) = await until_ephemeral(slack, 1)
        await h.settle()
        stored = await h.store.get_approval(approval.id)
    assert f"already approved by Slack user {APPROVER}" in reply["text"]
    assert reply["hook"] == "U0SECOND"
    assert stored is not None and stored.state == "approved"
    assert len(h.calls_placed()) == 1


async def test_stranger_cannot_approve(tmp_path: Path) -> None:
    """Someone not in AGENTKIT_APPROVERS is told so, privately; nothing changes."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        answer = await click(h, slack, approval.id, user=STRANGER)
        (reply,) = await until_ephemeral(slack, 1)
        await h.settle()
        stored = await h.store.get_approval(approval.id)
    assert answer.status_code == 200
    assert "not allowed" in reply["text"]
    assert stored is not None and stored.state == "pending"
    assert h.calls_placed() == []


async def test_click_after_the_deadline_is_too_late(tmp_path: Path) -> None:
    """A click once the approval expired is told it is too late; nothing is dialled."""
    async with voicemail_harness(tmp_path, AGENTKIT_APPROVAL_TIMEOUT="1") as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.update", timeout=15)
        await click(h, slack, approval.id)
        (reply,) = await until_ephemeral(slack, 1)
        await h.settle()
    assert "too late" in reply["text"]
    assert h.calls_placed() == []


async def test_approval_racing_the_deadline_runs_once_or_never(tmp_path: Path) -> None:
    """Clicks land as the deadline job runs: each callback is placed once (approved) or never
    (expired), and Slack and the store agree on which."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approvals = []
        for n in range(4):
            h.llm.reply({"caller_name": "Ana Pop", "reason": f"race {n}", "urgency": "high",
                         "wants_callback": True, "callback_window": None,
                         "callback_number": None, "spam": False, "language": "en"})
            h.sim.leave_voicemail(f"+44207946011{n}", words="Please call me back.")
            await h.settle()
        approvals = await h.store.pending_approvals()
        assert len(approvals) == 4
        await slack.wait_for("chat.postMessage", 4)
        # The deadline jobs come due now (each runs as of its deadline), as the clicks land.
        moved, *answers = await asyncio.gather(
            h.run_scheduled("approval:"), *(click(h, slack, a.id) for a in approvals))
        assert len(moved) == 4
        await h.settle()
        await slack.wait_for("chat.update", 4)
        placed = {c.to for c in h.calls_placed()}
        states = {a.id: await h.store.get_approval(a.id) for a in approvals}
    assert all(answer.status_code == 200 for answer in answers)
    assert len(h.calls_placed()) == len(placed)
    for approval in approvals:
        stored = states[approval.id]
        assert stored is not None and stored.state in ("approved", "expired")
        assert (approval.what["to"] in placed) == (stored.state == "approved")
        message = slack.message_for(approval.id)
        assert message is not None
        word = "Approved" if stored.state == "approved" else "Expired"
        assert word in json.dumps(message["blocks"])


# refused requests


async def test_unsigned_stale_or_forged_clicks_get_401(tmp_path: Path) -> None:
    """No signature, a wrong secret, a timestamp over 5 minutes off, or a bad one: 401."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        body, headers = signed_click(SIGNING_SECRET, approval.id)
        unsigned = {"Content-Type": headers["Content-Type"]}
        forged = signed_click("not-the-secret", approval.id)
        old = signed_click(SIGNING_SECRET, approval.id, timestamp=int(time.time()) - 360)
        ahead = signed_click(SIGNING_SECRET, approval.id, timestamp=int(time.time()) + 360)
        garbled = {**headers, "X-Slack-Request-Timestamp": "soon"}
        statuses = [
            (await post_click(h, body, unsigned)).status_code,
            (await post_click(h, *forged)).status_code,
            (await post_click(h, *old)).status_code,
            (await post_click(h, *ahead)).status_code,
            (await post_click(h, body, garbled)).status_code,
            (await post_click(h, body + b"&x=1", headers)).status_code,
        ]
        refused = await post_click(h, *forged)
        stored = await h.store.get_approval(approval.id)
    assert statuses == [401] * 6
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert stored is not None and stored.state == "pending"


async def test_malformed_or_unknown_clicks_get_400(tmp_path: Path) -> None:
    """Signed but not a click, an unknown action, or an unknown approval: 400, nothing changes."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        payloads = [
            {"type": "view_submission", "user": {"id": APPROVER}},
            {"type": "block_actions", "user": {"id": APPROVER}, "actions": []},
            {"type": "block_actions", "user": {"id": APPROVER},
             "actions": [{"action_id": "delete_everything", "value": approval.id}]},
            {"type": "block_actions", "user": {"id": APPROVER},
             "actions": [{"action_id": "approve", "value": "apr_0000000000000000"}]},
            {"type": "block_actions", "user": {"id": APPROVER},
             "actions": [{"action_id": "approve"}]},
        ]
        answers = [await post_click(h, *signed_click(SIGNING_SECRET, "", payload=p))
                   for p in payloads]
        not_json = signed_click(SIGNING_SECRET, approval.id)
        broken = await post_click(h, b"payload=%7Bnot-json", {
            **not_json[1], **_resigned(b"payload=%7Bnot-json")})
        codes = [a.json()["error"]["code"] for a in answers]
        stored = await h.store.get_approval(approval.id)
    assert [a.status_code for a in answers] == [400] * 5
    assert codes == ["bad_payload", "bad_payload", "unknown_action", "unknown_approval",
                     "unknown_approval"]
    assert broken.status_code == 400
    assert stored is not None and stored.state == "pending"
    assert slack.ephemeral == []


def _resigned(body: bytes) -> dict[str, str]:
    from agentkit.testing.slack import slack_signature

    stamp = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_signature(SIGNING_SECRET, stamp, body)}


# the rules


async def test_callback_to_the_caller_id_needs_no_approval_under_other_number_rule(
        tmp_path: Path) -> None:
    """callback_to_other_number: a callback to the caller's own ID is placed at once."""
    async with voicemail_harness(
            tmp_path, AGENTKIT_APPROVALS="callback_to_other_number") as (h, slack):
        h.llm.reply({"caller_name": "Ana Pop", "reason": "invoice", "urgency": "high",
                     "wants_callback": True, "callback_window": None, "callback_number": None,
                     "spam": False, "language": "en"})
        h.sim.leave_voicemail(CALLER, words="Please call me back.")
        await h.settle()
        pending = await h.store.pending_approvals()
    assert [c.to for c in h.calls_placed()] == [CALLER]
    assert pending == []
    assert slack.posted("chat.postMessage") == []


async def test_spoken_number_waits_with_the_callers_words(tmp_path: Path) -> None:
    """callback_to_other_number: a number only spoken waits, shown with the words behind it."""
    async with voicemail_harness(
            tmp_path, AGENTKIT_APPROVALS="callback_to_other_number") as (h, slack):
        approval = await leave_voicemail(
            h, slack, callback_number="+442079460999",
            callback_number_quote="call me on oh two oh seven nine four six oh nine nine nine")
        await slack.wait_for("chat.postMessage")
    assert approval.what["to"] == "+442079460999"
    assert approval.what["caller"] == CALLER
    assert approval.why["quote"].startswith("call me on oh two")
    assert approval.why["rule"] == "callback_to_other_number"
    assert h.calls_placed() == []


async def test_dial_policy_is_checked_again_when_approved(tmp_path: Path) -> None:
    """A number put on the do-not-call list while waiting is not dialled once approved."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await h.store.add_do_not_call(CALLER, reason="asked not to be called",
                                      added_by="test")
        await click(h, slack, approval.id)
        await h.settle()
        await slack.wait_for("chat.update")
        record = await h.store.get_action(callback_key(approval.event_id, BOT))
        message = slack.message_for(approval.id)
    assert h.calls_placed() == []
    assert record is not None and record.detail["outcome"] == "refused"
    assert message is not None and "Not placed" in json.dumps(message["blocks"])


async def test_decision_survives_slack_being_down(tmp_path: Path) -> None:
    """Slack failing when the decision is shown: the job retries; the call is placed once."""
    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await slack.wait_for("chat.postMessage")
        slack.failures = 2
        await click(h, slack, approval.id)
        await wait_until(lambda: any(m == "chat.update" for m, _ in slack.calls)
                         and slack.failures == 0, timeout=15, message="Slack to recover")
        await h.settle()
        await wait_until(lambda: "Approved" in json.dumps(
            (slack.message_for(approval.id) or {}).get("blocks", [])), timeout=15,
            message="the message to show the approval")
        dead = await h.dead_jobs()
    assert len(h.calls_placed()) == 1
    assert dead == []


async def test_erasing_the_number_rejects_its_waiting_callback(tmp_path: Path) -> None:
    """An erasure rejects the approval naming the number: an approve click then changes
    nothing, and the number is never dialled."""
    from agentkit.erasure import erase

    async with voicemail_harness(tmp_path) as (h, slack):
        approval = await leave_voicemail(h, slack)
        await h.settle()
        await erase(h.store, CALLER, requested_by="dpo")
        await h.run_scheduled("approval:")
        await click(h, slack, approval.id)
        (reply,) = await until_ephemeral(slack, 1)
        await h.settle()
        stored = await h.store.get_approval(approval.id)
    assert stored is not None and (stored.state, stored.decided_by) == ("rejected", "erasure")
    assert "already rejected by erasure" in reply["text"]
    assert h.calls_placed() == []
