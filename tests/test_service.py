"""agentkit run as a process: a job survives kill -9, SIGTERM drains, secrets stay out of logs."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

from agentkit.testing import wait_until
from agentkit.testing.deliveries import envelope
from tests.process import (
    API_KEY,
    FIXTURE_BOTS,
    SECRET,
    AgentkitProcess,
    run_env,
)


def job_rows(tmp: Path, event_id: str) -> list[tuple[str, str, int]]:
    with sqlite3.connect(tmp / "agentkit.db") as db:
        return list(db.execute(
            "SELECT kind, state, attempts FROM jobs WHERE event_id = ? ORDER BY id", (event_id,)
        ))


def done_lines(tmp: Path) -> list[str]:
    log = tmp / "probe" / "done.log"
    return log.read_text().splitlines() if log.exists() else []


async def start(processes: list[AgentkitProcess], tmp: Path, *args: str,
                **env: str) -> AgentkitProcess:
    process = AgentkitProcess(
        ["--port", "0", "--bots", FIXTURE_BOTS, "--poll-seconds", "0.05", *args],
        run_env(tmp, **env),
    )
    processes.append(process)
    return await process.start()


async def test_delivery_reaches_the_bot(processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """A signed delivery is acknowledged, stored and handled by the bot once."""
    agentkit = await start(processes, tmp_path)
    event = envelope("voicemail.received")
    response = await agentkit.deliver(event)
    assert response.status_code == 200
    await wait_until(lambda: done_lines(tmp_path), timeout=15, message="the bot to run")
    assert [line.split()[0] for line in done_lines(tmp_path)] == [event["id"]]
    assert (await agentkit.deliver(event)).json()["status"] == "duplicate"


async def test_killed_worker_job_runs_again_once(
    processes: list[AgentkitProcess], tmp_path: Path
) -> None:
    """After kill -9 mid-job, the job's lease expires and a new process completes it once."""
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "block").touch()
    first = await start(processes, tmp_path, "--lease-seconds", "1")
    event = envelope("voicemail.received")
    assert (await first.deliver(event)).status_code == 200
    await wait_until(lambda: (tmp_path / "probe" / f"start-{event['id']}-1").exists(),
                     timeout=15, message="the job to start")
    await first.kill()
    (tmp_path / "probe" / "block").unlink()
    # Its own lease is long: a slow machine must not let it lapse mid-job as well.
    await start(processes, tmp_path, "--workers-only", "--lease-seconds", "30")
    await wait_until(lambda: done_lines(tmp_path), timeout=20, message="the job to run again")
    assert [line.split()[0] for line in done_lines(tmp_path)] == [event["id"]]

    def bot_jobs() -> list[tuple[str, str, int]]:
        return [row for row in job_rows(tmp_path, event["id"]) if row[0] == "bot"]

    # The bot writes its line before the worker records the job as done.
    await wait_until(lambda: bot_jobs()[0][1] != "running", timeout=10,
                     message="the job to be recorded")
    assert bot_jobs() == [("bot", "done", 2)]


async def test_sigterm_lets_running_jobs_finish(
    processes: list[AgentkitProcess], tmp_path: Path
) -> None:
    """On SIGTERM a running job may finish within the drain time, then the process exits 0."""
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "block").touch()
    agentkit = await start(processes, tmp_path, "--drain-seconds", "20")
    event = envelope("call.completed")
    await agentkit.deliver(event)
    await wait_until(lambda: (tmp_path / "probe" / f"start-{event['id']}-1").exists(),
                     timeout=15)
    agentkit.signal(signal.SIGTERM)
    await wait_until(lambda: agentkit.logged("workers.draining"), timeout=10)
    (tmp_path / "probe" / "block").unlink()
    assert await agentkit.wait() == 0
    assert [line.split()[0] for line in done_lines(tmp_path)] == [event["id"]]
    assert [row for row in job_rows(tmp_path, event["id"]) if row[0] == "bot"] == [
        ("bot", "done", 1)
    ]


async def test_sigterm_hands_back_what_cannot_finish(
    processes: list[AgentkitProcess], tmp_path: Path
) -> None:
    """A job still running when the drain time ends is handed back, and the exit is 0."""
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "block").touch()
    agentkit = await start(processes, tmp_path, "--drain-seconds", "0.2")
    event = envelope("call.completed")
    await agentkit.deliver(event)
    await wait_until(lambda: (tmp_path / "probe" / f"start-{event['id']}-1").exists(),
                     timeout=15)
    agentkit.signal(signal.SIGINT)
    assert await agentkit.wait() == 0
    assert done_lines(tmp_path) == []
    assert [row for row in job_rows(tmp_path, event["id"]) if row[0] == "bot"] == [
        ("bot", "pending", 0)
    ]


async def test_receiver_and_workers_apart(processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """A receiver-only process stores; a workers-only process on the same store runs the bot."""
    receiver = await start(processes, tmp_path, "--receiver-only")
    (started,) = receiver.logged("agentkit.started")
    assert (started["role"], started["bots"]) == ("receiver", [])
    event = envelope("voicemail.received")
    assert (await receiver.deliver(event)).status_code == 200
    # Acknowledged means committed: stored with its routing job, which no one has taken.
    assert job_rows(tmp_path, event["id"]) == [("route", "pending", 0)]
    await start(processes, tmp_path, "--workers-only")
    await wait_until(lambda: done_lines(tmp_path), timeout=15, message="the worker to run it")
    assert [line.split()[0] for line in done_lines(tmp_path)] == [event["id"]]


async def test_secrets_never_logged(processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """The API key, webhook secret and OpenAI key appear in no log line, whatever happens."""
    openai_key = "sk-processtest-openai-0123456789"
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "fail").touch()
    agentkit = await start(processes, tmp_path, "--log-level", "debug", "--max-attempts", "2",
                           "--retry-base-seconds", "0.05", OPENAI_API_KEY=openai_key)
    await agentkit.deliver(envelope("call.completed"))
    await agentkit.deliver(envelope("call.completed"), "whsec_wrong_secret_000")
    await wait_until(lambda: agentkit.logged("job.dead_lettered"), timeout=20)
    agentkit.signal(signal.SIGTERM)
    assert await agentkit.wait() == 0
    output = agentkit.output()
    assert "delivery.rejected" in output
    for secret in (API_KEY, SECRET, openai_key):
        assert secret not in output


async def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    """Without a key and secret, agentkit run exits non-zero and names what is missing."""
    process = await asyncio.create_subprocess_exec(
        str(Path(__file__).parent.parent / ".venv/bin/agentkit"), "run", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"ODYGY_API_KEY" in err and b"ODYGY_WEBHOOK_SECRET" in err


async def test_sandbox_voicemail_end_to_end(processes: list[AgentkitProcess],
                                            tmp_path: Path) -> None:
    """In the sandbox, a voicemail left in the simulator reaches the bot through the receiver."""
    agentkit = AgentkitProcess(
        ["--sandbox", "--port", "0", "--sim-port", "0", "--bots", FIXTURE_BOTS,
         "--poll-seconds", "0.05"],
        {k: v for k, v in run_env(tmp_path).items()
         if k not in ("ODYGY_API_KEY", "ODYGY_WEBHOOK_SECRET", "ODYGY_BASE_URL")},
    )
    processes.append(agentkit)
    await agentkit.start()
    # The simulator took a free port (a fixed one could be another test's): its API is logged.
    sim_url = str(agentkit.logged("agentkit.started")[0]["api"]).removesuffix("/v1")
    drive = await asyncio.create_subprocess_exec(
        str(Path(__file__).parent.parent / ".venv/bin/agentkit"), "sim", "voicemail",
        "--from", "+442079460000", "--words", "Please call me back.",
        "--sim-url", sim_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(drive.communicate(), 30)
    assert drive.returncode == 0, err
    await wait_until(lambda: len(done_lines(tmp_path)) >= 2, timeout=30,
                     message="the voicemail and its call to reach the bot")
    with sqlite3.connect(tmp_path / "agentkit.db") as db:
        types = {row[0] for row in db.execute("SELECT type FROM events")}
    assert {"call.initiated", "call.completed", "voicemail.received"} <= types
