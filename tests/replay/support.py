"""A store filled by the simulator and the shipped bots, and a replay of it.

The fill runs the voicemail, escalation and call-summary bots, and a bot
whose first attempt always fails (a retried handler), over voicemails and
answered calls, with a join that times out (a transcript that never came)
and a model whose answers depend on the words and the prompt, as a real
one's do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agentkit import CallCompleted, Context
from agentkit.bot import Bot
from agentkit.llm import LlmClient
from agentkit.replay.engine import Replay, ReplayScope
from agentkit.replay.recording import recorded_client
from agentkit.replay.report import ReplayReport
from agentkit.settings import Settings
from agentkit.store.base import CallQuery, Store
from agentkit.store.sqlite import SqliteStore
from agentkit.testing.fake_llm import FakeLlm, minimal_answer
from agentkit.testing.harness import BotHarness
from tests.shipped.helpers import PROMPTS, shipped

CALLERS = ["+442079460001", "+442079460002", "+442079460003", "+442079460004",
           "+442079460005"]
# What the scripted model hears as urgent; a prompt that says this word makes it stricter.
STRICT = "STRICT-URGENCY"


def scripted(body: dict[str, Any]) -> str:
    """Answers that follow the transcript's words, and the prompt's."""
    answer = json.loads(str(minimal_answer(body)))
    messages = body["messages"]
    system = str(messages[0]["content"])
    user = " ".join(str(m["content"]) for m in messages[1:])
    words = user.split("<transcript>")[-1].split("</transcript>")[0].lower()
    if "wants_callback" in answer:
        urgent = "outage" in words or (STRICT in system and "wrong" in words)
        answer.update(reason="asks about an invoice" if "invoice" in words else "a question",
                      urgency="urgent" if urgent else "normal",
                      wants_callback="call me" in words, spam="prize" in words,
                      language="en")
    elif "escalate" in answer:
        cancel = "cancel" in words
        answer.update(escalate=cancel, reasons=["cancellation_threat"] if cancel else [],
                      explanation="threatens to cancel" if cancel else "calm")
    elif "sentiment" in answer:
        answer.update(summary="A caller asked a question.", topics=["billing"],
                      sentiment="negative" if "cancel" in words else "neutral")
    return json.dumps(answer)


def flaky_bot() -> Bot:
    """A note on every inbound call, whose first attempt always fails as a timeout would."""
    bot = Bot("crm-note")

    @bot.on(CallCompleted, direction="inbound")
    async def note(ctx: Context[CallCompleted]) -> None:
        if ctx.attempt == 1:
            raise TimeoutError("the CRM did not answer")
        await ctx.actions.notify(f"Log the call from {ctx.event.data.from_} in the CRM")

    return bot


def live_bots() -> list[Bot]:
    """The shipped voicemail, escalation and summary bots, and a flaky one."""
    return [shipped("voicemail_callback"), shipped("escalation"), shipped("call_summary"),
            flaky_bot()]


async def fill(h: BotHarness) -> list[str]:
    """Voicemails and calls through the live bots; returns the call ids, oldest first."""
    h.llm.responder = scripted
    h.sim.leave_voicemail(CALLERS[0], words="Hi, invoice 4011 is wrong. Please call me back.")
    await h.settle()
    h.sim.leave_voicemail(CALLERS[1], words="You have won a prize, press one.")
    await h.settle()
    h.sim.inbound_call(CALLERS[2], dialogue=(
        ("caller", "I want to cancel my contract, this is the third outage."),
        ("agent", "I am sorry to hear that.")), recording=True)
    await h.settle()
    h.sim.inbound_call(CALLERS[3], dialogue=(
        ("caller", "Can you send me the invoice again?"), ("agent", "Sure.")), recording=True)
    await h.settle()
    # A voicemail whose transcript never comes: the join times out, and a person decides.
    h.sim.hold_deliveries()
    h.sim.leave_voicemail(CALLERS[4], words="Call me about the outage, it is urgent.")
    await h.sim.settle()
    h.sim.release_deliveries(lambda held: [e for e in held if e.type != "transcript.ready"])
    await h.settle()
    await h.run_scheduled("join-timeout")
    await h.settle()
    return [c.call_id for c in reversed(await h.store.list_calls(CallQuery(), limit=100))]


@asynccontextmanager
async def live_store(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, Settings]]:
    """The fill's store, opened again from its file after the harness (and its simulator)
    stopped, as ``agentkit replay`` opens a deployment's; and the deployment's settings."""
    async with BotHarness(live_bots(), tmp_path, prompts=PROMPTS) as h:
        await fill(h)
        assert h.settings is not None
        settings = h.settings
    store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    try:
        yield store, settings
    finally:
        await store.close()


async def replay(store: Store, settings: Settings, bots: Sequence[Bot], *,
                 scope: ReplayScope | None = None, model: FakeLlm,
                 prompts: Path = PROMPTS, **options: Any) -> ReplayReport:
    """Replay ``store`` through ``bots`` with ``model`` behind the store's answer cache.

    The API is the stopped simulator's address: every read must come from the store.
    """
    api, _ = recorded_client(store, api_key=settings.api_key, base_url=settings.base_url)
    llm = LlmClient(model.llm_config(), cache=store)
    try:
        return await Replay(settings, store, bots, api=api, llm=llm, prompts=prompts,
                            **options).run(scope or ReplayScope())
    finally:
        await llm.aclose()
        await api.aclose()
