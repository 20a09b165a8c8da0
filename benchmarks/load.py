"""Open-loop load: signed deliveries at a fixed rate against a real ``agentkit run``.

``agentkit run --sandbox`` is started with the shipped bots (bots/), its embedded
simulator and a fake OpenAI-compatible model (a child process), on a fresh
SQLite file or (``--store postgres``) a fresh PostgreSQL database. While the
generator sends ``--rate`` deliveries a second for ``--seconds`` (each at its
scheduled instant, whether or not earlier ones were answered: open loop, so a
slow server cannot slow the arrivals down), real voicemails are left in the
simulator at ``--voicemails-per-second``: those the bots triage with the model,
call back through the simulator's API and report on, so the workers do real
work under the load.

The generated deliveries are a call's lifecycle (initiated, answered,
completed, recording, voicemail), each event its own id. Latency is measured
from the instant a delivery was due, not from when it went out, so queueing in
the generator counts against the server. At the end, every acknowledged
delivery must be stored and its route and bot jobs done (join timeouts, which
wait 15 minutes by design, are not waited for); ``lost`` counts those that are
not after ``--drain-seconds``.

Prints one progress line a second, then one JSON line: rate, seconds, sent,
acknowledged, p50_ms, p99_ms, max_ms, lost, errors, goal_met (p99 under 200 ms,
nothing lost, no errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from ingest import PostgresBench, SqliteBench, free_port  # noqa: E402

from agentkit.odygy.signing import sign  # noqa: E402
from agentkit.sim.config import SANDBOX_WEBHOOK_SECRET  # noqa: E402
from agentkit.testing.deliveries import default_data  # noqa: E402

AGENTKIT = str(Path(sys.executable).with_name("agentkit"))
TYPES = ("call.initiated", "call.answered", "call.completed", "recording.ready",
         "voicemail.received")
WORDS = "Hi, it's Ana about invoice 4011, it is wrong. Please call me back."


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def body_for(run: str, n: int) -> tuple[str, bytes]:
    call = n // len(TYPES)
    event_type = TYPES[n % len(TYPES)]
    data = default_data(event_type, call_id=f"cal_load{run}_{call}")
    if event_type == "voicemail.received":
        data["id"] = f"vmm_load{run}_{call}"
    event_id = f"evt_load{run}_{n:07d}"
    body = json.dumps({"id": event_id, "type": event_type, "created_at": "2026-04-23T10:12:45Z",
                       "data": data}, separators=(",", ":")).encode()
    return event_id, body


# ---------------------------------------------------------------- the fake model (child)

def serve_model() -> None:
    """Run the fake model until stdin closes; print its base URL first."""
    from agentkit.testing.fake_llm import FakeLlm, minimal_answer

    def answer(body: dict[str, Any]) -> Any:
        name = body.get("response_format", {}).get("json_schema", {}).get("name")
        if name == "VoicemailTriage":
            return {"caller_name": "Ana", "reason": "invoice 4011 is wrong", "urgency": "normal",
                    "wants_callback": True, "callback_window": None, "callback_number": None,
                    "spam": False, "language": "en"}
        return minimal_answer(body)

    async def main() -> None:
        async with FakeLlm(responder=answer) as fake:
            print(fake.base_url, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


# ---------------------------------------------------------------- counting

def unprocessed_sql(placeholder: str) -> str:
    return ("SELECT kind, state, COUNT(*) FROM jobs WHERE event_id LIKE " + placeholder
            + " GROUP BY kind, state")


def job_states(store: SqliteBench | PostgresBench, run: str) -> dict[str, int]:
    pattern = f"evt_load{run}_%"
    if isinstance(store, SqliteBench):
        with sqlite3.connect(store.path) as db:
            rows = db.execute(unprocessed_sql("?"), (pattern,)).fetchall()
    else:
        import asyncpg

        async def fetch() -> list[Any]:
            conn = await asyncpg.connect(store._url(store.database or ""))
            try:
                return list(await conn.fetch(unprocessed_sql("$1"), pattern))
            finally:
                await conn.close()

        rows = asyncio.run(fetch())
    return {f"{kind}:{state}": int(count) for kind, state, count in rows}


def open_jobs(states: dict[str, int]) -> int:
    return sum(count for key, count in states.items()
               if key.split(":")[0] in ("route", "bot") and key.split(":")[1] != "done"
               and key.split(":")[1] != "dead")


# ---------------------------------------------------------------- the generator

async def generate(url: str, sim_url: str, args: argparse.Namespace, run: str) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    acknowledged: list[str] = []
    errors = 0
    total = int(args.rate * args.seconds)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500)
    tasks: set[asyncio.Task[None]] = set()
    voicemails = 0

    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def send(n: int, due: float) -> None:
            nonlocal errors
            event_id, body = body_for(run, n)
            headers = {"Content-Type": "application/json",
                       "Odygy-Signature": sign(body, [SANDBOX_WEBHOOK_SECRET])}
            try:
                response = await http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                errors += 1
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                return
            latencies.append((time.perf_counter() - due) * 1000)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            if 200 <= response.status_code < 300:
                acknowledged.append(event_id)
            else:
                errors += 1

        async def voicemail(k: int) -> None:
            try:
                await http.post(sim_url + "/_sim/voicemails",
                                json={"from": f"+4420794602{k % 100:02d}", "words": WORDS})
            except httpx.HTTPError:
                pass

        start = time.perf_counter()
        next_report = start + 1
        last_count = 0
        vm_interval = 1 / args.voicemails_per_second if args.voicemails_per_second else None
        next_vm = start
        for n in range(total):
            due = start + n / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(send(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if vm_interval is not None and time.perf_counter() >= next_vm:
                vm = asyncio.create_task(voicemail(voicemails))
                tasks.add(vm)
                vm.add_done_callback(tasks.discard)
                voicemails += 1
                next_vm += vm_interval
            if time.perf_counter() >= next_report:
                window = latencies[last_count:]
                last_count = len(latencies)
                log(f"  t={time.perf_counter() - start:5.1f}s sent={n + 1} "
                    f"acked={len(acknowledged)} in_flight={len(tasks)} "
                    f"p99_last_s={percentile(window, 0.99):.1f}ms errors={errors}")
                next_report += 1
        if tasks:
            await asyncio.wait(set(tasks))
        elapsed = time.perf_counter() - start
    return {"sent": total, "acknowledged": acknowledged, "latencies": latencies,
            "errors": errors, "statuses": statuses, "elapsed": elapsed, "voicemails": voicemails}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--voicemails-per-second", type=float, default=2.0,
                        help="real voicemails left in the simulator meanwhile (0: none)")
    parser.add_argument("--drain-seconds", type=float, default=60.0,
                        help="how long the jobs may take to finish after the last answer")
    parser.add_argument("--serve-model", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        serve_model()
        return

    run = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix="agentkit-load-"))
    store: SqliteBench | PostgresBench = (
        SqliteBench(workdir) if args.store == "sqlite" else PostgresBench(args.postgres_url))
    database_url = store.create("load")
    model = subprocess.Popen([sys.executable, __file__, "--serve-model"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert model.stdout is not None
    model_url = model.stdout.readline().strip()
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "SLACK_", "TEAMS_"))}
    env.update(AGENTKIT_DATABASE_URL=database_url, OPENAI_BASE_URL=model_url,
               OPENAI_API_KEY="sk-load", AGENTKIT_MODEL="fake-model",
               AGENTKIT_BUSINESS_HOURS="always", AGENTKIT_DIAL_DAILY_MAX="1000000")
    output = open(workdir / "agentkit.log", "w")
    server = subprocess.Popen(
        [AGENTKIT, "run", "--log-level", "warning", "--sandbox", "--host", "127.0.0.1",
         "--port", str(port), "--sim-port", str(sim_port), "--bots", str(REPO / "bots")],
        env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"agentkit did not start; see {workdir / 'agentkit.log'}")
            time.sleep(0.2)
        log(f"agentkit run --sandbox on {url}, {args.store} store, shipped bots, fake model; "
            f"{args.rate:g}/s for {args.seconds:g} s")
        outcome = asyncio.run(generate(url + "/webhooks/odygy", f"http://127.0.0.1:{sim_port}",
                                       args, run))
        acknowledged = outcome["acknowledged"]
        started = time.monotonic()
        states = job_states(store, run)
        while open_jobs(states) and time.monotonic() - started < args.drain_seconds:
            time.sleep(0.5)
            states = job_states(store, run)
        drained = time.monotonic() - started
        stored = store.count(f"load{run}_")
        not_stored = len(acknowledged) - stored if stored <= len(acknowledged) else 0
        latencies = outcome["latencies"]
        p99 = percentile(latencies, 0.99)
        lost = max(0, not_stored) + open_jobs(states)
        result = {
            "rate": args.rate, "seconds": args.seconds, "store": args.store,
            "sent": outcome["sent"], "acknowledged": len(acknowledged),
            "p50_ms": round(percentile(latencies, 0.5), 1), "p99_ms": round(p99, 1),
            "max_ms": round(max(latencies, default=0.0), 1),
            "lost": lost, "errors": outcome["errors"],
            "stored": stored, "jobs": states, "drain_s": round(drained, 1),
            "statuses": outcome["statuses"], "achieved_rate": round(
                outcome["sent"] / outcome["elapsed"], 1),
            "real_voicemails": outcome["voicemails"],
            "goal_met": p99 < 200 and lost == 0 and outcome["errors"] == 0
                        and len(acknowledged) == outcome["sent"],
        }
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        output.close()
        if model.stdin is not None:
            model.stdin.close()
        model.wait(10)
        store.drop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
