"""Worker processes on one PostgreSQL: how work scales, and the API budget they share.

    .venv/bin/python benchmarks/scale.py [--mode both|cpu|limits] [--counts 1,2]

For each count of worker processes, a fresh database gets ``--events`` completed
calls loaded straight into the store (so the receiver is not what is measured),
then ``count`` worker processes run benchmarks/scale_bots (per event: one model
answer, one call placed, one account read) until every bot job is done.
The simulator (``agentkit sim``) runs in its own process; the fake model
(agentkit.testing.FakeLlm) in this one.

- cpu: the model answers at once and the simulator's limits are lifted; the
  workers are ``agentkit run --workers-only --api-rate 0`` (the client's own
  pacing lifted too). For each count: ``events_per_s``;
  ``worker_cpu_ms_per_event``, the workers' own CPU (all their threads, read
  from /proc as pipeline.py does) from the first event stored to the last bot
  job done, per event; ``postgres_cpu_ms_per_event`` apart; and
  ``jobs_run_twice``, bot jobs that ran to the end more than once;
  ``db_transactions_per_event``, the run's database's transactions (PostgreSQL's
  own count) per event: coordination that costs shows here first. ``cpu_ratio_2`` is the
  CPU per event with 2 workers over that with 1. Goals: cpu_ratio_2 <= 1.15 (a
  second worker adds no coordination cost) and no job run twice. With two cores
  shared by the workers, the simulator, PostgreSQL and the fake model, a speed-up
  says little; the 4-worker figures are reported, not judged.
- limits: the model takes 500 ms, the simulator enforces 100 requests/s (burst
  200) and 20 call creations, and the workers are plain ``agentkit run
  --workers-only`` sharing their limits through PostgreSQL. Goals: no 429,
  calls_in_flight_max <= 20, and at least 90 % of 100 requests/s used while
  work waits (api_rps_sustained).

``api_rps_max`` is the most requests the simulator saw in any one-second window
(the burst of 200 lets it pass 100 once); ``api_rps_sustained`` is all requests
over the run's length. Prints progress, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from pipeline import postgres_cpu_seconds, tree_cpu_seconds  # noqa: E402

BOTS = str(ROOT / "benchmarks" / "scale_bots")
AGENTKIT = str(Path(sys.executable).with_name("agentkit"))
POSTGRES_URL = os.environ.get("AGENTKIT_BENCH_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


async def fresh_database() -> str:
    name = f"agentkit_scale_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
    await admin.close()


async def start_simulator(limits: bool, call_seconds: float) -> tuple[Any, dict[str, Any]]:
    args = [AGENTKIT, "--log-level", "warning", "sim", "--port", "0", "--time-scale", "0.01",
            "--call-creation-seconds", str(call_seconds)]
    if not limits:
        args.append("--no-limits")
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    info = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=30))
    return process, info


async def start_worker(mode: str, env: dict[str, str], concurrency: int) -> Any:
    run_args = ["--log-level", "info", "--workers-only", "--port", "0", "--bots", BOTS,
                "--concurrency", str(concurrency), "--poll-seconds", "0.05"]
    if mode == "cpu":
        run_args += ["--api-rate", "0"]  # the simulator's limits are lifted: no pacing
    args = [AGENTKIT, "run", *run_args]
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if not line:
            raise RuntimeError("a worker exited during start-up")
        if b"agentkit.started" in line:
            break

    async def drain() -> None:  # keep its pipe from filling up
        assert process.stdout is not None
        while await process.stdout.readline():
            pass

    process.drain = asyncio.create_task(drain())
    return process


async def database_transactions(conn: Any, url: str) -> int:
    """Transactions committed or rolled back in the run's database so far (every worker's,
    and this process's polling, about ten a second)."""
    value = await conn.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
        urlsplit(url).path[1:])
    return int(value or 0)


async def load_events(url: str, count: int) -> None:
    from agentkit.store import NewEvent
    from agentkit.store.postgres import PostgresStore
    from agentkit.testing.deliveries import default_data, envelope

    store = PostgresStore(url)
    await store.open()
    try:
        now = datetime.now(UTC)
        batch: list[NewEvent] = []
        for i in range(count):
            call_id = f"cal_scale_{i:06d}"
            body = envelope("call.completed", default_data("call.completed", call_id),
                            event_id=f"evt_scale_{i:06d}")
            batch.append(NewEvent(id=body["id"], type="call.completed", created_at=now,
                                  call_id=call_id, body=json.dumps(body).encode(),
                                  routable=True))
            if len(batch) == 1000:
                await store.add_events(batch)
                batch = []
        if batch:
            await store.add_events(batch)
    finally:
        await store.close()


async def run_once(mode: str, count: int, events: int, concurrency: int) -> dict[str, Any]:
    from agentkit.store.postgres import PostgresStore
    from agentkit.testing.fake_llm import FakeLlm

    url = await fresh_database()
    limits = mode == "limits"
    sim, info = await start_simulator(limits, 0.3 if limits else 0.0)
    workers: list[Any] = []
    try:
        store = PostgresStore(url)
        await store.open()  # migrated before the workers start
        await store.close()
        async with FakeLlm(latency=0.5 if limits else 0.0) as model:
            env = {
                **os.environ,
                "ODYGY_API_KEY": info["api_key"], "ODYGY_BASE_URL": info["simulator"],
                "ODYGY_WEBHOOK_SECRET": "whsec_scale", "AGENTKIT_DATABASE_URL": url,
                "OPENAI_API_KEY": "sk-fake", "OPENAI_BASE_URL": model.base_url,
                "AGENTKIT_MODEL": model.model, "AGENTKIT_BUSINESS_HOURS": "always",
                # The API is the simulator; every voicemail's callback is placed.
                "AGENTKIT_SANDBOX": "1", "AGENTKIT_DIAL_DAILY_MAX": "1000000",
            }
            workers = list(await asyncio.gather(
                *(start_worker(mode, env, concurrency) for _ in range(count))
            ))
            conn = await asyncpg.connect(url)
            transactions_before = await database_transactions(conn, url)
            started = time.monotonic()
            cpu_before = sum(tree_cpu_seconds(w.pid) for w in workers)
            postgres_before = postgres_cpu_seconds()
            await load_events(url, events)
            done = 0
            last = started
            while done < events:
                await asyncio.sleep(0.1)
                done = await conn.fetchval(
                    "SELECT count(*) FROM jobs WHERE kind = 'bot' AND state IN ('done', 'dead')"
                )
                if time.monotonic() - last >= 5:
                    last = time.monotonic()
                    print(f"    {done}/{events} events in {last - started:.0f} s", flush=True)
            elapsed = time.monotonic() - started
            worker_cpu = sum(tree_cpu_seconds(w.pid) for w in workers) - cpu_before
            postgres_cpu = postgres_cpu_seconds() - postgres_before
            dead = await conn.fetchval("SELECT count(*) FROM jobs WHERE state = 'dead'")
            twice = await conn.fetchval(
                "SELECT count(*) FROM (SELECT job_id FROM bot_runs WHERE outcome = 'ok' "
                "GROUP BY job_id HAVING count(*) > 1) AS again")
            # Read once the counters have been flushed (PostgreSQL does so within a second).
            await asyncio.sleep(1.5)
            transactions = await database_transactions(conn, url) - transactions_before
            await conn.close()
        async with httpx.AsyncClient() as http:
            stats = (await http.get(info["simulator"].removesuffix("/v1") + "/_sim/stats")).json()
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await worker.wait()
        sim.send_signal(signal.SIGTERM)
        await sim.wait()
        await drop_database(url)
    return {
        "events_per_s": round(events / elapsed, 1),
        "seconds": round(elapsed, 2),
        "dead_jobs": dead,
        "jobs_run_twice": twice,
        "db_transactions_per_event": round(transactions / events, 2),
        "worker_cpu_ms_per_event": round(worker_cpu * 1000 / events, 2),
        "postgres_cpu_ms_per_event": round(postgres_cpu * 1000 / events, 2),
        "api_requests": stats["requests"],
        "api_rps_max": stats["max_requests_per_second"],
        "api_rps_sustained": round(stats["requests"] / elapsed, 1),
        "calls_in_flight_max": stats["max_calls_in_flight"],
        "http_429": stats["http_429"],
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over repeated runs of one count (the sums of 429s and of jobs
    run twice)."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = sorted(r[key] for r in runs)
        out[key] = (sum(values) if key in ("http_429", "jobs_run_twice", "dead_jobs")
                    else values[len(values) // 2])
    out["turns"] = len(runs)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["both", "cpu", "limits"], default="both")
    parser.add_argument("--counts", default="1,2", help="worker process counts, e.g. 1,2,4")
    parser.add_argument("--events", type=int, default=3000, help="events per cpu run")
    parser.add_argument("--limit-events", type=int, default=1500, help="events per limits run")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="jobs per worker at once (cpu)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the counts this many times, alternating (1,2,1,2...); "
                             "each figure is the median")
    parser.add_argument("--limit-concurrency", type=int, default=96,
                        help="jobs per worker at once (limits): enough to keep work waiting")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    modes = ["cpu", "limits"] if args.mode == "both" else [args.mode]
    print(f"{os.cpu_count()} cores; PostgreSQL at {urlsplit(POSTGRES_URL).netloc}", flush=True)
    result: dict[str, Any] = {"mode": args.mode, "counts": counts}
    for mode in modes:
        events = args.events if mode == "cpu" else args.limit_events
        repeats: dict[str, list[dict[str, Any]]] = {str(c): [] for c in counts}
        for turn in range(args.repeat):
            for count in counts:
                print(f"{mode}: {count} worker process(es), {events} events "
                      f"(turn {turn + 1} of {args.repeat})", flush=True)
                concurrency = args.concurrency if mode == "cpu" else args.limit_concurrency
                run = await run_once(mode, count, events, concurrency)
                repeats[str(count)].append(run)
                print(f"  {json.dumps(run)}", flush=True)
        runs = {count: median_run(done) for count, done in repeats.items()}
        entry: dict[str, Any] = {
            "events_per_s": {c: r["events_per_s"] for c, r in runs.items()},
            "api_rps_max": max(r["api_rps_max"] for r in runs.values()),
            "api_rps_sustained": {c: r["api_rps_sustained"] for c, r in runs.items()},
            "calls_in_flight_max": max(r["calls_in_flight_max"] for r in runs.values()),
            "http_429": sum(r["http_429"] for r in runs.values()),
            "runs": runs,
        }
        if "1" in runs and "2" in runs:
            entry["speedup_2"] = round(runs["2"]["events_per_s"] / runs["1"]["events_per_s"], 2)
        if mode == "cpu":
            entry["worker_cpu_ms_per_event"] = {
                c: r["worker_cpu_ms_per_event"] for c, r in runs.items()}
            entry["jobs_run_twice"] = sum(r["jobs_run_twice"] for r in runs.values())
            entry["db_transactions_per_event"] = {
                c: r["db_transactions_per_event"] for c, r in runs.items()}
            if "1" in runs and "2" in runs:
                entry["cpu_ratio_2"] = round(runs["2"]["worker_cpu_ms_per_event"]
                                             / runs["1"]["worker_cpu_ms_per_event"], 3)
            entry["goal_met"] = (entry.get("cpu_ratio_2", 99) <= 1.15
                                 and entry["jobs_run_twice"] == 0)
        else:
            entry["goal_met"] = (
                entry["http_429"] == 0 and entry["calls_in_flight_max"] <= 20
                and min(entry["api_rps_sustained"].values()) >= 90
            )
        result[mode] = entry
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
