"""Payment data never goes to the model in a variable, nor comes back from it in an answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog
from pydantic import BaseModel

from agentkit.llm import LlmTasks
from agentkit.llm.client import cache_key
from agentkit.odygy.models import Transcript
from agentkit.redact import CARD_MARK, CODE_MARK
from agentkit.store.base import CachedAnswer
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import FakeLlm
from tests.llm.conftest import MakeTasks

SEGMENTS = ["My card number is 4929 7815", "3624 5819, and the CVV is", "739. Please call me back."]
SECRETS = ["4929", "7815", "3624", "5819", "739"]


class Triage(BaseModel):
    """What a voicemail asks for."""

    reason: str
    callback_number: str | None
    notes: list[str]


def transcript(*texts: str) -> Transcript:
    return Transcript(
        call_id="cal_1",
        language="en-US",
        segments=[{"t": 2.0 * i, "speaker": "caller", "text": t} for i, t in enumerate(texts)],
    )


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def key_of(request: dict[str, Any]) -> str:
    """The cache key of a recorded request, as the client computes it."""
    spec = request["response_format"]["json_schema"]
    return cache_key(request["model"], request["messages"], spec["name"], spec["schema"])


@pytest.mark.parametrize("number", ["+44 20 7946 0999", "+442079460999"])
async def test_repeated_card_and_code_reach_neither_cache_nor_caller(
    tasks: LlmTasks, fake_llm: FakeLlm, store: SqliteStore, number: str
) -> None:
    """A model repeating the card and code: the cache row and the answer hold neither."""
    fake_llm.reply({
        "reason": "Caller read card 4929 7815 3624 5819, CVV 739, wants a call back",
        "callback_number": number,
        "notes": ["card 4929781536245819", "the three digits on the back are 739"],
    })
    answer = await tasks.extract(Triage, transcript(*SEGMENTS))
    (request,) = fake_llm.requests
    assert leaked(json.dumps(request)) == []
    row = await store.cached_answer(key_of(request))
    assert row is not None
    assert leaked(row.answer) == []
    assert leaked(answer.model_dump_json()) == []
    assert answer.reason == f"Caller read card {CARD_MARK}, CVV {CODE_MARK}, wants a call back"
    assert answer.callback_number == number
    assert json.loads(row.answer)["callback_number"] == number


async def test_answer_with_nothing_to_mask_is_cached_as_it_came(
    tasks: LlmTasks, fake_llm: FakeLlm, store: SqliteStore
) -> None:
    """An answer without payment data is kept byte for byte."""
    said = "Order 48213 is late; call +442079460999."
    content = f'{{"summary":  "{said}"}}'
    fake_llm.reply(content)
    assert await tasks.summarise("Order 48213 is late.") == said
    row = await store.cached_answer(key_of(fake_llm.requests[-1]))
    assert row is not None and row.answer == content


async def test_unmasked_row_already_in_the_cache_is_masked_on_the_way_out(
    make_tasks: MakeTasks, fake_llm: FakeLlm, store: SqliteStore
) -> None:
    """A cached answer written before masking covered it comes back masked, without a request."""
    await make_tasks(cache=False).summarise("Please call me back.")
    (request,) = fake_llm.requests
    await store.cache_answer(CachedAnswer(
        key_of(request), "fake-model", '{"summary": "card 4929 7815 3624 5819, CVV 739"}', 1, 1
    ))
    summary = await make_tasks().summarise("Please call me back.")
    assert summary == f"card {CARD_MARK}, CVV {CODE_MARK}"
    assert len(fake_llm.requests) == 1


async def test_invalid_answer_echoed_in_the_reask_is_masked(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """An invalid answer repeating the card goes back to the model masked in the re-ask."""
    fake_llm.reply("The card is 4929 7815 3624 5819 and the CVV is 739.", {"summary": "ok"})
    assert await tasks.summarise("Please call me back.") == "ok"
    echoed = fake_llm.messages(1)[-2]
    assert echoed["role"] == "assistant"
    assert echoed["content"] == f"The card is {CARD_MARK} and the CVV is {CODE_MARK}."


async def test_nothing_of_the_card_is_logged(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """The log lines of a task whose answer repeats the card carry none of it."""
    fake_llm.reply("card 4929 7815 3624 5819, CVV 739", {"summary": "card 4929781536245819"})
    with structlog.testing.capture_logs() as logs:
        assert await tasks.summarise(transcript(*SEGMENTS)) == f"card {CARD_MARK}"
    assert logs and leaked(json.dumps(logs)) == []


async def test_variables_holding_lists_and_dicts_are_masked(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """Strings inside a list or a dict a bot passes to a template are masked too."""
    await tasks.summarise(
        "Please call me back.",
        guidance=["Earlier notes:", {"note": "card 4929 7815 3624 5819, CVV 739"}],
    )
    sent = json.dumps(fake_llm.requests[-1])
    assert leaked(sent) == [] and "Earlier notes:" in sent and CARD_MARK in sent
