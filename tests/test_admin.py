"""The operator commands, run as an operator runs them: agentkit dnc, calls and erase."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentkit.store import NewEvent, Store
from agentkit.store.base import CALLS_PAUSED
from agentkit.store.sqlite import SqliteStore
from agentkit.testing.recorder import HttpRecorder
from tests.process import AGENTKIT


async def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, Any, str]:
    """``agentkit ARGS`` on the store in ``tmp_path``: exit code, the last line of stdout as
    JSON (or the text, when it is not; log lines come before it), stderr."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "SLACK_", "TEAMS_"))}
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**clean, "AGENTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'agentkit.db'}", **env},
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    text = out.decode()
    last = text.strip().splitlines()[-1] if text.strip() else ""
    try:
        return process.returncode, json.loads(last), err.decode()
    except ValueError:
        return process.returncode, text, err.decode()


async def opened(tmp_path: Path) -> Store:
    store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    return store


async def test_dnc_add_list_remove(tmp_path: Path) -> None:
    """A number in any format goes on the list in E.164, is listed, and comes off."""
    code, out, _ = await run(tmp_path, "dnc", "add", "0044 20 7946-0999", "--reason", "asked")
    assert code == 0 and out == {"number": "+442079460999", "action": "add", "changed": True}
    code, out, _ = await run(tmp_path, "dnc", "list", "--json")
    assert [(e["number"], e["reason"]) for e in out] == [("+442079460999", "asked")]
    code, out, _ = await run(tmp_path, "dnc", "remove", "+44 20 7946 0999")
    assert out["changed"] is True
    code, out, _ = await run(tmp_path, "dnc", "list")
    assert "empty" in out


async def test_dnc_national_number_needs_its_country(tmp_path: Path) -> None:
    """A number without its country code is refused, unless --country says which."""
    code, _, err = await run(tmp_path, "dnc", "add", "020 7946 0999")
    assert code == 2 and "country code" in err
    code, out, _ = await run(tmp_path, "dnc", "add", "020 7946 0999", "--country", "GB")
    assert code == 0 and out["number"] == "+442079460999"


@pytest.mark.parametrize("number", ["hello", "+44 20 7946 0999 ext 2", "12"])
async def test_dnc_refuses_what_is_not_a_number(tmp_path: Path, number: str) -> None:
    """Input that is not a phone number is a clear error, exit 2, and nothing is stored."""
    code, _, err = await run(tmp_path, "dnc", "add", number, "--country", "GB")
    assert code == 2 and "agentkit:" in err
    store = await opened(tmp_path)
    try:
        assert await store.do_not_call_list() == []
    finally:
        await store.close()


async def test_calls_pause_and_resume_switch_and_alert_once_each_way(tmp_path: Path) -> None:
    """pause and resume flip the deployment's switch and post one chat alert each; repeating
    one changes nothing and posts nothing."""
    async with HttpRecorder() as chat:
        slack = {"SLACK_WEBHOOK_URL": chat.url + "/slack"}
        code, out, _ = await run(tmp_path, "calls", "pause", **slack)
        assert code == 0 and out["changed"] is True
        store = await opened(tmp_path)
        try:
            assert await store.switch(CALLS_PAUSED) is True
        finally:
            await store.close()
        assert (await run(tmp_path, "calls", "pause", **slack))[1]["changed"] is False
        assert (await run(tmp_path, "calls", "status", **slack))[1]["paused"] is True
        assert (await run(tmp_path, "calls", "resume", **slack))[1]["changed"] is True
        posted = [r.body.decode() for r in chat.requests]
    assert len(posted) == 2
    assert "paused" in posted[0] and "resumed" in posted[1]


async def test_erase_removes_the_number_and_records_it(tmp_path: Path) -> None:
    """agentkit erase deletes the events naming the number and prints what it removed."""
    store = await opened(tmp_path)
    body = json.dumps({"id": "evt_1", "type": "voicemail.received",
                       "created_at": "2026-04-23T10:12:45Z",
                       "data": {"from": "+442079460999", "to": "+40264000111"}}).encode()
    try:
        await store.add_events([NewEvent("evt_1", "voicemail.received", datetime.now(UTC),
                                         "cal_1", body, False)])
    finally:
        await store.close()
    code, out, err = await run(tmp_path, "erase", "+44 20 7946 0999")
    assert code == 0, err
    assert out["number"] == "+442079460999" and out["removed"]["events"] == 1
    store = await opened(tmp_path)
    try:
        assert await store.get_event("evt_1") is None
        (record,) = await store.actions_of_kind("erase")
        assert "+442079460999" not in json.dumps(record.detail)
    finally:
        await store.close()


async def test_dead_lists_and_retries(tmp_path: Path) -> None:
    """'agentkit dead' lists a dead letter with its error; --retry queues it again, once."""
    store = await opened(tmp_path)
    try:
        await store.add_events([NewEvent(id="evt_1", type="call.completed",
                                         created_at=datetime.now(UTC), call_id="cal_1",
                                         body=b"{}", routable=True)])
        (job,) = await store.lease("w1", 1, 30)
        await store.dead_letter(job, "KeyError: 'callback_number'")
    finally:
        await store.close()
    code, out, _ = await run(tmp_path, "dead", "--json")
    assert code == 0
    assert [(j["id"], j["event_id"], j["error"]) for j in out] == [
        (job.id, "evt_1", "KeyError: 'callback_number'")]
    code, out, _ = await run(tmp_path, "dead", "--retry", str(job.id))
    assert code == 0 and "queued again" in out
    code, out, _ = await run(tmp_path, "dead", "--retry", str(job.id))
    assert code == 1 and "not a dead job" in out
    store = await opened(tmp_path)
    try:
        (record,) = await store.jobs_for_event("evt_1")
    finally:
        await store.close()
    assert (record.state, record.attempts) == ("pending", 0)
    code, out, _ = await run(tmp_path, "dead")
    assert code == 0 and "no dead letters" in out


async def test_console_add_user_prints_the_token_once(tmp_path: Path) -> None:
    """'agentkit console add-user' writes the person with a hash and prints their token."""
    from agentkit.console import UsersFile

    users = tmp_path / "console-users.json"
    code, out, _ = await run(tmp_path, "console", "add-user", "Ana", "--role", "operator",
                             AGENTKIT_CONSOLE_USERS=str(users))
    assert code == 0
    token = str(out).strip().splitlines()[-1]
    assert token not in users.read_text()
    found = UsersFile(users).authenticate(token)
    assert found is not None and (found.name, found.role) == ("Ana", "operator")


async def test_console_add_user_without_a_file_says_how(tmp_path: Path) -> None:
    """Without AGENTKIT_CONSOLE_USERS or --users-file, the command names both and exits 2."""
    code, _, err = await run(tmp_path, "console", "add-user", "Ana", "--role", "viewer")
    assert code == 2
    assert "AGENTKIT_CONSOLE_USERS" in err and "--users-file" in err
