"""agentkit approvals, run as an operator runs it on a deployment's store; and run --approvals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentkit.store import NewApproval, NewEvent, Store
from agentkit.store.sqlite import SqliteStore
from tests.process import AGENTKIT, FIXTURE_BOTS, AgentkitProcess

CALLER = "+442079460000"
SPOKEN = "+442079460999"


async def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """``agentkit ARGS`` on the store in ``tmp_path``, as user ``ana``: exit code, stdout,
    stderr."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "SLACK_", "TEAMS_"))}
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**clean, "LOGNAME": "ana",
             "AGENTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'agentkit.db'}", **env},
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The deployment's SQLite store, with the voicemail the approvals are about."""
    opened = SqliteStore(tmp_path / "agentkit.db")
    await opened.open()
    body = {"id": "evt_1", "type": "voicemail.received", "created_at": "2026-04-23T10:12:45Z",
            "data": {"from": CALLER, "to": "+40264000111"}}
    await opened.add_events([NewEvent(id="evt_1", type="voicemail.received",
                                      created_at=datetime.now(UTC), call_id="cal_1",
                                      body=json.dumps(body).encode(), routable=False)])
    try:
        yield opened
    finally:
        await opened.close()


async def asked(store: Store, name: str, *, seconds: float = 3600) -> str:
    """Record a callback to a spoken number waiting for approval, due in ``seconds``; its id."""
    deadline = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    approval, _ = await store.add_approval(NewApproval(
        id=f"apr_{name}", action_key=f"callback:{name}", event_id="evt_1",
        bot="voicemail-callback", kind="callback",
        what={"to": SPOKEN, "from": "+40264000111", "urgency": "high", "caller": CALLER},
        why={"reason": "wants a call back on another phone", "quote": f"call me on {SPOKEN}",
             "rule": "callback_to_other_number"},
        deadline=deadline,
    ))
    return approval.id


async def test_list_shows_what_why_and_deadline(tmp_path: Path, store: Store) -> None:
    """list prints each waiting approval: id, action, bot, call, reason, quote and deadline."""
    approval = await store.get_approval(await asked(store, "a"))
    assert approval is not None
    code, out, _ = await run(tmp_path, "approvals", "list")
    assert code == 0
    assert f"{approval.id}  callback: callback to {SPOKEN} from +40264000111" in out
    for shown in ("voicemail-callback", "cal_1", "wants a call back on another phone",
                  f"call me on {SPOKEN}", f"{approval.deadline:%Y-%m-%d %H:%M:%S} UTC"):
        assert shown in out


async def test_list_json_gives_one_object_each(tmp_path: Path, store: Store) -> None:
    """list --json prints the waiting approvals, oldest first, with reason and quote."""
    first, second = await asked(store, "a"), await asked(store, "b")
    code, out, _ = await run(tmp_path, "approvals", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(a["id"], a["bot"], a["call_id"]) for a in listed] == [
        (first, "voicemail-callback", "cal_1"), (second, "voicemail-callback", "cal_1")]
    assert listed[0]["quote"] == f"call me on {SPOKEN}"


async def test_list_leaves_out_approvals_past_their_deadline(tmp_path: Path,
                                                             store: Store) -> None:
    """An approval whose deadline has passed is not listed: it can no longer be approved."""
    await asked(store, "late", seconds=-60)
    code, out, _ = await run(tmp_path, "approvals", "list")
    assert code == 0
    assert out.strip() == "no approvals waiting"


async def test_approve_decides_and_adds_its_job(tmp_path: Path, store: Store) -> None:
    """approve records the decision as the shell user and adds the job that carries it out."""
    approval_id = await asked(store, "a")
    code, out, err = await run(tmp_path, "approvals", "approve", approval_id)
    assert code == 0, err
    assert f"{approval_id}: approved by ana (cli)" in out
    approval = await store.get_approval(approval_id)
    assert approval is not None
    assert (approval.state, approval.decided_by) == ("approved", "cli:ana")
    jobs = [job.name for job in await store.jobs_for_event("evt_1")]
    assert jobs.count(f"approval:{approval_id}:decided") == 1


async def test_second_approve_exits_1_and_says_who(tmp_path: Path, store: Store) -> None:
    """Approving an approval already approved changes nothing, says by whom, and exits 1."""
    approval_id = await asked(store, "a")
    assert (await run(tmp_path, "approvals", "approve", approval_id))[0] == 0
    code, out, err = await run(tmp_path, "approvals", "approve", approval_id, LOGNAME="bo")
    assert code == 1
    assert "already approved by ana (cli)" in err and "approved by bo" not in out
    jobs = [job.name for job in await store.jobs_for_event("evt_1")]
    assert jobs.count(f"approval:{approval_id}:decided") == 1


async def test_reject_records_the_reason(tmp_path: Path, store: Store) -> None:
    """reject --reason decides it as rejected, keeping the reason with the decision."""
    approval_id = await asked(store, "a")
    code, out, err = await run(tmp_path, "approvals", "reject", approval_id,
                               "--reason", "not the caller's phone")
    assert code == 0, err
    assert f"{approval_id}: rejected by ana (cli)" in out
    approval = await store.get_approval(approval_id)
    assert approval is not None
    assert (approval.state, approval.reason) == ("rejected", "not the caller's phone")


async def test_approve_after_the_deadline_exits_1(tmp_path: Path, store: Store) -> None:
    """Approving after the deadline says it is too late and was rejected, and exits 1."""
    approval_id = await asked(store, "late", seconds=-60)
    code, _, err = await run(tmp_path, "approvals", "approve", approval_id)
    assert code == 1
    assert "too late" in err
    approval = await store.get_approval(approval_id)
    assert approval is not None and approval.state == "expired"


async def test_unknown_id_is_a_clear_error(tmp_path: Path, store: Store) -> None:
    """An id that names no approval exits 2, saying so and how to list them."""
    code, _, err = await run(tmp_path, "approvals", "approve", "apr_nope")
    assert code == 2
    assert "no approval 'apr_nope'" in err and "agentkit approvals list" in err


async def test_run_approvals_needs_the_sandbox(tmp_path: Path) -> None:
    """'agentkit run --approvals' without --sandbox is refused before anything starts."""
    code, _, err = await run(tmp_path, "run", "--approvals", "--port", "0")
    assert code == 2
    assert "--approvals" in err and "--sandbox" in err
    assert not (tmp_path / "agentkit.db").exists()


@pytest.mark.parametrize(("env", "rules"), [({}, ["all_callbacks"]),
                                            ({"AGENTKIT_APPROVALS": "flow_change"},
                                             ["flow_change"])])
async def test_sandbox_approvals_turns_approvals_on(tmp_path: Path, env: dict[str, str],
                                                    rules: list[str]) -> None:
    """'agentkit run --sandbox --approvals' logs that approvals are on: every callback when
    AGENTKIT_APPROVALS is unset, else the rules it names."""
    agentkit = AgentkitProcess(
        ["--sandbox", "--approvals", "--port", "0", "--sim-port", "0", "--bots", FIXTURE_BOTS],
        {"AGENTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'agentkit.db'}", **env},
        cwd=str(tmp_path),
    )
    try:
        await agentkit.start()
        (line,) = agentkit.logged("approvals.on")
        assert line["rules"] == rules
        agentkit.signal(signal.SIGTERM)
        assert await agentkit.wait() == 0
    finally:
        await agentkit.kill()
