"""Slack approvals: how fast a click is answered, and how soon an approved callback is placed.

Slack shows an error to the person who clicked when the interactivity Request
URL does not answer within 3 seconds. This measures ``POST /slack/interactions``
as agentkit serves it, with the shipped voicemail bot asking for approval of
every callback (AGENTKIT_APPROVALS=all_callbacks) and Slack faked on loopback:

1. ``--approvals`` voicemails are left in the simulator (an agentkit.testing
   BotHarness: simulator, receiver, SQLite store, workers, fake model), and each
   callback's request is posted to the fake Slack;
2. the approvals are clicked ``--burst`` at a time, concurrently, signed as Slack
   signs them: first a stranger's click (refused, an ephemeral reply), then the
   approver's (decides), then a second approver's (already approved);
3. each click is timed from the request sent to the answer read; each approved
   callback from its deciding click's answer to the simulator's outbound call.

Figures (milliseconds; the last line of output, JSON): ``decide_p50_ms``,
``decide_p95_ms``, ``decide_max_ms`` (deciding clicks), ``repeat_p95_ms`` (the
second approver's), ``stranger_p95_ms``, ``approved_to_call_p50_ms``,
``approved_to_call_p95_ms``, and ``calls_placed`` (must equal ``approvals``).

    .venv/bin/python benchmarks/approvals.py [--approvals 200] [--burst 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentkit.runtime.loader import load_bots  # noqa: E402
from agentkit.store import Approval  # noqa: E402
from agentkit.testing import BotHarness, wait_until  # noqa: E402
from agentkit.testing.slack import FakeSlack, signed_click  # noqa: E402

SECRET = "benchmark-signing-secret-0000000"
APPROVER, SECOND, STRANGER = "U0APPROVER", "U0SECOND", "U0STRANGER"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def timed_click(http: httpx.AsyncClient, url: str, approval_id: str, user: str,
                      slack: FakeSlack) -> tuple[float, int]:
    body, headers = signed_click(SECRET, approval_id, "approve", user=user,
                                 response_url=slack.response_url(user))
    started = time.perf_counter()
    response = await http.post(url, content=body, headers=headers)
    return (time.perf_counter() - started) * 1000, response.status_code


async def run(count: int, burst: int) -> dict[str, float | int]:
    (bot,) = load_bots(str(ROOT / "bots" / "voicemail_callback.py"))
    with tempfile.TemporaryDirectory() as folder:
        async with FakeSlack() as slack:
            env = {"SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SECRET,
                   "SLACK_APPROVAL_CHANNEL": "C0APPROVALS", "SLACK_API_URL": slack.api_url,
                   "AGENTKIT_APPROVERS": f"{APPROVER},{SECOND}",
                   "AGENTKIT_APPROVALS": "all_callbacks"}
            async with BotHarness([bot], Path(folder), env=env, model=False,
                                  prompts=ROOT / "prompts") as h:
                return await measure(h, slack, count, burst)


async def measure(h: BotHarness, slack: FakeSlack, count: int,
                  burst: int) -> dict[str, float | int]:
    for n in range(count):
        h.sim.leave_voicemail(f"+4420794{n:05d}", words="Please call me back.")
        if (n + 1) % 50 == 0:
            # Left 50 at a time, as voicemails come in: the simulator rings each call through.
            await slack.wait_for("chat.postMessage", n + 1, timeout=120)
            print(f"{n + 1}/{count} voicemails left, their approvals asked", flush=True)
    await slack.wait_for("chat.postMessage", count, timeout=120)
    approvals: list[Approval] = []
    for posted in slack.posted("chat.postMessage"):
        (approval_id,) = {e["value"] for b in posted["blocks"] if b["type"] == "actions"
                          for e in b["elements"]}
        approval = await h.store.get_approval(approval_id)
        assert approval is not None
        approvals.append(approval)
    print(f"{count} approvals asked and posted to Slack", flush=True)
    url = h.url + "/slack/interactions"
    deciding: list[float] = []
    repeat: list[float] = []
    stranger: list[float] = []
    to_call: list[float] = []
    answered_at: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for start in range(0, count, burst):
            group = approvals[start:start + burst]
            for user, times in ((STRANGER, stranger), (APPROVER, deciding), (SECOND, repeat)):
                results = await asyncio.gather(
                    *(timed_click(http, url, a.id, user, slack) for a in group))
                assert all(status == 200 for _, status in results), results
                times.extend(ms for ms, _ in results)
                if user == APPROVER:
                    now = time.perf_counter()
                    answered_at.update({str(a.what["to"]): now for a in group})
            print(f"clicked {min(start + burst, count)}/{count}: decide p95 so far "
                  f"{percentile(deciding, 0.95):.1f} ms", flush=True)
        placed: dict[str, float] = {}

        def all_placed() -> bool:
            for call in h.calls_placed():
                placed.setdefault(call.to, time.perf_counter())
            return len(placed) >= count

        await wait_until(all_placed, timeout=60 + count, interval=0.005,
                         message="every approved callback to be placed")
    to_call = [(placed[to] - at) * 1000 for to, at in answered_at.items()]
    await h.settle(timeout=60 + count)
    return {
        "approvals": count, "burst": burst,
        "decide_p50_ms": round(statistics.median(deciding), 1),
        "decide_p95_ms": round(percentile(deciding, 0.95), 1),
        "decide_max_ms": round(max(deciding), 1),
        "repeat_p95_ms": round(percentile(repeat, 0.95), 1),
        "stranger_p95_ms": round(percentile(stranger, 0.95), 1),
        "approved_to_call_p50_ms": round(statistics.median(to_call), 1),
        "approved_to_call_p95_ms": round(percentile(to_call, 0.95), 1),
        "calls_placed": len(h.calls_placed()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=200)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    figures = asyncio.run(run(args.approvals, args.burst))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
