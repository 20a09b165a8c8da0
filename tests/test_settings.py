"""Settings come from the environment once, with clear errors and secrets kept hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit import ConfigError, Settings
from agentkit.sim import SANDBOX_API_KEY

BASE = {"ODYGY_API_KEY": "ps_live_k_0123456789", "ODYGY_WEBHOOK_SECRET": "whsec_a,whsec_b"}


def test_reads_the_contract_variables() -> None:
    """Every contract variable is read, with several webhook secrets split on commas."""
    settings = Settings.from_env(
        {**BASE, "ODYGY_BASE_URL": "https://eu.api.odygy.com/v1/",
         "AGENTKIT_DATABASE_URL": "postgresql://localhost/agentkit", "AGENTKIT_DRY_RUN": "1",
         "AGENTKIT_MODEL": "llama3.1", "AGENTKIT_BUSINESS_HOURS": "always"},
        env_file=None,
    )
    assert settings.webhook_secrets == ("whsec_a", "whsec_b")
    assert settings.base_url == "https://eu.api.odygy.com/v1"
    assert settings.database_url.startswith("postgresql://")
    assert settings.dry_run is True
    assert settings.model == "llama3.1"
    assert settings.business_hours == "always"


def test_defaults() -> None:
    """Unset variables take the contract's defaults."""
    settings = Settings.from_env(BASE, env_file=None)
    assert settings.base_url == "https://api.odygy.com/v1"
    assert settings.database_url == "sqlite:///agentkit.db"
    assert settings.bots == "./bots"
    assert settings.dry_run is False
    assert settings.openai_api_key is None


def test_missing_key_and_secret_named_together() -> None:
    """Without the sandbox, a missing key and secret are both named in one error."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({}, env_file=None)
    assert "ODYGY_API_KEY" in str(caught.value)
    assert "ODYGY_WEBHOOK_SECRET" in str(caught.value)


def test_sandbox_needs_no_key() -> None:
    """In the sandbox the simulator's key and secret stand in."""
    settings = Settings.from_env({}, sandbox=True, env_file=None)
    assert settings.api_key == SANDBOX_API_KEY
    assert settings.webhook_secrets


@pytest.mark.parametrize(
    ("name", "value"),
    [("AGENTKIT_DATABASE_URL", "mysql://x"), ("ODYGY_BASE_URL", "api.odygy.com"),
     ("AGENTKIT_DRY_RUN", "maybe")],
)
def test_bad_values_refused(name: str, value: str) -> None:
    """A malformed value is a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**BASE, name: value}, env_file=None)


def test_env_file_adds_but_environment_wins(tmp_path: Path) -> None:
    """A .env file fills in what the environment lacks, never overriding it."""
    env_file = tmp_path / ".env"
    env_file.write_text("AGENTKIT_MODEL=from-file\nAGENTKIT_BOTS=from-file\n")
    settings = Settings.from_env({**BASE, "AGENTKIT_BOTS": "from-env"}, env_file=env_file)
    assert settings.model == "from-file"
    assert settings.bots == "from-env"


def test_secrets_hidden_in_repr() -> None:
    """No secret value appears in the settings' repr."""
    settings = Settings.from_env({**BASE, "OPENAI_API_KEY": "sk-secret-openai-key"},
                                 env_file=None)
    text = repr(settings)
    for secret in ("ps_live_k_0123456789", "whsec_a", "sk-secret-openai-key"):
        assert secret not in text
    assert set(settings.secret_values()) >= {"ps_live_k_0123456789", "sk-secret-openai-key"}
