"""agentkit processes on one PostgreSQL: shared work never runs twice, a restart loses nothing."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from agentkit.testing import wait_until
from agentkit.testing.deliveries import default_data, envelope
from tests.process import AgentkitProcess, run_env
from tests.test_service import FIXTURE_BOTS, done_lines


async def start(processes: list[AgentkitProcess], tmp: Path, database: str,
                *args: str) -> AgentkitProcess:
    process = AgentkitProcess(
        ["--port", "0", "--bots", FIXTURE_BOTS, "--poll-seconds", "0.05", *args],
        run_env(tmp, database),
    )
    processes.append(process)
    return await process.start()


def calls(n: int) -> list[dict[str, object]]:
    return [envelope("call.completed", {**default_data("call.completed"), "id": f"cal_{i}"})
            for i in range(n)]


async def test_two_workers_never_run_a_job_twice(
    processes: list[AgentkitProcess], tmp_path: Path, database: str
) -> None:
    """Two worker processes sharing one PostgreSQL run each of 60 jobs exactly once."""
    receiver = await start(processes, tmp_path, database, "--receiver-only")
    await start(processes, tmp_path, database, "--workers-only", "--concurrency", "4")
    await start(processes, tmp_path, database, "--workers-only", "--concurrency", "4")
    events = calls(60)
    for event in events:
        assert (await receiver.deliver(event)).status_code == 200
    await wait_until(lambda: len(done_lines(tmp_path)) >= 60, timeout=60,
                     message="60 jobs to run")
    handled = [line.split()[0] for line in done_lines(tmp_path)]
    assert sorted(handled) == sorted(str(e["id"]) for e in events)
    db = await asyncpg.connect(database)
    try:
        async def bot_jobs() -> set[tuple[str, int]]:
            rows = await db.fetch("SELECT state, attempts FROM jobs WHERE kind = 'bot'")
            return {(r["state"], r["attempts"]) for r in rows}

        # A bot writes its line before its worker records the job as done.
        async def settled() -> bool:
            return all(state != "running" for state, _ in await bot_jobs())

        await wait_until(settled, timeout=10, message="every job to be recorded")
        assert await bot_jobs() == {("done", 1)}
    finally:
        await db.close()


def restart_postgres() -> None:
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not clusters.is_dir():
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster on this machine")
    version = sorted(p.name for p in clusters.iterdir())[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, capture_output=True, timeout=60)


@pytest.mark.restarts_postgres
async def test_postgres_restart_loses_nothing(
    processes: list[AgentkitProcess], tmp_path: Path, database: str
) -> None:
    """Deliveries during a PostgreSQL restart get 503 or 200; retried, every one runs once."""
    agentkit = await start(processes, tmp_path, database)
    events = calls(40)
    statuses: list[int] = []

    async def deliver_until_acknowledged(event: dict[str, object]) -> None:
        async def acknowledged() -> bool:
            try:
                response = await agentkit.deliver(event)
            except OSError:
                return False
            statuses.append(response.status_code)
            return response.status_code == 200

        await wait_until(acknowledged, timeout=60, interval=0.1,
                         message=f"{event['id']} to be acknowledged")

    async def send_all() -> None:
        for event in events:
            await deliver_until_acknowledged(event)
            await asyncio.sleep(0.02)  # spread deliveries across the restart

    sending = asyncio.create_task(send_all())
    await wait_until(lambda: len(statuses) >= 5, timeout=30)
    await asyncio.to_thread(restart_postgres)
    await sending
    await wait_until(lambda: len(done_lines(tmp_path)) >= 40, timeout=90,
                     message="every event to be handled after the restart")
    handled = [line.split()[0] for line in done_lines(tmp_path)]
    assert sorted(handled) == sorted(str(e["id"]) for e in events)
    assert set(statuses) <= {200, 503}
    assert (await agentkit.deliver(events[0])).json()["status"] == "duplicate"
