"""kill -9 of workers at the moments that matter: every acknowledged event processed, one call each.

Real ``agentkit run`` processes on PostgreSQL run the shipped voicemail-callback
bot against the simulator and the fake model. The long version, over 50 and
more trials, is ``benchmarks/reliability_crash.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.reliability.support import (
    MOMENTS,
    audit,
    crash_trial,
    rig,
)


async def test_worker_killed_after_the_call_post_calls_once(
    tmp_path: Path, database: str
) -> None:
    """A worker killed after its POST /v1/calls made the call, before recording it: one call."""
    async with rig(tmp_path, database) as deployment:
        callers, what = await crash_trial(deployment, voicemails=2, moment="after_post",
                                          rng=random.Random(1))
        found = await audit(deployment, callers)
    assert what["calls_at_kill"] >= 1
    assert found.problems() == []
    assert found.callbacks_placed == 2
    assert deployment.logged("callback.placed")
    finished = deployment.logged("callback.finished")
    assert finished and {line["bot"] for line in finished} == {"voicemail-callback"}


async def test_workers_killed_at_each_moment_lose_and_repeat_nothing(
    tmp_path: Path, database: str
) -> None:
    """Trials killing a worker mid-model, after placing, mid-notify and at random: one call each."""
    rng = random.Random(20260427)
    callers: list[str] = []
    async with rig(tmp_path, database) as deployment:
        for moment in [m for m in MOMENTS if m != "after_post"]:
            new, _ = await crash_trial(deployment, voicemails=2, moment=moment, rng=rng)
            callers += new
        found = await audit(deployment, callers)
    assert found.problems() == []
    assert found.callbacks_placed == len(callers)
    assert found.gave_up == 0
