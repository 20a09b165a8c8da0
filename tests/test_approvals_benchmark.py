"""The approvals benchmark, run small: clicks are timed and every approved callback placed."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "approvals.py"
FIGURES = {"approvals", "burst", "decide_p50_ms", "decide_p95_ms", "decide_max_ms",
           "repeat_p95_ms", "stranger_p95_ms", "approved_to_call_p50_ms",
           "approved_to_call_p95_ms", "calls_placed"}


async def test_small_run_reports_every_figure(tmp_path: Path) -> None:
    """Four approvals clicked two at a time end in one JSON line; each callback placed once."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCHMARK), "--approvals", "4", "--burst", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    text = out.decode()
    assert process.returncode == 0, text[-3000:] + err.decode()[-3000:]
    lines = text.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == FIGURES
    assert figures["calls_placed"] == figures["approvals"] == 4
    assert any(line.startswith("clicked 2/4") for line in lines[:-1])
    assert all(figures[name] > 0 for name in FIGURES)
