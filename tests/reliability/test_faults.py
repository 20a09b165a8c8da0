"""Faults all around: the API, the model, the chat webhook, PostgreSQL restarted mid-run.

Real ``agentkit run`` processes on PostgreSQL run the shipped voicemail-callback
bot. Whatever fails, no acknowledged event is lost, no caller is called twice,
and everything ends done or dead-lettered with a reason. The scaled-up run is
``benchmarks/reliability_faults.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentkit.testing import wait_until
from tests.reliability.support import (
    FaultPlan,
    audit,
    fault_evidence,
    pg_ctlcluster_missing,
    restart_postgres,
    rig,
)


async def test_api_model_and_chat_faults_lose_and_repeat_nothing(
    tmp_path: Path, database: str
) -> None:
    """With 5xx, 429 and timeouts on ~20% of API requests, a failing, slow model and a
    failing chat webhook, every voicemail is called back once or dead-lettered with a reason."""
    async with rig(tmp_path, database, workers=2) as deployment:
        FaultPlan().apply(deployment)
        callers = deployment.leave_voicemails(8)
        await deployment.settle(timeout=150)
        found = await audit(deployment, callers)
        evidence = fault_evidence(deployment)
    assert found.problems() == []
    assert found.gave_up == 0
    assert found.callbacks_placed + len(found.dead) >= len(callers)
    # The faults were met, not dodged.
    assert evidence["api_retries_logged"] > 0
    assert evidence["model_requests"] > len(callers)
    assert evidence["chat_refused"] > 0


# Restarts the machine's PostgreSQL: keep it the only test here that does, and short.
@pytest.mark.restarts_postgres
async def test_postgres_restart_mid_run_loses_and_repeats_nothing(
    tmp_path: Path, database: str
) -> None:
    """PostgreSQL restarted while voicemails are handled: each is called back exactly once.

    Restarts the machine's PostgreSQL cluster (pg_ctlcluster): every other test using it
    at that moment sees its connections dropped.
    """
    reason = pg_ctlcluster_missing()
    if reason:
        pytest.skip(reason)
    async with rig(tmp_path, database, workers=2) as deployment:
        callers = deployment.leave_voicemails(3)
        await wait_until(lambda: deployment.logged("callback.placed"), timeout=60,
                         message="the first callback")
        restart = asyncio.create_task(asyncio.to_thread(restart_postgres))
        while not restart.done() and len(callers) < 9:
            callers += deployment.leave_voicemails(1)
            await asyncio.sleep(0.25)  # spread deliveries across the restart
        await restart
        callers += deployment.leave_voicemails(2)
        await deployment.settle(timeout=150)
        found = await audit(deployment, callers)
        felt = deployment.logged("workers.lease_failed")
    assert felt, "the workers never noticed PostgreSQL going away"
    assert found.problems() == []
    assert found.gave_up == 0
    assert found.callbacks_placed == len(callers)
