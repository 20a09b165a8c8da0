"""Several worker processes on PostgreSQL against one caller: the cap and the merge hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.outside.support import RO_CALLER, deployment


async def test_ten_simultaneous_voicemails_with_four_workers(
    tmp_path: Path, database: str
) -> None:
    """Ten voicemails from one number at once, four workers on PostgreSQL: one callback, its
    retries within the daily cap, and every voicemail in its note."""
    async with deployment(tmp_path, database) as d:
        await d.start("--receiver-only")
        # Two jobs at a time each: no one process can take all ten before the others look.
        await asyncio.gather(*(d.start("--workers-only", "--concurrency", "2")
                               for _ in range(4)))
        d.sim.script_outbound(RO_CALLER, ["no_answer"] * 20)
        d.sim.hold_deliveries()
        for n in range(10):
            d.sim.leave_voicemail(RO_CALLER, words=f"Message number {n}. Call me back.")
        await d.sim.settle()
        d.sim.release_deliveries()
        await d.settle(timeout=60)
        first = len(d.calls())
        while await d.run_retries():
            await d.settle(timeout=60)
        calls = d.calls()
        merged = d.logged("callback.merged")
        handled = [len([x for x in p.logged("job.done") if x.get("bot") == "voicemail-callback"])
                   for p in d.processes[1:]]
    assert first == 1
    assert len(calls) == 3
    assert len(merged) == 9
    # The voicemails were really handled side by side, by more than one process.
    assert sum(1 for n in handled if n) >= 2, handled
