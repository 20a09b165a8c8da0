"""AGENTKIT_REQUIRE_POSTGRES=1: a PostgreSQL test without a server fails instead of skipping."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from tests.process import closed_port
from tests.stores import REQUIRE_POSTGRES

ROOT = Path(__file__).parent.parent
# One test for each way a test gets PostgreSQL: a store of each engine, a fresh database.
PG_TESTS = [
    "tests/runtime/test_workers.py::test_workers_on_postgres_too[postgres]",
    "tests/test_readiness.py::test_failed_store_is_unavailable_without_host_or_driver_text",
]


async def run_without_server(tmp: Path, **env: str) -> tuple[dict[str, int], str]:
    """Run PG_TESTS in a new pytest, PostgreSQL's URL on a closed port: its tally and output.

    The new run keeps its temporary files in ``tmp``, and is not told it is a worker of
    this run (pytest-xdist's variables).
    """
    environment = {k: v for k, v in os.environ.items()
                   if k != REQUIRE_POSTGRES and not k.startswith("PYTEST_XDIST_")}
    environment.update(env, TMPDIR=str(tmp))
    with closed_port() as port:
        environment["AGENTKIT_TEST_POSTGRES_URL"] = f"postgresql://postgres@127.0.0.1:{port}/t"
        # Serially (-n 0): two tests are not worth starting pytest-xdist's workers.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *PG_TESTS,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment,
            cwd=ROOT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 180)
    text = out.decode(errors="replace")
    # pytest's last line, e.g. "1 failed, 1 error in 0.52s".
    last = text.strip().splitlines()[-1]
    tally = {word.rstrip("s"): int(n) for n, word in re.findall(r"(\d+) ([a-z]+)", last)}
    return tally, text


async def test_required_postgres_missing_fails(tmp_path: Path) -> None:
    """With AGENTKIT_REQUIRE_POSTGRES=1 and no server, each PostgreSQL test fails and says why."""
    tally, out = await run_without_server(tmp_path, **{REQUIRE_POSTGRES: "1"})
    # A fixture that fails is a setup error: a failing run all the same, never a skip.
    assert "skipped" not in tally and "passed" not in tally, out
    assert tally.get("failed", 0) + tally.get("error", 0) == len(PG_TESTS), out
    assert out.count(f"{REQUIRE_POSTGRES} is set, so this fails instead of skipping") >= len(
        PG_TESTS
    ), out


async def test_optional_postgres_missing_skips(tmp_path: Path) -> None:
    """Without AGENTKIT_REQUIRE_POSTGRES, a PostgreSQL test with no server is skipped."""
    tally, out = await run_without_server(tmp_path)
    assert tally == {"skipped": len(PG_TESTS)}, out
