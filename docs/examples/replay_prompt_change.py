"""A prompt change caught by replay before it shipped: the worked example of docs/replay.md.

No real model is reachable here, so the model is a scripted fake (agentkit.testing's
FakeLlm) whose answers depend on the prompt and on the caller's words, as a real model's
do: it calls an outage urgent, and a billing question urgent only when the triage
prompt's system block says "Treat every billing question as urgent."

1. The shipped bots (bots/) with the project's prompts (prompts/) take three voicemails
   end to end on loopback (simulator, receiver, store, workers), as ``agentkit run``
   would. Their store is what a deployment's would be.
2. A copy of prompts/ gets that line in voicemail_triage.j2: the candidate prompts.
3. The stored calls are replayed through the same bots with the candidate prompts, with
   the Python API (``Replay``, ``recorded_client``), and the report is printed: the
   billing voicemail's callback becomes urgent.

Run it from any folder: ``python docs/examples/replay_prompt_change.py``. It writes only
in a temporary folder, which it removes, and takes a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from agentkit import Replay, ReplayReport, ReplayScope
from agentkit.llm import LlmClient
from agentkit.logs import configure_logging
from agentkit.replay import recorded_client
from agentkit.replay.render import render_text
from agentkit.runtime.loader import load_bots
from agentkit.settings import Settings
from agentkit.store import CallQuery
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import BotHarness, FakeLlm
from agentkit.testing.fake_llm import minimal_answer

ROOT = Path(__file__).resolve().parents[2]  # the repository: docs/examples/ is two down
BOTS = ROOT / "bots"
PROMPTS = ROOT / "prompts"
# The change under review: one line added to the triage prompt's system block.
NEW_LINE = "Treat every billing question as urgent."

VOICEMAILS = [
    ("+442079460101", "Hi, this is Ana Popescu. I was charged twice on this month's invoice. "
                      "Please call me back."),
    ("+442079460102", "Hello, this is Mark Evans. Our internet has been down since eight, "
                      "the whole office is offline. Please call me back."),
    ("+442079460103", "Hi, this is Ioana Marin, just confirming Thursday's appointment at "
                      "ten. No need to call back, thanks."),
]
BILLING = ("invoice", "bill", "charged", "refund", "payment")
OUTAGE = ("down", "outage", "offline")


def scripted_model(body: dict[str, Any]) -> str:
    """The fake model's answer to one request: it reads the prompt and the transcript."""
    answer = json.loads(str(minimal_answer(body)))  # every field present, at its smallest
    messages = body["messages"]
    system = str(messages[0]["content"])
    user = " ".join(str(m["content"]) for m in messages[1:])
    words = user.split("<transcript>")[-1].split("</transcript>")[0]
    lower = words.lower()
    if "wants_callback" in answer:  # the voicemail triage (prompts/voicemail_triage.j2)
        billing = any(word in lower for word in BILLING)
        outage = any(word in lower for word in OUTAGE)
        urgent = outage or (billing and NEW_LINE in system)
        name = re.search(r"this is ([A-Z]\w+ [A-Z]\w+)", words)
        answer.update(
            caller_name=name.group(1) if name else None,
            reason="a billing question: charged twice" if billing
            else "internet outage at their office" if outage else "confirms an appointment",
            urgency="urgent" if urgent else "normal",
            wants_callback="call me back" in lower, spam=False, language="en")
    elif "escalate" in answer:  # the escalation check: nobody here is angry
        answer.update(escalate=False, reasons=[], explanation="a calm caller")
    return json.dumps(answer)


async def live_run(folder: Path) -> tuple[Settings, list[str]]:
    """The shipped bots take the voicemails; their store is left in ``folder``."""
    async with BotHarness(load_bots(str(BOTS)), folder, prompts=PROMPTS) as h:
        h.llm.responder = scripted_model
        for number, words in VOICEMAILS:
            h.sim.leave_voicemail(number, words=words)
            await h.settle()
        calls = list(reversed(await h.store.list_calls(CallQuery(), limit=10)))  # oldest first
        lines = [f"{len(calls)} calls stored: the voicemails, and the calls the callbacks placed"]
        for call in calls:
            if call.direction != "inbound":
                continue
            done = [a for a in await h.store.actions_for_call(call.call_id)
                    if a.kind == "callback" and a.bot == "voicemail-callback"]
            did = ", ".join(f"callback, urgency {a.detail.get('urgency')}" for a in done)
            lines.append(f"  {call.call_id}  from {call.from_number}  {did or 'no callback'}")
        assert h.settings is not None
        return h.settings, lines


def candidate_prompts(folder: Path) -> Path:
    """A copy of prompts/ whose triage prompt has the new line in its system block."""
    shutil.copytree(PROMPTS, folder)
    triage = folder / "voicemail_triage.j2"
    text = triage.read_text(encoding="utf-8")
    changed = text.replace("{% block system %}\n", "{% block system %}\n" + NEW_LINE + "\n", 1)
    if changed == text:
        raise SystemExit(f"{triage.name} has no system block to add the line to")
    triage.write_text(changed, encoding="utf-8")
    return folder


async def replay(database: Path, settings: Settings, prompts: Path) -> ReplayReport:
    """The stored calls through the bots with ``prompts``: what ``agentkit replay`` does.

    The simulator has stopped: every API read is answered from what the store kept, and
    any write would raise ReadOnlyError. Model answers go through the store's answer
    cache, so only the changed prompt's requests reach the (fake) model.
    """
    store = SqliteStore(database)
    await store.open()
    api, _ = recorded_client(store, api_key=str(settings.api_key), base_url=settings.base_url)
    try:
        async with FakeLlm(responder=scripted_model) as model:
            llm = LlmClient(model.llm_config(), cache=store)
            try:
                return await Replay(
                    settings, store, load_bots(str(BOTS)), api=api, llm=llm, prompts=prompts,
                    model=f"{settings.model} (scripted fake)", fail_on=["changed-callbacks"],
                ).run(ReplayScope())
            finally:
                await llm.aclose()
    finally:
        await api.aclose()
        await store.close()


async def main() -> int:
    configure_logging(level="warning")
    with tempfile.TemporaryDirectory(prefix="agentkit-replay-example-") as folder:
        work = Path(folder)
        # The bots' log lines go to stderr, so that stdout shows the example's output alone.
        with contextlib.redirect_stdout(sys.stderr):
            settings, live = await live_run(work / "live")
            prompts = candidate_prompts(work / "candidate-prompts")
            report = await replay(work / "live" / "agentkit.db", settings, prompts)
    print("Live: the shipped bots (bots/) with prompts/ as it is")
    print("\n".join(live))
    print(f"\nReplay: the same calls with the triage prompt's new line, {NEW_LINE!r}\n")
    print(render_text(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
