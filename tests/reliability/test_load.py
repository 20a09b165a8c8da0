"""A short run of benchmarks/load.py: 200 deliveries/s for 3 s, nothing lost, every answer 2xx.

The latency figures are the benchmark's to report, not this test's to assert.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

LOAD = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"


async def test_short_load_loses_nothing() -> None:
    """Every one of 600 open-loop deliveries is acknowledged 2xx, stored and processed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(LOAD), "--rate", "200", "--seconds", "3", "--drain-seconds", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    result = json.loads(text.strip().splitlines()[-1])
    assert result["sent"] == 600
    assert result["acknowledged"] == 600, text
    assert set(result["statuses"]) == {"200"}, result["statuses"]
    assert result["errors"] == 0 and result["lost"] == 0, result
    assert result["stored"] == 600
    assert result["jobs"].get("route:done") == 600
