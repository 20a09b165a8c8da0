"""Faults all around, scaled up: no event lost, no call placed twice, all done or dead-lettered.

One deployment (``agentkit run --receiver-only`` and ``--workers``
``--workers-only`` processes on a fresh PostgreSQL database, the shipped
voicemail-callback bot, the simulator as the API, the fake model, a chat
recorder) takes ``--voicemails`` voicemails in ``--rounds`` rounds while:

- the API answers 5xx (before acting, or after acting: a lost answer), 429 and
  no answer within the client's 10 s on about 20% of requests;
- the model fails (500) and hangs (then 504) on some requests each round;
- the chat webhook refuses (503) some posts each round;
- PostgreSQL is restarted (pg_ctlcluster) during ``--pg-restarts`` of the
  rounds (0 to skip; skipped where pg_ctlcluster is missing). This drops every
  connection to the machine's PostgreSQL, other users' included.

Then every acknowledged event must be stored with all its jobs done (or dead
with a reason) and each voicemail called back once (or its job dead-lettered).
Prints one JSON line per round, then the totals as the last line.
Short version in CI: tests/reliability/test_faults.py.

    .venv/bin/python benchmarks/reliability_faults.py --voicemails 120 --rounds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agentkit.logs import configure_logging  # noqa: E402
from tests.reliability.support import (  # noqa: E402
    FaultPlan,
    audit,
    fault_evidence,
    pg_ctlcluster_missing,
    progress,
    restart_postgres,
    rig,
    sim_config,
)
from tests.stores import fresh_database, postgres_reachable  # noqa: E402


async def run(args: argparse.Namespace) -> dict[str, object]:
    reason = await postgres_reachable()
    if reason:
        raise SystemExit(f"needs PostgreSQL: {reason}")
    restarts_skipped = pg_ctlcluster_missing() if args.pg_restarts else None
    rng = random.Random(args.seed)
    restart_rounds = set(rng.sample(range(1, args.rounds + 1), min(args.pg_restarts, args.rounds)))
    if restarts_skipped:
        restart_rounds = set()
    per_round = max(1, args.voicemails // args.rounds)
    callers: list[str] = []
    restarts = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database() as database, rig(
            Path(tmp), database, config=sim_config(seed=args.seed), workers=args.workers
        ) as deployment:
            for round_ in range(1, args.rounds + 1):
                FaultPlan(model_failures=args.model_failures, model_hangs=args.model_hangs,
                          chat_failures=args.chat_failures).apply(deployment)
                restart = None
                for i in range(per_round):
                    callers += deployment.leave_voicemails(1)
                    if round_ in restart_rounds and i == per_round // 3:
                        restart = asyncio.create_task(asyncio.to_thread(restart_postgres))
                        restarts += 1
                    await asyncio.sleep(args.spacing)  # pace the voicemails over the round
                if restart is not None:
                    await restart
                await deployment.settle(timeout=600)
                found = await audit(deployment, callers)
                progress(round=round_, pg_restart=round_ in restart_rounds, **found.figures(),
                         **fault_evidence(deployment), problems=found.problems()[:3])
            found = await audit(deployment, callers)
            evidence = fault_evidence(deployment)
            refused = sum(1 for a in deployment.sim.deliveries.attempts if not a.ok)
    return {
        "voicemails": len(callers),
        "events": found.events,
        "callbacks_placed": found.callbacks_placed,
        "duplicates": len(found.duplicates),
        "lost": len(found.lost),
        "dead": len(found.dead),
        "unfinished": len(found.unfinished),
        "unstored": len(found.unstored),
        "gave_up": found.gave_up,
        "deliveries_refused": refused,
        "pg_restarts": restarts,
        "pg_restarts_skipped": restarts_skipped,
        **evidence,
        "rounds": args.rounds,
        "workers": args.workers,
        "fault_rates": {k: v for k, v in vars(FaultPlan()).items() if k.endswith("_rate")},
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
        "dead_reasons": found.dead[:10],
        "problems": found.problems()[:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voicemails", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="--workers-only processes")
    parser.add_argument("--spacing", type=float, default=0.1,
                        help="seconds between voicemails within a round")
    parser.add_argument("--model-failures", type=int, default=6, help="model 500s per round")
    parser.add_argument("--model-hangs", type=int, default=2, help="model hangs per round")
    parser.add_argument("--chat-failures", type=int, default=8, help="chat 503s per round")
    parser.add_argument("--pg-restarts", type=int, default=2,
                        help="rounds with a PostgreSQL restart (0: none)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    os.chdir(ROOT)  # the workers read ./prompts
    configure_logging(level="warning", json=False)
    totals = asyncio.run(run(args))
    print(json.dumps(totals), flush=True)
    failed = totals["duplicates"] or totals["lost"] or totals["unfinished"] or totals["unstored"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
