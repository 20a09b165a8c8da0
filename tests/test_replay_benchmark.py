"""The replay benchmark, run small: a filled store replayed with no difference, every figure."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "replay.py"
FIGURES = {"calls", "calls_per_s", "rss_mb_max", "differences", "errors", "replay_s",
           "replay_wall_s", "fill_s", "sample_calls", "events"}


async def test_small_run_reports_every_figure(tmp_path: Path) -> None:
    """300 calls copied from the sample and replayed by the live bots: 0 differences, progress
    lines first, one JSON line last."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCHMARK), "--calls", "300",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=240)
    text = out.decode()
    assert process.returncode == 0, text[-3000:] + err.decode()[-3000:]
    lines = text.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == FIGURES
    assert figures["calls"] >= 300 and figures["differences"] == 0 and figures["errors"] == 0
    assert any(line.startswith("fill: ") for line in lines[:-1])
    assert any(line.startswith("replay: ") and "done" in line for line in lines[:-1])
    assert figures["calls_per_s"] > 0 and figures["rss_mb_max"] > 0
