"""LlmConfig: from the settings, whether a model is configured, and prices."""

from __future__ import annotations

import pytest

from agentkit.llm import LlmConfig
from agentkit.llm.usage import price_of
from agentkit.settings import Settings


def settings(**env: str) -> Settings:
    base = {"ODYGY_API_KEY": "k", "ODYGY_WEBHOOK_SECRET": "whsec_test_secret_1234567890abcdef"}
    return Settings.from_env({**base, **env}, env_file=None)


def test_no_key_and_no_url_means_no_model() -> None:
    """Without OPENAI_API_KEY or OPENAI_BASE_URL, no model is configured."""
    assert not LlmConfig.from_settings(settings()).enabled


def test_a_local_server_needs_no_key() -> None:
    """OPENAI_BASE_URL alone configures a model (a local server)."""
    config = LlmConfig.from_settings(
        settings(OPENAI_BASE_URL="http://127.0.0.1:11434/v1", AGENTKIT_MODEL="llama3.1")
    )
    assert config.enabled and config.model == "llama3.1" and config.api_key is None


def test_the_key_never_shows_in_repr() -> None:
    """The API key is left out of the config's repr."""
    config = LlmConfig.from_settings(settings(OPENAI_API_KEY="sk-very-secret"))
    assert config.enabled and config.api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(config)


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("gpt-4o-mini", (0.15, 0.60)),
        ("gpt-4o-mini-2024-07-18", (0.15, 0.60)),
        ("gpt-4o-2024-08-06", (2.50, 10.00)),
        ("llama3.1:8b", (0.0, 0.0)),
    ],
)
def test_prices_follow_dated_names(model: str, price: tuple[float, float]) -> None:
    """A dated model name costs what its base name costs; an unknown model costs nothing."""
    assert price_of(model, LlmConfig(model=model).prices) == price


def test_cost_is_per_million_tokens() -> None:
    """Cost is tokens times the price per million, input and output apart."""
    config = LlmConfig(model="m", prices={"m": (1.0, 4.0)})
    assert config.cost("m", 500_000, 250_000) == pytest.approx(1.5)
