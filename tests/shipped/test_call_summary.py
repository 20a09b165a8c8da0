"""The shipped call-summary bot, end to end: simulator, fake model, chat sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

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
)

DIALOGUE = [
    ("caller", "Hi, I was charged twice for my March invoice."),
    ("agent", "I am sorry about that. I will send you a corrected invoice by Friday."),
    ("caller", "Thank you, please email it to me."),
]
SUMMARY = "Charged twice for March; a corrected invoice goes out by Friday."
PROMISE = {"item": "send a corrected invoice", "t": 5.6,
           "quote": "I will send you a corrected invoice by Friday"}
PROMISE_FIELD = (
    "send a corrected invoice — “I will send you a corrected invoice by Friday” (at 00:05)"
)
PLATFORM = CallAi(summary="Caller was double-charged; agent will resend the invoice.",
                  sentiment="negative", topics=["billing", "refund"])


def summary(**fields: Any) -> dict[str, Any]:
    """A model answer for the summary schema."""
    return {"summary": SUMMARY, "sentiment": "neutral", "topics": ["billing"],
            "follow_ups": [PROMISE], **fields}


def answered(h: Any, **options: Any) -> str:
    """An answered, recorded call with the dialogue; returns its id."""
    return str(h.sim.inbound_call(CALLER, dialogue=DIALOGUE, recording=True, **options).call_id)


# the happy path


async def test_summary_posted_with_backed_follow_ups(tmp_path: Path) -> None:
    """An answered call's summary, sentiment, topics and quoted follow-up reach the channel."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.reply(summary())
        call_id = answered(h)
        await h.settle()
        (note,) = h.chat_messages()
        assert h.calls_placed() == []
        assert await h.dead_jobs() == []
    assert note["title"] == f"Call {CALLER} -> {MAIN}"
    assert note["text"] == SUMMARY
    assert note["fields"] == {
        "Sentiment": "neutral", "Topics": "billing", "Duration": "20 s",
        "Follow-up 1": PROMISE_FIELD,
    }
    assert note["urgency"] == "normal"
    assert note["reference"] == call_id


async def test_model_gets_the_summary_prompt_and_the_delimited_call(tmp_path: Path) -> None:
    """The model is asked once, with prompts/call_summary.j2 and the timed call between tags."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.reply(summary())
        answered(h)
        await h.settle()
        (sent,) = h.llm.requests
    system, user = sent["messages"]
    assert system == {"role": "system", "content": system_prompt("call_summary")}
    block = user["content"][user["content"].index("<transcript>"):]
    assert block == (
        "<transcript>\n"
        "[00:00.0] caller: Hi, I was charged twice for my March invoice.\n"
        "[00:03.6] agent: I am sorry about that.\n"
        "[00:05.6] agent: I will send you a corrected invoice by Friday.\n"
        "[00:09.2] caller: Thank you, please email it to me.\n"
        "</transcript>"
    )
    assert sent["response_format"]["json_schema"]["name"] == "CallSummary"


async def test_negative_call_posted_at_high_urgency(tmp_path: Path) -> None:
    """A call the model finds negative is posted at high urgency."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.reply(summary(sentiment="negative"))
        answered(h)
        await h.settle()
        (note,) = h.chat_messages()
    assert note["urgency"] == "high"


# phone.systems' own AI, and follow-ups nobody said


async def test_platform_ai_used_and_only_follow_ups_asked(tmp_path: Path) -> None:
    """With the call's own summary, sentiment and topics, the model is asked only for follow-ups."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.reply({"follow_ups": [PROMISE]})
        answered(h, ai_features=["summary", "sentiment", "topics"], ai=PLATFORM)
        await h.settle()
        (sent,) = h.llm.requests
        (note,) = h.chat_messages()
    schema = sent["response_format"]["json_schema"]
    assert schema["name"] == "FollowUps"
    assert list(schema["schema"]["properties"]) == ["follow_ups"]
    assert note["text"] == PLATFORM.summary
    assert note["fields"] == {
        "Sentiment": "negative", "Topics": "billing, refund", "Duration": "20 s",
        "Follow-up 1": PROMISE_FIELD,
    }


async def test_follow_ups_not_in_the_transcript_dropped(tmp_path: Path) -> None:
    """A follow-up whose quote nobody said, or said at another time, is left out of the note."""
    invented = {"item": "refund the fee", "quote": "I will refund the fee today", "t": 5.6}
    elsewhere = {"item": "email the invoice", "quote": "please email it to me", "t": 60.0}
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.reply(summary(follow_ups=[invented, PROMISE, elsewhere]))
        answered(h)
        await h.settle()
        (note,) = h.chat_messages()
    assert {k: v for k, v in note["fields"].items() if k.startswith("Follow-up")} == {
        "Follow-up 1": PROMISE_FIELD,
    }


@pytest.mark.parametrize("outcome", ["voicemail", "missed"])
async def test_no_summary_for_calls_nobody_answered(
    tmp_path: Path, outcome: Literal["voicemail", "missed"]
) -> None:
    """Voicemails and missed calls produce no summary and no model request."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.sim.inbound_call(CALLER, outcome=outcome, dialogue=[("caller", "Call me back.")],
                           recording=True)
        await h.settle()
        if outcome == "voicemail":
            assert h.sim.deliveries.delivered("transcript.ready")
        assert h.chat_messages() == []
        assert h.llm.requests == []
        assert await h.dead_jobs() == []


# event order, duplicates, no model


@pytest.mark.parametrize("first", ["call.completed", "transcript.ready"])
async def test_either_order_one_summary(tmp_path: Path, first: str) -> None:
    """Whether the transcript arrives before or after the call's completion, one summary."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.reply(summary())
        h.sim.hold_deliveries()
        answered(h)
        await deliver_first(h, first)
        assert [m["text"] for m in h.chat_messages()] == [SUMMARY]
        assert len(h.llm.requests) == 1


async def test_every_event_twice_one_summary(tmp_path: Path) -> None:
    """With every event delivered twice, the model is asked once and one summary is posted."""
    config = fast_sim_config(delivery=Delivery(duplicate_rate=1.0, timeout=5))
    async with harness(shipped("call_summary"), tmp_path, sim_config=config) as h:
        h.llm.reply(summary())
        answered(h)
        await h.settle()
        assert len(h.sim.deliveries.delivered("transcript.ready")) == 2
        assert len(h.chat_messages()) == 1
        assert len(h.llm.requests) == 1


async def test_dead_model_says_no_summary(tmp_path: Path) -> None:
    """When every model request fails, the note says there is no summary; no job is dead."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.fail_next(1000, status=503)
        call_id = answered(h)
        await h.settle()
        (note,) = h.chat_messages()
        assert h.llm.requests
        assert await h.dead_jobs() == []
    assert note["text"].startswith("No summary: the model is unavailable.")
    assert note["fields"] == {
        "Duration": "20 s",
        "First line": "caller: Hi, I was charged twice for my March invoice.",
        "Last line": "caller: Thank you, please email it to me.",
    }
    assert note["reference"] == call_id


async def test_no_summary_excerpt_is_masked(tmp_path: Path) -> None:
    """The excerpt in a note without a model masks a card number the caller read out."""
    card = [("caller", "My card is 4111 1111"), ("caller", "1111 1111"),
            ("caller", "that is all.")]
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.fail_next(1000, status=503)
        h.sim.inbound_call(CALLER, dialogue=card, recording=True)
        await h.settle()
        (note,) = h.chat_messages()
    text = str(note)
    assert "4111" not in text
    assert "1111" not in text
    assert note["fields"]["First line"].startswith("caller: My card is ")


async def test_dead_model_falls_back_to_platform_ai(tmp_path: Path) -> None:
    """When the model fails and the call has its own AI results, those are posted, no follow-ups."""
    async with harness(shipped("call_summary"), tmp_path) as h:
        h.llm.fail_next(1000, status=503)
        answered(h, ai_features=["summary", "sentiment", "topics"], ai=PLATFORM)
        await h.settle()
        (note,) = h.chat_messages()
        assert await h.dead_jobs() == []
    assert note["text"] == PLATFORM.summary
    assert note["fields"] == {"Sentiment": "negative", "Topics": "billing, refund",
                              "Duration": "20 s"}


async def test_no_model_says_no_summary(tmp_path: Path) -> None:
    """With no model configured, the note says there is no summary, without any model request."""
    async with harness(shipped("call_summary"), tmp_path, model=False) as h:
        answered(h)
        await h.settle()
        (note,) = h.chat_messages()
        assert h.llm.requests == []
        assert await h.dead_jobs() == []
    assert note["text"].startswith("No summary: the model is unavailable.")
    assert note["fields"]["Last line"] == "caller: Thank you, please email it to me."
