"""The missed-call bot as users run it: ``agentkit run --sandbox`` with the shipped bots, a
missed call rung with ``agentkit sim call``, judged at the simulator.

The bot waits two minutes for a voicemail; the test makes that wait end now by moving the
join's timer in the store, as time passing would.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from agentkit.sim.config import SANDBOX_API_KEY
from agentkit.store import store_for_url
from agentkit.testing import wait_until
from agentkit.testing.harness import make_due
from tests.process import AgentkitProcess
from tests.shipped.helpers import ROOT
from tests.test_cli import run

CALLER = "+40722123456"  # the sandbox dials Romanian and British numbers


async def end_the_wait(database: str) -> int:
    """Make the join timers due now, as the harness's ``run_scheduled`` does."""
    store = store_for_url(database)
    await store.open()
    try:
        return len(await make_due(store, "join-timeout"))
    finally:
        await store.close()


async def outbound_calls(api: str, key: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(timeout=10) as http:
        page = await http.get(f"{api}/calls", params={"to": CALLER},
                              headers={"Authorization": f"Bearer {key}"})
    return [c for c in page.json()["data"] if c["direction"] == "outbound"]


async def test_a_missed_call_in_the_sandbox_is_called_back_once(tmp_path: Path) -> None:
    """agentkit sim call --outcome missed --ring 8: after the grace, one outbound call to the
    caller reaches the simulator, and only one."""
    database = f"sqlite:///{tmp_path / 'agentkit.db'}"
    agentkit = AgentkitProcess(
        ["--sandbox", "--port", "0", "--sim-port", "0", "--bots", str(ROOT / "bots"),
         "--poll-seconds", "0.1"],
        {"AGENTKIT_DATABASE_URL": database, "AGENTKIT_BUSINESS_HOURS": "always"},
        cwd=str(tmp_path),
    )
    try:
        await agentkit.start()
        (started,) = agentkit.logged("agentkit.started")
        api = str(started["api"])
        code, _out, err = await run("sim", "call", "--from", CALLER, "--outcome", "missed",
                                    "--ring", "8", "--sim-url", api.removesuffix("/v1"))
        assert code == 0, err
        await wait_until(lambda: [line for line in agentkit.logged("join.waiting")
                                  if line.get("bot") == "missed-call"], timeout=20,
                         message="the missed-call bot to wait for a voicemail")
        assert await end_the_wait(database) >= 1
        await wait_until(lambda: [line for line in agentkit.logged("callback.placed")
                                  if line.get("bot") == "missed-call"], timeout=20,
                         message="the missed call's callback")
        calls = await outbound_calls(api, SANDBOX_API_KEY)
        agentkit.signal(signal.SIGTERM)
        assert await agentkit.wait() == 0
    finally:
        await agentkit.kill()
    assert len(calls) == 1
