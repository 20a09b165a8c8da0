"""Duplicates, out of order, delayed by minutes: the same outcome as in-order delivery.

Each scenario runs the shipped voicemail-callback, escalation and call-summary
bots together in the sandbox (simulator, real receiver and SQLite store,
workers, fake model, chat sink), once with the call's events delivered in the
order phone.systems emitted them, then under several seeded plans that shuffle
them, deliver some twice and hold some back for minutes.

"Minutes later" is simulated on the store's clock (``SqliteStore(clock=...)``,
the clock every lease, retry, due time and join timeout is judged by): the
first wave is delivered and handled, the clock moves on by 2 to 10 minutes,
then the held-back events (and late duplicates) arrive, re-signed at delivery as
phone.systems re-signs every attempt. The joins wait 15 minutes, so a late
event must still complete its join, exactly as if it had come in order. Real
minutes are not needed: nothing in agentkit reads the wall clock to decide
what a late event means, only the store's clock.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentkit.sim.delivery import SimEvent
from agentkit.store.sqlite import SqliteStore
from agentkit.testing.harness import BotHarness
from tests.shipped.helpers import CALLER, PROMPTS, shipped

BOTS = ("voicemail_callback", "escalation", "call_summary")
VOICEMAIL = "Hi, it's Ana Pop about invoice 4011, it is wrong. Please call me back after 3pm."
COMPLAINT = [
    ("caller", "This is the third time the router is broken. I want to make a formal complaint."),
    ("agent", "I understand, I will log it for you."),
]
_ID = re.compile(r"\b(evt|cal|vmm|usr|cfl|num|vm|whk|job)_[0-9A-Za-z_]+")


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The fake model's answer, chosen by the schema asked for and the words sent."""
    schema = body["response_format"]["json_schema"]["name"]
    user = str(body["messages"][-1]["content"])
    words = user[user.find("<transcript>"):]
    if schema == "VoicemailTriage":
        return {"caller_name": "Ana Pop", "reason": "invoice 4011 is wrong", "urgency": "high",
                "wants_callback": True, "callback_window": "after 3pm",
                "callback_number": None, "spam": False, "language": "en"}
    if schema == "EscalationCheck":
        if "formal complaint" in words:
            return {"escalate": True, "reasons": ["complaint"],
                    "explanation": "a formal complaint about a repeated fault",
                    "quote": "I want to make a formal complaint."}
        return {"escalate": False, "reasons": [], "explanation": "calm", "quote": None}
    if schema == "CallSummary":
        return {"summary": "The router broke again; a complaint was logged.",
                "sentiment": "negative", "topics": ["router"], "follow_ups": []}
    raise AssertionError(f"unexpected model task {schema}")


@dataclass
class Plan:
    """How one run delivers a call's events: a first wave, then late ones minutes after."""

    seed: int | None  # None: every event once, in the order emitted
    late_minutes: float = 0.0
    late: list[SimEvent] = field(default_factory=list)

    def first_wave(self, held: list[SimEvent]) -> list[SimEvent]:
        if self.seed is None:
            return list(held)
        rng = random.Random(self.seed)
        events = list(held)
        rng.shuffle(events)
        # One or two events held back for minutes; every other delivered now, some twice.
        delayed = events[: rng.randint(1, 2)]
        now = events[len(delayed):]
        wave = now + [e for e in now if rng.random() < 0.5]
        rng.shuffle(wave)
        self.late = delayed + rng.sample(delayed + now, 2)  # late ones, and late duplicates
        rng.shuffle(self.late)
        self.late_minutes = rng.uniform(2, 10)
        return wave


class Clock:
    """The store's clock: real time plus however far a test moved it on."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def normalise(value: Any) -> Any:
    """Ids differ from run to run; their kind is what an outcome may depend on."""
    return json.loads(_ID.sub(lambda m: m.group(1) + "_*", json.dumps(value, sort_keys=True)))


async def outcome(h: BotHarness) -> dict[str, Any]:
    """What reached the outside and the action log, in a form runs can be compared by."""
    roles = {u.id: u.role for u in h.sim.state.users.values()}
    calls = sorted((c.from_, c.to, roles.get(c.user_id or "", "none"))
                   for c in h.calls_placed())
    notes = sorted(json.dumps(normalise(m), sort_keys=True) for m in h.chat_messages())
    rows: list[str] = []
    for event_id in dict.fromkeys(e.id for e in h.sim.deliveries.events):
        for record in await h.actions(event_id):
            rows.append(json.dumps(normalise(
                {"key": record.key, "bot": record.bot, "kind": record.kind,
                 "state": record.state, "outcome": record.detail.get("outcome"),
                 "to": record.detail.get("to")}), sort_keys=True))
    return {"calls": calls, "notes": notes, "actions": sorted(rows),
            "model_requests": len(h.llm.requests), "dead": len(await h.dead_jobs())}


async def run(tmp_path: Path, scenario: Callable[[BotHarness], None], plan: Plan) -> dict[str, Any]:
    clock = Clock()
    h = BotHarness([shipped(name) for name in BOTS], tmp_path, prompts=PROMPTS)
    h.store = SqliteStore(tmp_path / "agentkit.db", max_attempts=3, clock=clock)
    async with h:
        h.llm.responder = answer
        h.sim.hold_deliveries()
        scenario(h)
        await h.sim.settle()
        h.sim.release_deliveries(plan.first_wave)
        await h.settle()
        if plan.late:
            clock.offset += plan.late_minutes * 60
            for event in plan.late:
                h.sim.dispatcher.emit(event)
            await h.settle()
        return await outcome(h)


def voicemail(h: BotHarness) -> None:
    h.sim.leave_voicemail(CALLER, words=VOICEMAIL)


def complaint(h: BotHarness) -> None:
    h.sim.inbound_call(CALLER, dialogue=COMPLAINT, recording=True)


SEEDS = [11, 23, 37]


@pytest.mark.parametrize("scenario", [voicemail, complaint], ids=["voicemail", "complaint"])
async def test_any_order_same_outcome(tmp_path_factory: pytest.TempPathFactory,
                                      scenario: Callable[[BotHarness], None]) -> None:
    """Shuffled, duplicated and minutes-late deliveries end exactly as in-order delivery does."""
    expected = await run(tmp_path_factory.mktemp("in-order"), scenario, Plan(seed=None))
    assert len(expected["calls"]) == 1 and expected["dead"] == 0
    assert expected["notes"] and expected["actions"]
    for seed in SEEDS:
        plan = Plan(seed=seed)
        got = await run(tmp_path_factory.mktemp(f"seed-{seed}"), scenario, plan)
        assert got == expected, f"seed {seed}: late {[e.type for e in plan.late]}"
