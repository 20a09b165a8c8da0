"""The pipeline benchmark, run small: it finishes and reports what the issue asks for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "pipeline.py"
KEYS = {"events_per_s", "p50_ms", "p99_ms", "ideal_ratio", "callbacks_placed", "duplicates",
        "dead", "missing", "model_requests", "cpu_count", "goals", "goals_met"}


def test_small_run_calls_every_voicemail_back_once(tmp_path: Path) -> None:
    """Twenty voicemails through agentkit run each get exactly one callback, reported as JSON."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--events", "20", "--latency", "0.05",
         "--concurrency", "8", "--settle-seconds", "0.5", "--progress-seconds", "1",
         "--bare-requests", "2000"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(summary)
    assert (summary["callbacks_placed"], summary["missing"]) == (20, 0)
    assert (summary["duplicates"], summary["dead"], summary["sim_outbound_calls"]) == (0, 0, 20)
    assert summary["model_requests"] >= 20
    assert summary["checks_ok"] is True


def test_cpu_is_also_given_in_bare_requests(tmp_path: Path) -> None:
    """With wrk installed, a run measures a bare Quart request's CPU and gives agentkit's CPU
    per voicemail in that unit; without it, it says there is no unit."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--events", "10", "--latency", "0",
         "--concurrency", "4", "--settle-seconds", "0.2", "--bare-requests", "2000"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if shutil.which("wrk") is None:
        assert summary["bare_request_cpu_ms"] is None
        assert "wrk is not installed" in done.stdout
        return
    assert summary["bare_request_cpu_ms"] > 0
    ratio = summary["agentkit_cpu_ms_per_event"] / summary["bare_request_cpu_ms"]
    assert abs(summary["cpu_per_event_in_bare_requests"] - ratio) <= 0.05 * ratio
    assert "cpu_per_event_in_bare_requests_at_most_12" in summary["goals"]
