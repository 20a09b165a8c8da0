"""What the crash and fault suites share: a real deployment on loopback, and its audit.

A ``Rig`` is an ``agentkit run --receiver-only`` process and ``--workers-only``
processes on one PostgreSQL database, running the shipped voicemail-callback
bot; the simulator (in this process) is the phone.systems API and delivers
signed webhooks to the receiver; the model is the fake OpenAI-compatible
server and chat goes to an HTTP recorder. ``audit`` says, from the simulator
and the store, whether every acknowledged event was processed and how many
callbacks each voicemail got.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentkit.ingress.receiver import WEBHOOK_PATH
from agentkit.sim import Delivery, SimConfig, Simulator, Timings
from agentkit.sim.config import ScriptedFault
from agentkit.store import Store, StoreError, store_for_url
from agentkit.testing import wait_until
from agentkit.testing.fake_llm import FakeLlm
from agentkit.testing.recorder import HttpRecorder
from tests.process import SECRET, AgentkitProcess, run_env

ROOT = Path(__file__).resolve().parents[2]
BOT = str(ROOT / "bots" / "voicemail_callback.py")
BOT_NAME = "voicemail-callback"
TRIAGE = {
    "caller_name": None, "reason": "asks to be called back", "urgency": "normal",
    "wants_callback": True, "callback_window": None, "callback_number": None,
    "spam": False, "language": "en",
}


def triage_answer(_: dict[str, Any]) -> str:
    """The fake model's answer to every triage: a callback is wanted."""
    return json.dumps(TRIAGE)


def caller(index: int) -> str:
    """The ``index``-th caller: a distinct valid GB fixed-line number (Ofcom's drama ranges)."""
    if index < 1000:
        return f"+44207946{index:04d}"
    return f"+44161496{index - 1000:04d}"


def sim_config(*, retry_delays: Sequence[float] = (500, 1000, 2000, 4000, 8000, 16000),
               seed: int | None = None) -> SimConfig:
    """A fast simulator (a simulated minute in 60 ms) whose deliveries retry for ~30 s.

    ``retry_delays`` are simulated seconds: 500 is half a real second, so a
    receiver that answers 503 for a few seconds still gets every event.
    """
    return SimConfig(
        time_scale=0.001,
        timings=Timings(call_creation=0.0),
        delivery=Delivery(timeout=10.0, retry_delays=tuple(retry_delays)),
        random_seed=seed,
    )


def pg_ctlcluster_missing() -> str | None:
    """Why PostgreSQL cannot be restarted from here, or None."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return "restarting PostgreSQL needs pg_ctlcluster and /etc/postgresql on this machine"
    return None


def restart_postgres() -> None:
    """Restart the local PostgreSQL cluster (blocking; run it in a thread)."""
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, capture_output=True, timeout=120)


@dataclass
class Rig:
    """One deployment under test: simulator, fake model, chat sink, receiver and workers."""

    tmp: Path
    database: str
    sim: Simulator
    llm: FakeLlm
    chat: HttpRecorder
    store: Store
    receiver: AgentkitProcess
    worker_args: list[str]
    workers: list[AgentkitProcess] = field(default_factory=list)
    retired: list[AgentkitProcess] = field(default_factory=list)
    next_caller: int = 0

    def env(self) -> dict[str, str]:
        return {
            **run_env(self.tmp, self.database),
            "ODYGY_API_KEY": self.sim.api_key,
            "ODYGY_BASE_URL": self.sim.base_url,
            "ODYGY_WEBHOOK_SECRET": SECRET,
            "AGENTKIT_BUSINESS_HOURS": "always",
            "AGENTKIT_MODEL": self.llm.model,
            "OPENAI_BASE_URL": self.llm.base_url,
            "OPENAI_API_KEY": "sk-reliability-0000000000",
            "SLACK_WEBHOOK_URL": self.chat.url + "/slack",
            # The API is the simulator (its key); its callers are in GB, its account in RO.
            "AGENTKIT_SANDBOX": "1",
            "AGENTKIT_DIAL_DAILY_MAX": "100000",
        }

    async def start_worker(self) -> AgentkitProcess:
        """A new ``agentkit run --workers-only`` process, started and ready."""
        worker = AgentkitProcess(
            ["--workers-only", "--port", "0", "--bots", BOT, *self.worker_args], self.env()
        )
        self.workers.append(worker)
        return await worker.start()

    async def kill_worker(self, worker: AgentkitProcess) -> None:
        """kill -9 ``worker`` and wait for it to be gone."""
        await worker.kill()
        self.workers.remove(worker)
        self.retired.append(worker)

    def leave_voicemails(self, count: int) -> list[str]:
        """``count`` voicemails from new callers, each wanting a callback; returns the callers."""
        callers = []
        for _ in range(count):
            number = caller(self.next_caller)
            self.next_caller += 1
            self.sim.leave_voicemail(
                number, words=f"Hello, this is {number}. Please call me back about my order."
            )
            callers.append(number)
        return callers

    def calls_to(self, number: str) -> int:
        return len(self.sim.calls(to=number, direction="outbound"))

    def logged(self, event: str) -> list[dict[str, Any]]:
        """Log lines named ``event`` of every worker this rig ran, killed ones included."""
        return [line for w in [*self.retired, *self.workers] for line in w.logged(event)]

    async def settle(self, timeout: float = 120.0) -> None:
        """Wait until calls ended, deliveries finished and no job is running or due soon,
        then run the pending join timeouts now and wait for those too."""
        await self._quiet(timeout)
        moved = 0
        for job in await self.store.scheduled("join-timeout"):
            moved += await self.store.reschedule(job.id, datetime.now(UTC))
        if moved:
            await self._quiet(timeout)

    async def _quiet(self, timeout: float) -> None:
        async def quiet() -> bool:
            if self.sim.engine.busy or self.sim.dispatcher.busy:
                return False
            try:
                return await self.store.count_due(within=5.0) == 0
            except StoreError:
                return False

        await wait_until(quiet, timeout=timeout, interval=0.1,
                         message="the deployment to settle")


@asynccontextmanager
async def rig(
    tmp: Path,
    database: str,
    *,
    config: SimConfig | None = None,
    workers: int = 1,
    lease_seconds: float = 3.0,
    max_attempts: int = 5,
) -> AsyncIterator[Rig]:
    """A running deployment on ``database``; every process is killed on the way out."""
    async with Simulator(config or sim_config()) as sim, FakeLlm(
        responder=triage_answer
    ) as llm, HttpRecorder() as chat:
        receiver = AgentkitProcess(["--receiver-only", "--port", "0"], {})
        deployment = Rig(
            tmp=tmp, database=database, sim=sim, llm=llm, chat=chat,
            store=store_for_url(database), receiver=receiver,
            worker_args=["--poll-seconds", "0.05", "--lease-seconds", str(lease_seconds),
                         "--retry-base-seconds", "0.05", "--max-attempts", str(max_attempts),
                         "--drain-seconds", "1"],
        )
        receiver.env = deployment.env()
        try:
            await receiver.start()
            await deployment.store.open()
            sim.add_webhook(receiver.url + WEBHOOK_PATH, SECRET)
            await asyncio.gather(*(deployment.start_worker() for _ in range(workers)))
            yield deployment
        finally:
            for process in [*deployment.workers, receiver]:
                await process.kill()
            await deployment.store.close()


@dataclass
class Audit:
    """What a run led to, per voicemail and per acknowledged event."""

    voicemails: int
    events: int
    callbacks_placed: int
    duplicates: list[str]
    lost: list[str]
    dead: list[str]
    unfinished: list[str]
    unstored: list[str]
    gave_up: int

    def figures(self) -> dict[str, int]:
        return {
            "voicemails": self.voicemails, "events": self.events,
            "callbacks_placed": self.callbacks_placed, "duplicates": len(self.duplicates),
            "lost": len(self.lost), "dead": len(self.dead),
            "unfinished": len(self.unfinished), "unstored": len(self.unstored),
            "gave_up": self.gave_up,
        }

    def problems(self) -> list[str]:
        """Every broken promise, one line each; empty when the run kept them all."""
        return [*self.duplicates, *self.lost, *self.unfinished, *self.unstored]


async def audit(deployment: Rig, callers: Sequence[str]) -> Audit:
    """Check every acknowledged event and every voicemail of ``callers``.

    An acknowledged event must be stored, and each of its jobs done, or dead
    with its last error kept. A voicemail must have led to exactly one call
    back, unless one of its call's jobs was dead-lettered (then none or one).
    """
    sim, store = deployment.sim, deployment.store
    acknowledged = {a.event_id for a in sim.deliveries.delivered()}
    unstored: list[str] = []
    unfinished: list[str] = []
    dead: list[str] = []
    dead_calls: set[str] = set()
    for event_id in sorted(acknowledged):
        stored = await store.get_event(event_id)
        if stored is None:
            unstored.append(f"acknowledged event {event_id} is not in the store")
            continue
        for job in await store.jobs_for_event(event_id):
            if job.state == "dead":
                dead.append(f"{event_id} {job.kind} {job.name}: {job.last_error}")
                if stored.call_id:
                    dead_calls.add(stored.call_id)
                if not job.last_error:
                    unfinished.append(f"job {job.id} of {event_id} is dead without a reason")
            elif job.state != "done":
                unfinished.append(f"job {job.id} ({job.kind} {job.name or job.bot}) of "
                                  f"{event_id} is {job.state} after {job.attempts} attempt(s)")
        for action in await store.actions_for_event(event_id):
            if action.state == "started":
                unfinished.append(f"action {action.key} is still started: {action.detail}")
    voicemail_calls = {
        str(e.data["from"]): str(e.data["call_id"])
        for e in sim.deliveries.emitted("voicemail.received")
    }
    placed = Counter(c.to for c in sim.calls(direction="outbound"))
    duplicates = [f"{n} was called back {placed[n]} times" for n in callers if placed[n] > 1]
    lost = [
        f"the voicemail from {n} led to no callback and nothing was dead-lettered"
        for n in callers if placed[n] == 0 and voicemail_calls.get(n) not in dead_calls
    ]
    return Audit(
        voicemails=len(callers), events=len(acknowledged),
        callbacks_placed=sum(placed[n] for n in callers), duplicates=duplicates, lost=lost,
        dead=dead, unfinished=unfinished, unstored=unstored,
        gave_up=len(sim.deliveries.gave_up),
    )


async def random_pause(rng: random.Random, longest: float) -> float:
    """Wait a random 0 to ``longest`` seconds before a kill; returns the pause."""
    pause = rng.uniform(0, longest)
    await asyncio.sleep(pause)
    return pause


def progress(**figures: Any) -> None:
    """One progress line of a long run, on stdout."""
    print(json.dumps({"t": round(time.monotonic(), 1), **figures}), flush=True)


# crash trials

MOMENTS = ("after_post", "mid_model", "after_placed", "after_notify", "random")


async def crash_trial(
    deployment: Rig, *, voicemails: int, moment: str, rng: random.Random,
    longest_pause: float = 3.0, settle_timeout: float = 120.0,
) -> tuple[list[str], dict[str, Any]]:
    """Leave voicemails, kill -9 a worker at ``moment``, start a new one, wait until done.

    Moments: ``after_post`` (the callback's POST /v1/calls made the call and its
    answer is held: the worker dies before recording it), ``mid_model`` (a
    triage request is in flight), ``after_placed`` (a callback was recorded as
    placed, the job not yet finished), ``after_notify`` (a chat note is being
    posted) and ``random`` (a random pause). Returns the callers and what happened.
    """
    sim, llm, chat = deployment.sim, deployment.llm, deployment.chat
    victim = rng.choice(deployment.workers)
    llm_before, chat_before = len(llm.requests), len(chat.requests)
    placed_before = len(victim.logged("callback.placed"))
    if moment == "after_post":
        sim.inject_fault("timeout", method="POST", path="/v1/calls", hold=8.0)
    elif moment == "mid_model":
        llm.hang_next(1, seconds=8.0)
    callers = deployment.leave_voicemails(voicemails)
    pause = 0.0
    if moment == "after_post":
        await wait_until(lambda: any(deployment.calls_to(n) for n in callers), timeout=60,
                         interval=0.002, message="a callback to be placed")
    elif moment == "mid_model":
        await wait_until(lambda: len(llm.requests) > llm_before, timeout=60, interval=0.002,
                         message="a triage request to reach the model")
    elif moment == "after_placed":
        await wait_until(lambda: len(victim.logged("callback.placed")) > placed_before,
                         timeout=60, interval=0.002, message="a callback to be recorded")
    elif moment == "after_notify":
        await wait_until(lambda: len(chat.requests) > chat_before, timeout=60, interval=0.002,
                         message="a chat note to be posted")
    elif moment == "random":
        pause = await random_pause(rng, longest_pause)
    else:
        raise ValueError(f"unknown moment {moment!r}: use one of {MOMENTS}")
    calls_at_kill = sum(deployment.calls_to(n) for n in callers)
    await deployment.kill_worker(victim)
    await deployment.start_worker()
    await deployment.settle(settle_timeout)
    return callers, {"moment": moment, "pause_s": round(pause, 3), "calls_at_kill": calls_at_kill}


# faults

@dataclass
class FaultPlan:
    """What goes wrong in a fault run: API fault rates, model and chat failures."""

    error_rate: float = 0.06          # 5xx before anything happens
    lost_answer_rate: float = 0.04    # the request takes effect, then a 502
    rate_limit_rate: float = 0.05     # 429 with Retry-After: 1
    timeout_rate: float = 0.05        # takes effect, then no answer before the client's 10 s
    timeout_hold: float = 10.5
    model_failures: int = 4           # 500s from the model
    model_hangs: int = 2              # requests held, then 504
    model_hang_seconds: float = 2.0
    chat_failures: int = 6            # 503s from the chat webhook

    def apply(self, deployment: Rig) -> None:
        faults = deployment.sim.config.faults
        faults.error_rate = self.error_rate
        faults.lost_answer_rate = self.lost_answer_rate
        faults.rate_limit_rate = self.rate_limit_rate
        faults.timeout_rate = self.timeout_rate
        faults.timeout_hold = self.timeout_hold
        # At least one fault met for certain: the first call creation fails before it is made.
        faults.scripted.append(ScriptedFault("error", method="POST", path="/v1/calls",
                                             status=503))
        deployment.llm.fail_next(self.model_failures, 500, retry_after=None)
        deployment.llm.hang_next(self.model_hangs, seconds=self.model_hang_seconds)
        deployment.chat.fail_next(self.chat_failures, 503)


def fault_evidence(deployment: Rig) -> dict[str, int]:
    """How often the faults were met, so a run that met none shows it."""
    return {
        "api_requests": deployment.sim.stats.requests,
        "api_retries_logged": len(deployment.logged("odygy.retry")),
        "api_reconciled": len(deployment.logged("odygy.reconciled")),
        "model_requests": len(deployment.llm.requests),
        "model_fallbacks": len(deployment.logged("voicemail.fallback")),
        "chat_posts": len(deployment.chat.requests),
        "chat_refused": sum(1 for r in deployment.chat.requests if r.answered >= 400),
        "job_retries": len(deployment.logged("job.failed_will_retry")),
    }
