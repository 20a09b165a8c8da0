"""The daily digest as users run it: two ``agentkit run`` processes on one PostgreSQL post
it once at DAILY_DIGEST_AT, and ``agentkit request daily-digest send`` posts it again.

The business's time zone is picked so that it is just past noon there now, and the
digest is due at noon: both processes find that change when they start, as they
would a minute after it. With no chat URL, notes are printed by the process that
posts them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentkit.testing import wait_until
from tests.process import AgentkitProcess, run_env
from tests.shipped.helpers import ROOT
from tests.test_cli import run

TITLE = "Daily digest for "


def zone_past_noon() -> tuple[str, str]:
    """An Etc/GMT zone where it is now 12:xx, and the minute before now there (HH:MM)."""
    now = datetime.now(UTC)
    hours = (12 - now.hour) % 24
    hours = hours - 24 if hours > 14 else hours
    # Etc/GMT's signs are the opposite of the offsets': Etc/GMT-3 is UTC+3.
    zone = "Etc/GMT" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"
    at = (now + timedelta(hours=hours) - timedelta(minutes=1)).strftime("%H:%M")
    return zone, at


def digests(*processes: AgentkitProcess) -> list[str]:
    return [line for p in processes for line in p.raw if line.startswith(TITLE)]


async def test_two_processes_post_the_digest_once(
    processes: list[AgentkitProcess], tmp_path: Path, database: str
) -> None:
    """Two processes on one PostgreSQL, both past the digest's time when they start: one
    digest is printed between them; asked for with agentkit request, one more."""
    zone, at = zone_past_noon()
    env = run_env(tmp_path, database, AGENTKIT_TIME_ZONE=zone, DAILY_DIGEST_AT=at)
    for _ in range(2):
        process = AgentkitProcess(["--port", "0", "--bots", str(ROOT / "bots"),
                                   "--poll-seconds", "0.05"], env, cwd=str(tmp_path))
        processes.append(process)
        await process.start()
    await wait_until(lambda: digests(*processes), timeout=20, message="the digest")
    code, _out, err = await run("request", "daily-digest", "send", "--bots",
                                str(ROOT / "bots"), env={**os.environ, **env}, cwd=tmp_path)
    assert code == 0, err
    await wait_until(lambda: len(digests(*processes)) >= 2, timeout=20,
                     message="the digest asked for")
    assert len(digests(*processes)) == 2
    stored = [line for p in processes for line in p.logged("schedule.changed")
              if "daily-digest" in str(line.get("event_id"))]
    assert len(stored) == 1  # both schedulers found the change; one stored it
