"""The four tasks against the fake model over HTTP: what is sent, what comes back, re-asks."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
import structlog
from pydantic import BaseModel, Field

from agentkit.llm import (
    Classification,
    Decision,
    LlmInvalidAnswer,
    LlmTasks,
    LlmUsageError,
    PromptLibrary,
)
from agentkit.odygy.models import Transcript
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import FakeLlm
from tests.llm.conftest import PROJECT_PROMPTS, MakeTasks

CARD = "4111 1111 1111 1111"


def transcript(*texts: str) -> Transcript:
    return Transcript(
        call_id="cal_1",
        language="en-US",
        segments=[
            {"t": 2.0 * i, "speaker": "caller" if i % 2 == 0 else "agent", "text": text}
            for i, text in enumerate(texts)
        ],
    )


def prompt_text(fake: FakeLlm, index: int = -1) -> str:
    return "\n".join(str(m["content"]) for m in fake.messages(index))


class Address(BaseModel):
    city: str
    postcode: str | None = None


class Triage(BaseModel):
    """What a voicemail asks for."""

    wants_callback: bool = Field(description="the caller asks to be called back")
    urgency: Literal["low", "normal", "high"]
    callback_number: str | None = None
    address: Address | None = None
    topics: list[str] = Field(default_factory=list)


# happy paths


async def test_summarise_returns_the_summary(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """summarise returns the model's summary, asked for with the project's prompt."""
    fake_llm.reply({"summary": "Ana asks for a refund of invoice 12."})
    call = transcript("Hi, this is Ana.", "I want a refund of invoice 12.")
    summary = await tasks.summarise(call)
    assert summary == "Ana asks for a refund of invoice 12."
    system, user = fake_llm.messages()
    assert system["role"] == "system" and "untrusted" in system["content"]
    assert "at most 80 words" in user["content"]
    assert "[00:02.0] agent: I want a refund of invoice 12." in user["content"]


async def test_request_carries_the_strict_schema(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """The request asks for a strict json_schema answer at temperature 0 from the model."""
    await tasks.classify("Where is my parcel?", ["billing", "delivery"])
    body = fake_llm.requests[-1]
    assert body["model"] == "fake-model"
    assert body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    spec = body["response_format"]["json_schema"]
    assert spec["name"] == "classification"
    assert spec["strict"] is True
    assert spec["schema"]["properties"]["label"]["enum"] == ["billing", "delivery"]
    assert spec["schema"]["required"] == ["label", "confidence", "reason"]
    assert spec["schema"]["additionalProperties"] is False


async def test_reasoning_models_get_no_temperature(
    make_tasks: MakeTasks, fake_llm: FakeLlm
) -> None:
    """Models that refuse a temperature (o-series, gpt-5) are asked without one."""
    await make_tasks(model="o4-mini").summarise("hello")
    assert fake_llm.requests[-1]["model"] == "o4-mini"
    assert "temperature" not in fake_llm.requests[-1]


async def test_classify_returns_a_label(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """classify returns the label, confidence and reason the model gave."""
    fake_llm.reply({"label": "delivery", "confidence": 0.8, "reason": "asks about a parcel"})
    result = await tasks.classify("Where is my parcel?", ["billing", "delivery"])
    assert result == Classification(label="delivery", confidence=0.8, reason="asks about a parcel")
    assert "- billing\n- delivery" in prompt_text(fake_llm)


async def test_extract_fills_the_schema(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """extract returns an instance of the pydantic model, nested and optional fields included."""
    fake_llm.reply({
        "wants_callback": True, "urgency": "high", "callback_number": None,
        "address": {"city": "Cluj", "postcode": None}, "topics": ["billing"],
    })
    triage = await tasks.extract(Triage, transcript("Please call me back, it is urgent."))
    assert triage == Triage(wants_callback=True, urgency="high", address=Address(city="Cluj"),
                            topics=["billing"])
    spec = fake_llm.requests[-1]["response_format"]["json_schema"]
    assert spec["name"] == "Triage"
    assert "wants_callback: the caller asks to be called back" in prompt_text(fake_llm)


async def test_extract_schema_is_strict(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """The extract schema requires every field, forbids others, and spells optional as null."""
    await tasks.extract(Triage, "Call me.")
    schema = fake_llm.requests[-1]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == [
        "wants_callback", "urgency", "callback_number", "address", "topics"
    ]
    assert schema["additionalProperties"] is False
    assert {"type": "null"} in schema["properties"]["callback_number"]["anyOf"]
    nested = schema["$defs"]["Address"]
    assert nested["required"] == ["city", "postcode"] and nested["additionalProperties"] is False


async def test_decide_returns_an_option(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """decide returns one of the options, and the prompt carries their descriptions."""
    fake_llm.reply({"choice": "escalate", "reason": "the caller is angry"})
    options = {"call_back": "phone the caller today", "escalate": "hand it to a supervisor"}
    decision = await tasks.decide(options, "This is the third time I call!")
    assert decision == Decision(choice="escalate", reason="the caller is angry")
    assert "- escalate: hand it to a supervisor" in prompt_text(fake_llm)
    schema = fake_llm.requests[-1]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["choice"]["enum"] == ["call_back", "escalate"]


async def test_default_answer_fits_every_task(tasks: LlmTasks) -> None:
    """With nothing scripted, the fake's minimal answers pass every task's validation."""
    assert await tasks.summarise("hello") == ""
    assert (await tasks.classify("hello", ["a", "b"])).label == "a"
    assert (await tasks.decide(["x", "y"], "hello")).choice == "x"
    assert (await tasks.extract(Triage, "hello")).urgency == "low"


# invalid answers


async def test_invalid_answer_is_asked_again(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """An answer that is not JSON is sent back once with what was wrong, and the second is used."""
    fake_llm.reply(
        "Sure! The label is billing.", {"label": "billing", "confidence": 1, "reason": "r"}
    )
    result = await tasks.classify("My invoice is wrong.", ["billing", "delivery"])
    assert result.label == "billing"
    assert len(fake_llm.requests) == 2
    *_, assistant, reask = fake_llm.messages(1)
    assert assistant == {"role": "assistant", "content": "Sure! The label is billing."}
    assert reask["role"] == "user" and "Invalid JSON" in reask["content"]
    assert fake_llm.messages(1)[:2] == fake_llm.messages(0)


async def test_label_outside_the_set_is_invalid(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """A label not among the labels counts as an invalid answer and is asked again."""
    fake_llm.reply(
        {"label": "sales", "confidence": 0.9, "reason": "r"},
        {"label": "billing", "confidence": 0.9, "reason": "r"},
    )
    result = await tasks.classify("My invoice is wrong.", ["billing", "delivery"])
    assert result.label == "billing"
    assert "must be one of 'billing', 'delivery'" in fake_llm.messages(1)[-1]["content"]


async def test_invalid_twice_raises(
    tasks: LlmTasks, fake_llm: FakeLlm, store: SqliteStore
) -> None:
    """Two invalid answers raise LlmInvalidAnswer, and neither is cached."""
    fake_llm.reply("{}", '{"summary": 5}')
    with pytest.raises(LlmInvalidAnswer) as caught:
        await tasks.summarise("hello")
    assert caught.value.task == "summarise"
    assert "summary" in caught.value.problem
    fake_llm.reply({"summary": "fine"})
    assert await tasks.summarise("hello") == "fine"
    assert len(fake_llm.requests) == 3


async def test_fenced_json_is_accepted(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """JSON wrapped in a Markdown fence, as some local models send it, is read without a re-ask."""
    fake_llm.reply('```json\n{"summary": "ok"}\n```')
    assert await tasks.summarise("hello") == "ok"
    assert len(fake_llm.requests) == 1


# cache, usage, logs


async def test_same_question_is_answered_from_the_cache(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """The same model, prompt and input twice make one request; the second costs no tokens."""
    fake_llm.reply({"summary": "once"})
    assert await tasks.summarise("hello") == "once"
    tokens = tasks.usage.prompt_tokens, tasks.usage.completion_tokens
    assert await tasks.summarise("hello") == "once"
    assert len(fake_llm.requests) == 1
    assert (tasks.usage.prompt_tokens, tasks.usage.completion_tokens) == tokens
    assert (tasks.usage.calls, tasks.usage.cached_calls) == (2, 1)


async def test_answer_after_a_reask_is_cached_for_the_question(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """A valid second answer is kept under the original question, so asking again costs nothing."""
    fake_llm.reply("nope", {"summary": "second"})
    assert await tasks.summarise("hello") == "second"
    assert await tasks.summarise("hello") == "second"
    assert len(fake_llm.requests) == 2


async def test_usage_and_cost_add_up(make_tasks: MakeTasks) -> None:
    """Tokens and cost of every call add up at the model's price."""
    async with FakeLlm(usage=(1000, 200)) as fake:
        tasks = make_tasks(base_url=fake.base_url, prices={"fake-model": (2.0, 8.0)})
        await tasks.summarise("one")
        await tasks.summarise("two")
    usage = tasks.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.calls) == (2000, 400, 2)
    assert usage.cost_usd == pytest.approx(2 * (1000 * 2.0 + 200 * 8.0) / 1_000_000)


async def test_each_call_logs_one_event_without_text(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """Each model call logs llm.call with its numbers, and no prompt or answer text."""
    fake_llm.reply({"summary": "The secret plan."})
    with structlog.testing.capture_logs() as logs:
        await tasks.summarise("Caller says: the password is swordfish")
    calls = [e for e in logs if e["event"] == "llm.call"]
    assert len(calls) == 1
    assert calls[0]["task"] == "summarise" and calls[0]["model"] == "fake-model"
    assert calls[0]["cached"] is False and calls[0]["ms"] >= 0
    assert calls[0]["prompt_tokens"] > 0 and calls[0]["completion_tokens"] > 0
    assert "swordfish" not in json.dumps(logs) and "secret plan" not in json.dumps(logs)


# masking and variables


async def test_payment_data_never_reaches_the_model(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """Card numbers in the transcript and in extra variables are masked before sending."""
    await tasks.summarise(
        transcript(f"My card is {CARD}, code on the back 123."),
        guidance=f"The caller earlier gave {CARD}.",
    )
    sent = json.dumps(fake_llm.requests[-1])
    assert "4111" not in sent
    assert "[card number removed]" in sent and "[security code removed]" in sent


async def test_extra_variables_reach_the_template(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """Keyword variables a bot passes are handed to the template."""
    await tasks.summarise("hello", language="Romanian", guidance="Mention the order number.")
    user = fake_llm.messages()[1]["content"]
    assert "in Romanian" in user and "Mention the order number." in user


async def test_reserved_variable_is_refused(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """A variable the task sets itself cannot be passed, and nothing is sent."""
    with pytest.raises(LlmUsageError, match="sets transcript itself"):
        await tasks.summarise(None, transcript="hi")
    assert fake_llm.requests == []


async def test_labels_must_be_a_list(tasks: LlmTasks) -> None:
    """A single string for labels is refused rather than read letter by letter."""
    with pytest.raises(LlmUsageError, match="list of strings"):
        await tasks.classify("hi", "billing")


async def test_bot_prompt_name_is_used(
    make_tasks: MakeTasks, fake_llm: FakeLlm, tmp_path: Any
) -> None:
    """prompt_names maps a task to the bot's template, found in the bot's folder first."""
    (tmp_path / "short.j2").write_text(
        "{% block system %}Be brief.{% endblock %}"
        "{% block user %}Summarise for {{ team }}:\n{{ transcript }}{% endblock %}"
    )
    library = PromptLibrary([tmp_path, PROJECT_PROMPTS])
    tasks = make_tasks(library=library, prompt_names={"summarise": "short"})
    fake_llm.reply("not json", {"summary": "ok"})
    assert await tasks.summarise("hello", team="support") == "ok"
    system, user = fake_llm.messages(0)
    assert system["content"] == "Be brief."
    assert user["content"].startswith("Summarise for support:\n<transcript>")
    assert "Answer again" in fake_llm.messages(1)[-1]["content"]


async def test_long_transcript_is_cut_to_the_token_budget(
    make_tasks: MakeTasks, fake_llm: FakeLlm
) -> None:
    """A transcript longer than max_input_tokens allows is cut, with the omission stated."""
    tasks = make_tasks(max_input_tokens=1500)
    long = transcript(*[f"sentence number {i} " * 5 for i in range(200)])
    await tasks.summarise(long)
    user = fake_llm.messages()[1]["content"]
    assert "segments," in user and "seconds omitted ...]" in user
    assert sum(len(m["content"]) for m in fake_llm.messages()) < 1500 * 4
