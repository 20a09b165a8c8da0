"""Approvals in the console: the waiting list, and who may approve or reject from it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentkit.console.access import UsersFile
from agentkit.console.session import ConsoleAccess
from agentkit.store import Approval, NewApproval, NewEvent
from agentkit.testing import BotHarness, wait_until
from tests.console.support import SHARED_TOKEN, Console, make_console
from tests.shipped.helpers import CALLER, WORDS, harness, shipped, triage

APPROVE_ALL = {"AGENTKIT_APPROVALS": "all_callbacks"}
QUOTE = '<script>alert("x")</script> call me & <b>now</b>'


async def seed(h: BotHarness, name: str, *, seconds: float = 3600, kind: str = "callback",
               what: dict[str, Any] | None = None) -> Approval:
    """A pending approval on a stored voicemail of call ``cal_<name>``, asked directly."""
    event_id = f"evt_{name}"
    body = {"id": event_id, "type": "voicemail.received",
            "created_at": "2026-04-23T10:12:45Z", "data": {"from": CALLER}}
    await h.store.add_events([NewEvent(
        id=event_id, type="voicemail.received", created_at=datetime.now(UTC),
        call_id=f"cal_{name}", body=json.dumps(body).encode(), routable=False)])
    approval, _ = await h.store.add_approval(NewApproval(
        id=f"apr_{name}", action_key=f"callback:{name}", event_id=event_id, bot="x",
        kind=kind, what=what or {"to": CALLER, "from": "+40264000111", "urgency": "high"},
        why={"reason": "wants <i>a call</i> back", "quote": QUOTE, "rule": "all_callbacks"},
        deadline=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds),
    ))
    return approval


async def leave_voicemail(h: BotHarness) -> Approval:
    """A voicemail asking for a callback, which waits; its approval."""
    h.llm.reply(triage())
    h.sim.leave_voicemail(CALLER, words=WORDS)
    await h.settle()
    (approval,) = await h.store.pending_approvals()
    return approval


async def signed_in(h: BotHarness, tmp_path: Path, role: str, name: str = "Ana") -> Console:
    """A console whose users file has ``name`` with ``role``, signed in as them."""
    users = UsersFile(tmp_path / f"users-{name}.json")
    token = users.add(name, role)
    console = make_console(h, users_file=users)
    assert (await console.login(token=token)).status_code == 303
    return console


async def state(h: BotHarness, approval_id: str) -> str:
    found = await h.store.get_approval(approval_id)
    assert found is not None
    return found.state


# the list


async def test_a_pending_approval_is_listed_with_its_what_and_why_escaped(
        tmp_path: Path) -> None:
    """The page shows the action, the bot, the reason, the caller's words (escaped, never
    markup), the deadline and a link to the call."""
    async with BotHarness([], tmp_path) as h:
        approval = await seed(h, "a")
        console = await signed_in(h, tmp_path, "approver")
        status, page = await console.get("/console/approvals")
    assert status == 200
    assert f"callback to {CALLER} from +40264000111" in page
    assert "asked by x" in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; call me &amp; &lt;b&gt;now&lt;/b&gt;" \
        in page
    assert "wants &lt;i&gt;a call&lt;/i&gt; back" in page
    assert "<script>alert" not in page and "<b>now" not in page
    assert 'href="/console/calls/cal_a"' in page
    assert f"{approval.deadline:%Y-%m-%d %H:%M:%S}" in page


async def test_a_flow_change_shows_its_diff(tmp_path: Path) -> None:
    """A flow change waiting for approval shows the diff of what will change, escaped."""
    async with BotHarness([], tmp_path) as h:
        await seed(h, "f", kind="update_flow",
                   what={"flow_id": "cf_1", "diff": '-  "name": "Main"\n+  "name": "<Night>"'})
        console = await signed_in(h, tmp_path, "approver")
        _, page = await console.get("/console/approvals")
    assert "change to call flow cf_1" in page
    assert ('<pre class="diff">-  &#34;name&#34;: &#34;Main&#34;\n'
            '+  &#34;name&#34;: &#34;&lt;Night&gt;&#34;</pre>') in page


async def test_the_list_is_oldest_first_and_leaves_out_those_past_their_deadline(
        tmp_path: Path) -> None:
    """Approvals show in the order they were asked; one past its deadline is not offered."""
    async with BotHarness([], tmp_path) as h:
        await seed(h, "first")
        await seed(h, "second")
        await seed(h, "late", seconds=-5)
        console = await signed_in(h, tmp_path, "approver")
        _, page = await console.get("/console/approvals")
    assert re.findall(r'action="/console/approvals/(apr_\w+)/approve"', page) == [
        "apr_first", "apr_second"]


async def test_the_navigation_counts_pending_approvals(tmp_path: Path) -> None:
    """Every page's navigation links to Approvals with how many wait."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        await console.login()
        _, before = await console.get("/console/calls")
        await seed(h, "a")
        await seed(h, "b")
        _, after = await console.get("/console/calls")
    assert 'href="/console/approvals"' in before and 'class="count"' not in before
    assert '<span class="count">2</span>' in after


async def test_the_shared_login_sees_the_list_without_buttons(tmp_path: Path) -> None:
    """The shared login may look, but the page has no buttons and says only approvers decide."""
    async with BotHarness([], tmp_path) as h:
        await seed(h, "a")
        console = make_console(h)
        await console.login(name="Dana")
        _, page = await console.get("/console/approvals")
    assert "apr_a" in page and "Only approvers decide" in page
    assert "/approve" not in page and "/reject" not in page


# deciding


async def test_an_approver_approves_and_the_callback_is_placed(tmp_path: Path) -> None:
    """Approve decides the approval as the signed-in approver, adds its decided job, and
    the workers place the callback."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=APPROVE_ALL) as h:
        approval = await leave_voicemail(h)
        assert h.calls_placed() == []
        console = await signed_in(h, tmp_path, "approver")
        response = await console.post(f"/console/approvals/{approval.id}/approve",
                                      back="/console/approvals")
        assert response.status_code == 303
        assert response.headers["Location"] == "/console/approvals?note=approved"
        decided = await h.store.get_approval(approval.id)
        assert decided is not None and decided.state == "approved"
        assert decided.decided_by == "console:Ana"
        jobs = await h.store.jobs_for_event(approval.event_id)
        assert f"approval:{approval.id}:decided" in [job.name for job in jobs]
        placed = await wait_until(h.calls_placed, timeout=10, message="the callback")
        _, page = await console.get("/console/approvals?note=approved")
    assert [call.to for call in placed] == [CALLER]
    assert "Approved: the workers carry out the action shortly." in page
    assert approval.id not in page


async def test_a_second_approval_changes_nothing_and_says_who_decided(tmp_path: Path) -> None:
    """Approving what is already approved is refused with 409, naming who approved it."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=APPROVE_ALL) as h:
        approval = await leave_voicemail(h)
        console = await signed_in(h, tmp_path, "approver")
        await console.post(f"/console/approvals/{approval.id}/approve")
        before = await h.store.get_approval(approval.id)
        again = await console.post(f"/console/approvals/{approval.id}/approve")
        assert again.status_code == 409
        text = await again.get_data(as_text=True)
        assert await h.store.get_approval(approval.id) == before
        await h.settle()
    assert "already approved by Ana (console)" in text
    assert len(h.calls_placed()) == 1


async def test_reject_keeps_the_reason_and_nothing_is_dialled(tmp_path: Path) -> None:
    """Reject decides the approval as rejected, with the reason typed; no callback is placed."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=APPROVE_ALL) as h:
        approval = await leave_voicemail(h)
        console = await signed_in(h, tmp_path, "approver")
        response = await console.post(f"/console/approvals/{approval.id}/reject",
                                      reason="  a known   prank caller ")
        assert response.status_code == 303
        assert response.headers["Location"] == "/console/approvals?note=rejected"
        await h.settle()
        decided = await h.store.get_approval(approval.id)
    assert decided is not None and decided.state == "rejected"
    assert decided.reason == "a known prank caller"
    assert h.calls_placed() == []


async def test_the_shared_login_never_approves(tmp_path: Path) -> None:
    """The shared login gets 403, saying why, and the approval stays pending."""
    async with BotHarness([], tmp_path) as h:
        approval = await seed(h, "a")
        console = make_console(h)
        await console.login(name="Dana")
        response = await console.post(f"/console/approvals/{approval.id}/approve")
        assert response.status_code == 403
        assert "shared token" in await response.get_data(as_text=True)
        assert await state(h, approval.id) == "pending"


async def test_viewers_and_operators_may_not_decide(tmp_path: Path) -> None:
    """A viewer's and an operator's approve or reject get 403; the approval stays pending."""
    async with BotHarness([], tmp_path) as h:
        approval = await seed(h, "a")
        for role in ("viewer", "operator"):
            console = await signed_in(h, tmp_path, role, name=f"{role}-person")
            for decision in ("approve", "reject"):
                response = await console.post(f"/console/approvals/{approval.id}/{decision}")
                assert response.status_code == 403, (role, decision)
        assert await state(h, approval.id) == "pending"


async def test_a_decision_without_the_csrf_token_is_refused(tmp_path: Path) -> None:
    """An approver's POST with no or a wrong CSRF token gets 403 and decides nothing."""
    async with BotHarness([], tmp_path) as h:
        approval = await seed(h, "a")
        console = await signed_in(h, tmp_path, "approver")
        for form in ({}, {"csrf": "not-the-token"}):
            response = await console.client.post(
                f"/console/approvals/{approval.id}/approve", form=form)
            assert response.status_code == 403
        assert await state(h, approval.id) == "pending"


async def test_an_unknown_approval_is_404(tmp_path: Path) -> None:
    """Approving an id the store does not have answers 404."""
    async with BotHarness([], tmp_path) as h:
        console = await signed_in(h, tmp_path, "approver")
        response = await console.post("/console/approvals/apr_nope/approve")
    assert response.status_code == 404


async def test_a_decision_after_the_deadline_is_too_late(tmp_path: Path) -> None:
    """Past the deadline, approve is refused with 409 saying it is too late; it is expired,
    never approved."""
    async with BotHarness([], tmp_path) as h:
        approval = await seed(h, "a", seconds=-5)
        console = await signed_in(h, tmp_path, "approver")
        response = await console.post(f"/console/approvals/{approval.id}/approve")
        assert response.status_code == 409
        assert "too late" in await response.get_data(as_text=True)
        assert await state(h, approval.id) == "expired"


async def test_an_over_long_reason_is_refused(tmp_path: Path) -> None:
    """A rejection's reason over 500 characters gets 400 and decides nothing."""
    async with BotHarness([], tmp_path) as h:
        approval = await seed(h, "a")
        console = await signed_in(h, tmp_path, "approver")
        response = await console.post(f"/console/approvals/{approval.id}/reject",
                                      reason="x" * 501)
        assert response.status_code == 400
        assert await state(h, approval.id) == "pending"


# the sandbox


async def test_the_sandbox_url_token_signs_in_an_approver_with_approvals_on() -> None:
    """With ``url_role``, the URL token makes "sandbox", an approver who is not the shared
    login, and its session holds until the token changes."""
    access = ConsoleAccess(secret_key="k", shared_token="tok", url_role="approver")
    operator = await access.sign_in_by_url("tok")
    assert operator is not None
    assert (operator.name, operator.role, operator.shared) == ("sandbox", "approver", False)
    assert operator.can_approve
    assert access.operator(access.cookie(operator)) == operator
    assert await access.sign_in_by_url("wrong") is None
    other = ConsoleAccess(secret_key="k", shared_token="new", url_role="approver")
    assert other.operator(access.cookie(operator)) is None


async def test_the_sandbox_url_token_is_the_shared_login_without_approvals() -> None:
    """Without ``url_role``, the URL token signs in the shared login, which never approves;
    the form's shared login stays shared either way."""
    plain = ConsoleAccess(secret_key="k", shared_token="tok")
    operator = await plain.sign_in_by_url("tok")
    assert operator is not None
    assert (operator.name, operator.role, operator.shared) == ("sandbox", "operator", True)
    assert not operator.can_approve
    with_role = ConsoleAccess(secret_key="k", shared_token="tok", url_role="approver")
    typed = await with_role.sign_in("tok", "sandbox")
    assert typed is not None and typed.shared and not typed.can_approve


async def test_the_sandbox_url_login_approves_the_demos_callback(tmp_path: Path) -> None:
    """In the sandbox with approvals on, opening the logged URL signs in an approver who
    approves the voicemail's callback, which is then placed."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=APPROVE_ALL) as h:
        approval = await leave_voicemail(h)
        console = make_console(h, url_token=SHARED_TOKEN, url_role="approver")
        response = await console.client.get(f"/console/login?token={SHARED_TOKEN}")
        assert response.status_code == 303
        _, page = await console.get("/console/approvals")
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found is not None and f"/console/approvals/{approval.id}/approve" in page
        console.csrf = found.group(1)
        response = await console.post(f"/console/approvals/{approval.id}/approve")
        assert response.status_code == 303
        placed = await wait_until(h.calls_placed, timeout=10, message="the callback")
        decided = await h.store.get_approval(approval.id)
    assert decided is not None and decided.decided_by == "console:sandbox"
    assert len(placed) == 1
