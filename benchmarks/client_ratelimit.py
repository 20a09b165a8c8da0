"""Push mixed requests through the client at a simulator with its limits on.

The simulator runs in its own process (so it does not share the client's core)
and enforces phone.systems' limits: 100 requests/s with a burst of 200 per key
and 20 call creations in flight. The client should stay under both by itself.

    .venv/bin/python benchmarks/client_ratelimit.py [--requests 2000] [--concurrency 64]

Prints progress, then as its last line one JSON object with ``rps``,
``http_429`` and ``max_calls_in_flight`` (goals: >= 95, 0, <= 20).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from agentkit import OdygyClient
from agentkit.logs import configure_logging

FROM = "+40264000111"


async def start_simulator(call_seconds: float) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    agentkit = str(Path(sys.executable).with_name("agentkit"))
    process = await asyncio.create_subprocess_exec(
        agentkit, "--log-level", "warning", "sim", "--port", "0", "--time-scale", "0.01",
        "--call-creation-seconds", str(call_seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    info = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=30))
    return process, info


async def one_request(client: OdygyClient, kind: str, rng: random.Random,
                      known_calls: list[str]) -> None:
    if kind == "call":
        call = await client.calls.create(from_=FROM, to=f"+4420794{rng.randrange(60000, 69999)}")
        known_calls.append(call.id)
    elif kind == "get_call" and known_calls:
        await client.calls.retrieve(rng.choice(known_calls))
    elif kind == "list_calls":
        await anext(client.calls.list(limit=20).pages())
    elif kind == "list_users":
        await anext(client.users.list(limit=20).pages())
    elif kind == "numbers":
        await anext(client.numbers.list().pages())
    else:
        await client.account.retrieve()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--call-seconds", type=float, default=0.3,
                        help="how long the simulator takes to create a call")
    args = parser.parse_args()
    configure_logging(level="warning", json=False)

    process, info = await start_simulator(args.call_seconds)
    base_url = info["simulator"]
    print(f"simulator at {base_url}, {args.requests} requests, concurrency {args.concurrency}",
          flush=True)
    rng = random.Random(7)
    weights = {"call": 20, "get_call": 20, "list_calls": 15, "list_users": 15, "numbers": 10,
               "account": 20}
    plan = rng.choices(list(weights), weights=list(weights.values()), k=args.requests)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for kind in plan:
        queue.put_nowait(kind)
    known_calls: list[str] = []
    done = 0
    failures: list[str] = []

    try:
        async with OdygyClient(api_key=info["api_key"], base_url=base_url) as client:
            started = time.monotonic()

            async def worker() -> None:
                nonlocal done
                while not queue.empty():
                    kind = queue.get_nowait()
                    try:
                        await one_request(client, kind, rng, known_calls)
                    except Exception as exc:  # counted and reported, the run goes on
                        failures.append(f"{kind}: {type(exc).__name__}: {exc}")
                    done += 1
                    if done % 250 == 0:
                        elapsed = time.monotonic() - started
                        print(f"  {done} requests in {elapsed:.1f} s "
                              f"({done / elapsed:.1f}/s), 429s so far: {client.stats.http_429}",
                              flush=True)

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            elapsed = time.monotonic() - started
            client_429 = client.stats.http_429
            client_max_calls = client.max_calls_in_flight
        async with httpx.AsyncClient() as http:
            sim_stats = (await http.get(base_url.removesuffix("/v1") + "/_sim/stats")).json()
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()

    if failures:
        print(f"{len(failures)} requests failed, e.g. {failures[:3]}", flush=True)
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 2),
        "rps": round(args.requests / elapsed, 1),
        "http_429": max(client_429, sim_stats["http_429"]),
        "max_calls_in_flight": sim_stats["max_calls_in_flight"],
        "client_max_calls_in_flight": client_max_calls,
        "calls_created": sim_stats["calls"],
        "failures": len(failures),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
