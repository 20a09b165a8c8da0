"""What the shipped-bot tests share: loading a bot from bots/, its harness, its prompt."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentkit.actions.hours import DAYS
from agentkit.bot import Bot
from agentkit.events import internal_body
from agentkit.llm import PromptLibrary
from agentkit.runtime.loader import load_bots
from agentkit.sim.delivery import SimEvent
from agentkit.store import NewEvent
from agentkit.testing.harness import BotHarness

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
MAIN = "+40264000111"
CALLER = "+442079460000"
WORDS = "Hi, it's Ana Pop about invoice 4011, it is wrong. Please call me back after 3pm."
# Open on one day only, three days from today (UTC): closed while the tests run.
_OPEN_DAY = DAYS[(datetime.now(UTC).weekday() + 3) % 7]
CLOSED = {"AGENTKIT_BUSINESS_HOURS": f"{_OPEN_DAY} 09:00-17:00 UTC"}


def shipped(module: str) -> Bot:
    """A fresh copy of the bot in ``bots/<module>.py``."""
    (bot,) = load_bots(str(ROOT / "bots" / f"{module}.py"))
    return bot


def harness(bot: Bot, tmp_path: Path, **options: Any) -> BotHarness:
    """A harness running ``bot`` alone, with the project's prompts."""
    return BotHarness([bot], tmp_path, prompts=PROMPTS, **options)


def system_prompt(template: str) -> str:
    """The system message ``prompts/<template>.j2`` renders."""
    return PromptLibrary.for_project(PROMPTS).render_block(template, "system")


def users(h: BotHarness, role: str) -> set[str]:
    """The ids of the simulator's users of ``role``."""
    return {u.id for u in h.sim.state.users.values() if u.role == role}


def titled(h: BotHarness, start: str) -> list[dict[str, Any]]:
    """The chat messages whose title starts with ``start``."""
    return [m for m in h.chat_messages() if m["title"].startswith(start)]


async def deliver_first(h: BotHarness, event_type: str) -> None:
    """Deliver the held events of ``event_type``, and the others once those are handled.

    Call after ``h.sim.hold_deliveries()`` and the scenario. The others are sent
    again through the simulator's dispatcher, so its log lists them twice.
    """
    await h.sim.settle()
    rest: list[SimEvent] = []

    def first(held: list[SimEvent]) -> list[SimEvent]:
        rest.extend(e for e in held if e.type != event_type)
        return [e for e in held if e.type == event_type]

    h.sim.release_deliveries(first)
    await h.settle()
    for event in rest:
        h.sim.dispatcher.emit(event)
    await h.settle()


async def request(h: BotHarness, bot: str, name: str, **args: str) -> str:
    """Store an operator's request as ``agentkit request BOT NAME --arg k=v`` does."""
    event_id = f"evt_request_{uuid.uuid4().hex}"
    data = {"bot": bot, "name": name, "args": args, "requested_by": "tester"}
    await h.store.add_events([NewEvent(
        id=event_id, type="agentkit.request", created_at=datetime.now(UTC), call_id=None,
        body=internal_body(event_id, "agentkit.request", data), routable=True,
    )])
    assert h.workers is not None
    h.workers.wake()
    await h.settle()
    return event_id


async def dead_jobs(h: BotHarness) -> int:
    """How many jobs of any event (agentkit's own included) were dead-lettered."""
    return (await h.store.job_counts())["dead"]


def triage(**fields: Any) -> dict[str, Any]:
    """A model answer for the voicemail bot's triage schema."""
    return {
        "caller_name": "Ana Pop", "reason": "invoice 4011 is wrong", "urgency": "high",
        "wants_callback": True, "callback_window": "after 3pm", "callback_number": None,
        "spam": False, "language": "en", **fields,
    }
