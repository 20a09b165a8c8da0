"""When the model is missing or failing: what is retried, and what a bot gets to fall back on."""

from __future__ import annotations

import pytest

from agentkit.llm import (
    LlmClient,
    LlmConfig,
    LlmRequestError,
    LlmTasks,
    LlmUnavailable,
    PromptLibrary,
)
from agentkit.odygy.models import CallAi
from agentkit.testing import FakeLlm
from tests.llm.conftest import MakeTasks


async def test_no_model_configured_raises_without_a_request(
    prompts: PromptLibrary, fake_llm: FakeLlm
) -> None:
    """With neither an API key nor a base URL, a task raises LlmUnavailable and sends nothing."""
    client = LlmClient(LlmConfig(model="gpt-4o-mini"))
    assert not client.config.enabled
    with pytest.raises(LlmUnavailable, match="no model is configured: set OPENAI_API_KEY"):
        await LlmTasks(client, prompts).summarise("hello")
    with pytest.raises(LlmUnavailable):
        await LlmTasks(None, prompts, model="gpt-4o-mini").classify("hello", ["a"])
    assert fake_llm.requests == []


async def test_server_error_is_retried(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """A 500 is retried by the client, and the answer after it is used."""
    fake_llm.fail_next(1, status=500)
    fake_llm.reply({"summary": "after a retry"})
    assert await tasks.summarise("hello") == "after a retry"
    assert len(fake_llm.requests) == 2


async def test_persistent_server_error_is_unavailable(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """500s past the retries raise LlmUnavailable carrying the status."""
    fake_llm.fail_next(5, status=503)
    with pytest.raises(LlmUnavailable, match="failed") as caught:
        await tasks.summarise("hello")
    assert caught.value.status == 503
    assert len(fake_llm.requests) == 2  # the first try and one retry


async def test_rate_limit_past_retries_is_unavailable(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """429s past the retries raise LlmUnavailable."""
    fake_llm.fail_next(5, status=429)
    with pytest.raises(LlmUnavailable, match="rate-limiting"):
        await tasks.summarise("hello")


async def test_hang_past_the_timeout_is_unavailable(
    make_tasks: MakeTasks, fake_llm: FakeLlm
) -> None:
    """A server that does not answer within the timeout raises LlmUnavailable."""
    tasks = make_tasks(timeout=0.3, max_retries=0)
    fake_llm.hang_next(1, seconds=10)
    with pytest.raises(LlmUnavailable, match=r"did not answer within 0\.3 s"):
        await tasks.summarise("hello")


async def test_rejected_key_is_unavailable_without_retry(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """A 401 raises LlmUnavailable naming OPENAI_API_KEY, and is not retried."""
    fake_llm.fail_next(1, status=401)
    with pytest.raises(LlmUnavailable, match="OPENAI_API_KEY"):
        await tasks.summarise("hello")
    assert len(fake_llm.requests) == 1


async def test_unknown_model_is_unavailable(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """A 404 raises LlmUnavailable naming AGENTKIT_MODEL."""
    fake_llm.fail_next(1, status=404)
    with pytest.raises(LlmUnavailable, match="AGENTKIT_MODEL"):
        await tasks.summarise("hello")


async def test_refused_request_is_a_request_error(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """A 400 raises LlmRequestError, not retried: asking again would not help."""
    fake_llm.fail_next(1, status=400)
    with pytest.raises(LlmRequestError):
        await tasks.summarise("hello")
    assert len(fake_llm.requests) == 1


async def test_unreachable_server_is_unavailable(prompts: PromptLibrary) -> None:
    """A base URL where nothing listens raises LlmUnavailable naming OPENAI_BASE_URL."""
    async with FakeLlm() as fake:
        config = fake.llm_config(max_retries=0)
    async with LlmClient(config) as client:
        with pytest.raises(LlmUnavailable, match="OPENAI_BASE_URL"):
            await LlmTasks(client, prompts).summarise("hello")


# phone.systems' own call AI


async def test_platform_summary_is_used(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """A platform summary is returned without asking the model."""
    ai = CallAi(summary="Caller wants a refund.", sentiment="negative")
    assert await tasks.summarise("hello", platform=ai) == "Caller wants a refund."
    assert fake_llm.requests == []


async def test_platform_summary_can_be_declined(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """With use_platform false the model is asked even when a platform summary exists."""
    fake_llm.reply({"summary": "ours"})
    ai = CallAi(summary="theirs")
    assert await tasks.summarise("hello", platform=ai, use_platform=False) == "ours"


async def test_platform_label_is_used(tasks: LlmTasks, fake_llm: FakeLlm) -> None:
    """A platform label among the labels is returned, in the labels' spelling, without a request."""
    result = await tasks.classify("hello", ["positive", "negative"], platform_label="Negative")
    assert (result.label, result.confidence) == ("negative", 1.0)
    assert fake_llm.requests == []


async def test_platform_label_outside_labels_asks_the_model(
    tasks: LlmTasks, fake_llm: FakeLlm
) -> None:
    """A platform label that is not one of the labels is ignored and the model is asked."""
    await tasks.classify("hello", ["billing", "delivery"], platform_label="negative")
    assert len(fake_llm.requests) == 1
