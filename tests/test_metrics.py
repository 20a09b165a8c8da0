"""Prometheus metrics: model calls, tokens, cost, fallbacks, API errors and notifications."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agentkit.actions.notify import ChatMessage, Notifier, WebhookChannel
from agentkit.errors import NotFoundError
from agentkit.llm import LlmClient, LlmConfig, LlmError, LlmInvalidAnswer, LlmTasks, PromptLibrary
from agentkit.llm.prompts import DEFAULT_TEMPLATES
from agentkit.metrics import Metrics
from agentkit.odygy import OdygyClient
from agentkit.service import RunOptions, Service
from agentkit.settings import Secret, Settings
from agentkit.sim import Simulator
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import FakeLlm
from agentkit.testing.recorder import HttpRecorder

DOCS = Path(__file__).resolve().parents[1] / "docs" / "runtime.md"
MESSAGE = ChatMessage(title="Callback requested", text="Invoice 4011.")


@pytest.fixture
def metrics() -> Metrics:
    """A fresh registry for one test."""
    return Metrics()


@pytest.fixture
async def llm(
    fake_llm: FakeLlm, metrics: Metrics, tmp_path: Path
) -> AsyncIterator[LlmTasks]:
    """Tasks on a client of the fake model that reports to ``metrics``, with a real cache."""
    store = SqliteStore(tmp_path / "cache.db")
    await store.open()
    config = fake_llm.llm_config(max_retries=0, prices={"fake-model": (1.0, 4.0)})
    async with LlmClient(config, store, metrics=metrics) as client:
        yield LlmTasks(client, PromptLibrary([DEFAULT_TEMPLATES]))
    await store.close()


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# the model


async def test_answer_counts_as_ok(llm: LlmTasks, fake_llm: FakeLlm, metrics: Metrics) -> None:
    """A valid answer from the model counts one ok call of its task."""
    fake_llm.reply({"summary": "wants a callback"})
    await llm.summarise("please call me back")
    assert value(metrics, "agentkit_llm_calls_total", task="summarise", outcome="ok") == 1


async def test_tokens_and_cost_are_added_by_model(
    llm: LlmTasks, fake_llm: FakeLlm, metrics: Metrics
) -> None:
    """An answer adds its prompt and completion tokens, and their list price, to its model."""
    fake_llm.usage = (1000, 250)
    await llm.summarise("please call me back")
    assert value(metrics, "agentkit_llm_tokens_total", model="fake-model", kind="prompt") == 1000
    assert value(metrics, "agentkit_llm_tokens_total",
                 model="fake-model", kind="completion") == 250
    assert value(metrics, "agentkit_llm_cost_usd_total", model="fake-model") == pytest.approx(
        (1000 * 1.0 + 250 * 4.0) / 1_000_000
    )


async def test_cached_answer_counts_as_cached_without_tokens(
    llm: LlmTasks, fake_llm: FakeLlm, metrics: Metrics
) -> None:
    """The same question again is a cached call, and adds no tokens."""
    fake_llm.usage = (100, 10)
    await llm.summarise("please call me back")
    await llm.summarise("please call me back")
    assert value(metrics, "agentkit_llm_calls_total", task="summarise", outcome="cached") == 1
    assert value(metrics, "agentkit_llm_tokens_total", model="fake-model", kind="prompt") == 100


async def test_answer_that_does_not_fit_counts_as_invalid(
    llm: LlmTasks, fake_llm: FakeLlm, metrics: Metrics
) -> None:
    """An answer that misses the schema counts as invalid, and the re-ask's answer as ok."""
    fake_llm.reply({"label": "nope", "confidence": 0.5, "reason": "r"},
                   {"label": "billing", "confidence": 0.5, "reason": "r"})
    await llm.classify("my invoice", ["billing", "sales"])
    assert value(metrics, "agentkit_llm_calls_total", task="classify", outcome="invalid") == 1
    assert value(metrics, "agentkit_llm_calls_total", task="classify", outcome="ok") == 1


async def test_failed_call_counts_as_error(
    llm: LlmTasks, fake_llm: FakeLlm, metrics: Metrics
) -> None:
    """A model server that fails counts an error call."""
    fake_llm.fail_next(1, status=500)
    with pytest.raises(LlmError):
        await llm.decide(["call back", "ignore"], "hello")
    assert value(metrics, "agentkit_llm_calls_total", task="decide", outcome="error") == 1


async def test_fallback_counts_its_reason(
    llm: LlmTasks, fake_llm: FakeLlm, metrics: Metrics
) -> None:
    """A handler that falls back after two answers that do not fit counts an invalid_answer."""
    fake_llm.reply("not json", "still not json")
    with pytest.raises(LlmInvalidAnswer) as caught:
        await llm.summarise("hello")
    llm.count_fallback(caught.value)
    assert value(metrics, "agentkit_llm_fallbacks_total", reason="invalid_answer") == 1


async def test_fallback_without_a_model_counts_no_model(metrics: Metrics) -> None:
    """With no model configured, a fallback counts as no_model."""
    async with LlmClient(LlmConfig(model="gpt-4o-mini"), metrics=metrics) as client:
        tasks = LlmTasks(client, PromptLibrary([DEFAULT_TEMPLATES]))
        with pytest.raises(LlmError) as caught:
            await tasks.summarise("hello")
        tasks.count_fallback(caught.value)
    assert value(metrics, "agentkit_llm_fallbacks_total", reason="no_model") == 1


async def test_tasks_without_metrics_count_nothing(fake_llm: FakeLlm) -> None:
    """A client built without metrics answers, and a fallback on it is a no-op."""
    async with LlmClient(fake_llm.llm_config()) as client:
        tasks = LlmTasks(client, PromptLibrary([DEFAULT_TEMPLATES]))
        fake_llm.reply({"summary": "fine"})
        assert await tasks.summarise("hello") == "fine"
        tasks.count_fallback(LlmError("the model failed"))


# the phone.systems client


async def test_api_error_counts_its_status(sim: Simulator, metrics: Metrics) -> None:
    """An API answer of 404 counts once under its status; a 200 counts nothing."""
    async with OdygyClient(api_key=sim.api_key, base_url=sim.base_url, metrics=metrics) as api:
        with pytest.raises(NotFoundError):
            await api.calls.retrieve("cal_missing")
        await api.account.retrieve()
    errors = [s for s in metrics.api_errors.collect()[0].samples if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in errors] == [({"status": "404"}, 1.0)]


def test_status_out_of_range_is_one_label(metrics: Metrics) -> None:
    """A status no HTTP server should send counts under "other", not a label of its own."""
    metrics.api_error(999)
    assert value(metrics, "agentkit_api_errors_total", status="other") == 1


# notifications


async def test_notifications_count_sent_and_failed(
    recorder: HttpRecorder, metrics: Metrics
) -> None:
    """A message a channel took counts as sent; one it refused counts as failed."""
    notifier = Notifier([WebhookChannel(recorder.url + "/chat", name="chat")], metrics=metrics)
    await notifier.send(MESSAGE)
    recorder.fail_next(1, status=400)
    await notifier.send(MESSAGE)
    assert value(metrics, "agentkit_notifications_total", channel="chat", outcome="sent") == 1
    assert value(metrics, "agentkit_notifications_total", channel="chat", outcome="failed") == 1


# the process


async def test_service_serves_what_its_parts_count(
    sim: Simulator, fake_llm: FakeLlm, recorder: HttpRecorder, tmp_path: Path
) -> None:
    """agentkit run hands its metrics to the API client, the model client and the notifier."""
    settings = Settings(
        api_key=Secret(sim.api_key), base_url=sim.base_url,
        webhook_secrets=(Secret("whsec_" + "m" * 32),),
        database_url=f"sqlite:///{tmp_path / 'agentkit.db'}",
        model=fake_llm.model, openai_base_url=fake_llm.base_url,
        slack_webhook_url=Secret(recorder.url + "/slack"),
    )
    service = Service(settings, RunOptions(port=0), bots=[])
    await service.start()
    try:
        assert service.client is not None and service.environment is not None
        assert service.server is not None
        with pytest.raises(NotFoundError):
            await service.client.calls.retrieve("cal_missing")
        await LlmTasks(service.environment.llm, service.environment.prompts).summarise("hi")
        await service.environment.alert(MESSAGE)
        async with httpx.AsyncClient(base_url=service.server.url) as http:
            page = (await http.get("/metrics")).text
    finally:
        await service.stop()
    assert 'agentkit_api_errors_total{status="404"} 1.0' in page
    assert 'agentkit_llm_calls_total{outcome="ok",task="summarise"} 1.0' in page
    assert 'agentkit_notifications_total{channel="slack",outcome="sent"} 1.0' in page


def test_every_metric_is_documented(metrics: Metrics) -> None:
    """Each metric in the registry is named in docs/runtime.md."""
    documented = set(re.findall(r"`(agentkit_[a-z_]+)", DOCS.read_text()))
    names = {family.name for family in metrics.registry.collect()}
    counters = {f.name for f in metrics.registry.collect() if f.type == "counter"}
    exposed = {name + "_total" if name in counters else name for name in names}
    assert exposed - documented == set()
