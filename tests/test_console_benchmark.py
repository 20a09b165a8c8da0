"""The console benchmark, run small: it fills a store, times every page, and reports as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import asyncpg

from tests.stores import POSTGRES_URL, need_postgres

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "console.py"
PAGES = {"calls", "calls_page2", "fragment", "search_number", "search_busy_number", "search_bot",
         "search_bot_idle", "search_reached", "search_unreached", "search_dead",
         "search_escalated",
         "search_call_id", "call", "dead", "dead_group", "callbacks", "flows", "health"}


async def test_small_run_times_every_page(tmp_path: Path) -> None:
    """200 calls filled and every console page timed give one JSON line with p95 per page."""
    await need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(BENCHMARK), "--database-url", POSTGRES_URL, "--schema", schema,
            "--calls", "200", "--requests", "3", "--warmup", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        left = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    text = out.decode()
    assert process.returncode == 0, text[-3000:] + err.decode()[-3000:]
    summary = json.loads(text.strip().splitlines()[-1])
    assert set(summary["p95_ms"]) == PAGES
    assert set(summary["p50_ms"]) == PAGES
    assert all(value > 0 for value in summary["p95_ms"].values())
    assert summary["p95_ms_max"] == max(summary["p95_ms"].values())
    assert summary["calls"] == 200
    assert summary["events"] > 1500
    assert summary["rows"]["dead_letters"] > 0
    assert left is None, "the benchmark drops its schema unless --keep"
