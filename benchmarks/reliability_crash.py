"""kill -9 of workers over many trials: every acknowledged event processed, no call placed twice.

One deployment (``agentkit run --receiver-only`` and a ``--workers-only``
process on a fresh PostgreSQL database, the shipped voicemail-callback bot,
the simulator as the API, the fake model, a chat recorder) runs ``--trials``
trials. Each leaves ``--voicemails`` voicemails from new callers, kills the
worker with SIGKILL, starts a new one and waits until everything is done.
Every other trial kills at a random moment (a pause of 0 to ``--longest-pause``
seconds); the others at the moments that matter most, in turn: right after
the callback's POST /v1/calls made the call and before the answer came back,
with a triage request at the model, right after a callback was recorded, while
a chat note is posted. After each trial every acknowledged event must be
stored with all its jobs done (or dead with a reason), and each voicemail
called back exactly once.

Prints one JSON line per trial, then the totals as the last line:
trials, events, callbacks_placed, duplicates, lost, dead (and more).
Short version in CI: tests/reliability/test_crash.py.

    .venv/bin/python benchmarks/reliability_crash.py --trials 50
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
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agentkit.logs import configure_logging  # noqa: E402
from tests.reliability.support import (  # noqa: E402
    MOMENTS,
    audit,
    crash_trial,
    progress,
    rig,
)
from tests.stores import fresh_database, postgres_reachable  # noqa: E402


async def run(args: argparse.Namespace) -> dict[str, object]:
    reason = await postgres_reachable()
    if reason:
        raise SystemExit(f"needs PostgreSQL: {reason}")
    rng = random.Random(args.seed)
    targeted = [m for m in MOMENTS if m != "random"]
    callers: list[str] = []
    moments: Counter[str] = Counter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database() as database, rig(
            Path(tmp), database, lease_seconds=args.lease_seconds
        ) as deployment:
            for trial in range(1, args.trials + 1):
                moment = "random" if trial % 2 else targeted[(trial // 2 - 1) % len(targeted)]
                new, what = await crash_trial(
                    deployment, voicemails=args.voicemails, moment=moment, rng=rng,
                    longest_pause=args.longest_pause,
                )
                callers += new
                moments[moment] += 1
                found = await audit(deployment, new)
                progress(trial=trial, **what, **found.figures(),
                         problems=found.problems()[:3])
            found = await audit(deployment, callers)
            kills = len(deployment.retired)
    return {
        "trials": args.trials,
        "kills": kills,
        "voicemails": len(callers),
        "events": found.events,
        "callbacks_placed": found.callbacks_placed,
        "duplicates": len(found.duplicates),
        "lost": len(found.lost),
        "dead": len(found.dead),
        "unfinished": len(found.unfinished),
        "unstored": len(found.unstored),
        "gave_up": found.gave_up,
        "moments": dict(moments),
        "voicemails_per_trial": args.voicemails,
        "lease_seconds": args.lease_seconds,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
        "problems": found.problems()[:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--voicemails", type=int, default=4, help="voicemails per trial")
    parser.add_argument("--longest-pause", type=float, default=1.0,
                        help="the longest random pause before a kill, in seconds")
    parser.add_argument("--lease-seconds", type=float, default=3.0)
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
