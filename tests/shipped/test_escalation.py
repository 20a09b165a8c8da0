"""The shipped escalation bot, end to end: simulator, fake model, chat sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit import Bot, Context, TranscriptReady
from agentkit.odygy.models import CallAi
from agentkit.sim.config import Delivery
from agentkit.testing import fast_sim_config
from tests.shipped.helpers import (
    CALLER,
    MAIN,
    deliver_first,
    harness,
    shipped,
    system_prompt,
    users,
)

COMPLAINT = [
    ("caller", "This is the third time the router is broken. I want to make a formal complaint."),
    ("agent", "I understand, I will log it for you."),
]
CALM = [
    ("caller", "Hello, what time do you open on Saturday?"),
    ("agent", "We open at nine, see you then."),
]
REASON = ("complaint: a formal complaint about a repeated fault "
          "(“I want to make a formal complaint.”)")


def check(**fields: Any) -> dict[str, Any]:
    """A model answer for the escalation check: a complaint, unless told otherwise."""
    return {"escalate": True, "reasons": ["complaint"],
            "explanation": "a formal complaint about a repeated fault",
            "quote": "I want to make a formal complaint.", **fields}


CALM_CHECK = check(escalate=False, reasons=[], explanation="a question, answered", quote=None)


def call(h: Any, dialogue: list[tuple[str, str]], **options: Any) -> str:
    """An answered, recorded inbound call; returns its id."""
    return str(h.sim.inbound_call(CALLER, dialogue=dialogue, recording=True, **options).call_id)


# what escalates, and what does not


async def test_legal_word_escalates_without_the_model(tmp_path: Path) -> None:
    """A caller naming a lawyer is escalated at once, urgent, and the model is not asked."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Fix it by Monday or I am calling my lawyer.")
        await h.settle()
        (placed,) = h.calls_placed()
        (alert,) = h.chat_messages()
        assert h.llm.requests == []
        assert await h.dead_jobs() == []
    assert (placed.from_, placed.to) == (MAIN, CALLER)
    assert alert["text"] == "legal words from the caller: “lawyer”"
    assert alert["urgency"] == "urgent"


async def test_model_flagged_complaint_escalates_with_the_reason(tmp_path: Path) -> None:
    """A call the model flags as a complaint is escalated; the alert says why, with the quote."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.reply(check())
        call_id = call(h, COMPLAINT)
        await h.settle()
        assert len(h.calls_placed()) == 1
        (alert,) = h.chat_messages()
    assert alert["title"] == "Escalated by escalation"
    assert alert["text"] == REASON
    assert alert["fields"] == {"Caller": CALLER, "Called": "+40264000111",
                               "Call": call_id, "Reason": REASON, "Follow-up": "placed"}
    assert alert["urgency"] == "high"


async def test_supervisor_rings_first(tmp_path: Path) -> None:
    """The escalation's callback rings a supervisor, not an agent, then the caller."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.reply(check())
        call(h, COMPLAINT)
        await h.settle()
        (placed,) = h.calls_placed()
        supervisors = users(h, "supervisor")
    assert placed.user_id in supervisors
    assert (placed.from_, placed.to) == (MAIN, CALLER)


async def test_calm_call_not_escalated(tmp_path: Path) -> None:
    """A call the model finds calm rings nobody and posts nothing."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.reply(CALM_CHECK)
        call(h, CALM)
        await h.settle()
        assert len(h.llm.requests) == 1
        assert h.calls_placed() == []
        assert h.chat_messages() == []


async def test_legal_words_of_the_agent_go_to_the_model(tmp_path: Path) -> None:
    """Legal words the agent says do not escalate by themselves; the model decides."""
    dialogue = [("caller", "Can I get a copy of my contract?"),
                ("agent", "Yes, our lawyer will email it, no need to go to court for that.")]
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.reply(CALM_CHECK)
        call(h, dialogue)
        await h.settle()
        assert len(h.llm.requests) == 1
        assert h.calls_placed() == []


async def test_a_caller_named_sue_is_not_a_lawsuit(tmp_path: Path) -> None:
    """A caller introducing herself as Sue goes to the model check, not straight to a supervisor."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.reply(CALM_CHECK)
        h.sim.leave_voicemail(CALLER, words="Hi, it's Sue from Acme. Call me about the quote.")
        await h.settle()
        assert len(h.llm.requests) == 1
        assert h.calls_placed() == []


async def test_model_gets_the_check_prompt_and_the_delimited_call(tmp_path: Path) -> None:
    """The model is asked with prompts/escalation_check.j2 and the call between tags."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.reply(CALM_CHECK)
        call(h, CALM)
        await h.settle()
        (sent,) = h.llm.requests
    system, user = sent["messages"]
    assert system == {"role": "system", "content": system_prompt("escalation_check")}
    block = user["content"][user["content"].index("<transcript>"):]
    assert block == (
        "<transcript>\n"
        "[00:00.0] caller: Hello, what time do you open on Saturday?\n"
        "[00:03.2] agent: We open at nine, see you then.\n"
        "</transcript>"
    )
    assert sent["response_format"]["json_schema"]["name"] == "EscalationCheck"


async def test_unrecorded_call_left_alone(tmp_path: Path) -> None:
    """An answered call with no recording, hence no transcript, is dropped when its wait ends."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.sim.inbound_call(CALLER, dialogue=COMPLAINT)
        await h.settle()
        assert await h.run_scheduled("join-timeout:")
        await h.settle()
        assert h.llm.requests == []
        assert h.calls_placed() == []
        assert await h.dead_jobs() == []


# event order, duplicates, no model


@pytest.mark.parametrize("first", ["call.completed", "transcript.ready"])
async def test_either_order_one_escalation(tmp_path: Path, first: str) -> None:
    """Whether the transcript arrives before or after the call's completion, one escalation."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.reply(check())
        h.sim.hold_deliveries()
        call(h, COMPLAINT)
        await deliver_first(h, first)
        assert len(h.calls_placed()) == 1
        assert [m["text"] for m in h.chat_messages()] == [REASON]


async def test_every_event_twice_one_escalation(tmp_path: Path) -> None:
    """With every event delivered twice, one model request, one callback and one alert."""
    config = fast_sim_config(delivery=Delivery(duplicate_rate=1.0, timeout=5))
    async with harness(shipped("escalation"), tmp_path, sim_config=config) as h:
        h.llm.reply(check())
        call(h, COMPLAINT)
        await h.settle()
        assert len(h.sim.deliveries.delivered("transcript.ready")) == 2
        assert len(h.llm.requests) == 1
        assert len(h.calls_placed()) == 1
        assert len(h.chat_messages()) == 1


async def test_dead_model_escalates_on_negative_platform_sentiment(tmp_path: Path) -> None:
    """When the model fails, a call phone.systems rates negative is escalated, saying so."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.fail_next(1000, status=503)
        call(h, COMPLAINT, ai_features=["sentiment"], ai=CallAi(sentiment="negative"))
        await h.settle()
        assert len(h.calls_placed()) == 1
        (alert,) = h.chat_messages()
        assert await h.dead_jobs() == []
    assert "not checked by the model" in alert["text"]
    assert alert["urgency"] == "high"


async def test_dead_model_leaves_other_calls_alone(tmp_path: Path) -> None:
    """When the model fails and the call is not rated negative, nobody is rung; no job is dead."""
    async with harness(shipped("escalation"), tmp_path) as h:
        h.llm.fail_next(1000, status=503)
        call(h, COMPLAINT, ai_features=["sentiment"], ai=CallAi(sentiment="neutral"))
        await h.settle()
        assert h.llm.requests
        assert h.calls_placed() == []
        assert h.chat_messages() == []
        assert await h.dead_jobs() == []


async def test_no_model_still_escalates_legal_words(tmp_path: Path) -> None:
    """With no model configured, legal words still escalate."""
    async with harness(shipped("escalation"), tmp_path, model=False) as h:
        h.sim.leave_voicemail(CALLER, words="My solicitor will write to you.")
        await h.settle()
        assert len(h.calls_placed()) == 1
        (alert,) = h.chat_messages()
        assert alert["text"] == "legal words from the caller: “solicitor”"
        assert await h.dead_jobs() == []


async def test_framework_escalate_on_a_transcript(tmp_path: Path) -> None:
    """A bot may escalate from transcript.ready, naming the caller, and a supervisor rings."""
    bot = Bot("transcript-escalator")

    @bot.on("transcript.ready")
    async def escalate(ctx: Context[TranscriptReady]) -> None:
        call = await ctx.api.calls.retrieve(ctx.event.data.call_id)
        await ctx.actions.escalate(reason="asked for a manager", to=call.from_)

    async with harness(bot, tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="I want a manager.")
        await h.settle()
        assert [c.to for c in h.calls_placed()] == [CALLER]
