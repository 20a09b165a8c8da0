"""Settings come from the environment once, with clear errors and secrets kept hidden."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentkit import ConfigError, Settings
from agentkit.settings import PUBLISHED_SECRETS, Secret, environment_variables
from agentkit.sim import SANDBOX_API_KEY, SANDBOX_DIAL_COUNTRIES, SANDBOX_WEBHOOK_SECRET

SECRET_A = "whsec_" + "a" * 32
SECRET_B = "whsec_" + "b" * 32
BASE = {"ODYGY_API_KEY": "ps_live_k_0123456789", "ODYGY_WEBHOOK_SECRET": f"{SECRET_A},{SECRET_B}"}
ROOT = Path(__file__).resolve().parents[1]


def test_reads_the_contract_variables() -> None:
    """Every contract variable is read, with several webhook secrets split on commas."""
    settings = Settings.from_env(
        {**BASE, "ODYGY_BASE_URL": "https://eu.api.odygy.com/v1/",
         "AGENTKIT_DATABASE_URL": "postgresql://localhost/agentkit", "AGENTKIT_DRY_RUN": "1",
         "AGENTKIT_MODEL": "llama3.1", "AGENTKIT_BUSINESS_HOURS": "always"},
        env_file=None,
    )
    assert settings.webhook_secrets == (SECRET_A, SECRET_B)
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
     ("AGENTKIT_DRY_RUN", "maybe"), ("AGENTKIT_DIAL_COUNTRIES", "GB,UK"),
     ("AGENTKIT_DIAL_DAILY_MAX", "-1"), ("AGENTKIT_DIAL_DAILY_MAX", "lots"),
     ("AGENTKIT_RETENTION_DAYS", "0"), ("AGENTKIT_CALLS_PAUSED", "maybe"),
     ("AGENTKIT_SANDBOX", "perhaps"), ("AGENTKIT_TIME_ZONE", "Europe/Bucharst")],
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
    for secret in ("ps_live_k_0123456789", SECRET_A, "sk-secret-openai-key"):
        assert secret not in text
    assert set(settings.secret_values()) >= {"ps_live_k_0123456789", "sk-secret-openai-key"}


def test_dialling_defaults() -> None:
    """Outside the sandbox: the account's country only, 500 calls a day, calls not paused."""
    settings = Settings.from_env(BASE, env_file=None)
    assert settings.dial_countries is None
    assert settings.dial_daily_max == 500
    assert settings.calls_paused is False
    assert settings.retention_days == 90


def test_dialling_variables_are_read() -> None:
    """Dial countries are upper-cased region codes; the limits and switches are read."""
    settings = Settings.from_env(
        {**BASE, "AGENTKIT_DIAL_COUNTRIES": "gb, ro ,GG", "AGENTKIT_DIAL_DAILY_MAX": "20",
         "AGENTKIT_CALLS_PAUSED": "1", "AGENTKIT_RETENTION_DAYS": "7",
         "AGENTKIT_PROMPTS": "/srv/app/prompts"},
        env_file=None,
    )
    assert settings.dial_countries == frozenset({"GB", "RO", "GG"})
    assert (settings.dial_daily_max, settings.calls_paused, settings.retention_days) == (
        20, True, 7)
    assert settings.prompts == "/srv/app/prompts"


def test_sandbox_dials_its_demo_countries() -> None:
    """The sandbox's account is Romanian with London callers: both are allowed by default."""
    assert Settings.from_env({}, sandbox=True, env_file=None).dial_countries == (
        SANDBOX_DIAL_COUNTRIES)


@pytest.mark.parametrize("secret", sorted(PUBLISHED_SECRETS))
def test_published_webhook_secrets_are_refused(secret: str) -> None:
    """A secret anyone can read in the repository is refused outside the sandbox."""
    with pytest.raises(ConfigError, match="published") as caught:
        Settings.from_env({**BASE, "ODYGY_WEBHOOK_SECRET": secret}, env_file=None)
    assert "POST /v1/webhooks" in str(caught.value)


@pytest.mark.parametrize("secret", ["whsec_short", "whsec_" + "x" * 23, "x" * 23])
def test_short_webhook_secrets_are_refused(secret: str) -> None:
    """A secret under 24 characters (after whsec_) is refused, even beside a good one."""
    with pytest.raises(ConfigError, match="too short"):
        Settings.from_env({**BASE, "ODYGY_WEBHOOK_SECRET": f"{SECRET_A},{secret}"},
                          env_file=None)


def test_secret_of_24_characters_is_taken() -> None:
    """24 characters after the prefix is enough."""
    secret = "whsec_" + "k" * 24
    assert Settings.from_env({**BASE, "ODYGY_WEBHOOK_SECRET": secret},
                             env_file=None).webhook_secrets == (secret,)


def test_sandbox_api_key_is_refused_outside_the_sandbox() -> None:
    """The sandbox's published API key is refused outside the sandbox."""
    with pytest.raises(ConfigError, match="sandbox's published key"):
        Settings.from_env({**BASE, "ODYGY_API_KEY": SANDBOX_API_KEY}, env_file=None)


def test_sandbox_variable_takes_the_sandbox_credentials() -> None:
    """AGENTKIT_SANDBOX=1 (a simulator started apart) accepts the sandbox's key and secret."""
    settings = Settings.from_env(
        {"AGENTKIT_SANDBOX": "1", "ODYGY_API_KEY": SANDBOX_API_KEY,
         "ODYGY_WEBHOOK_SECRET": SANDBOX_WEBHOOK_SECRET, "ODYGY_BASE_URL": "http://sim:8081/v1"},
        env_file=None,
    )
    assert settings.sandbox is True


def test_sandbox_variable_with_the_real_api_is_refused() -> None:
    """AGENTKIT_SANDBOX=1 pointed at phone.systems itself is a mistake, refused."""
    with pytest.raises(ConfigError, match="AGENTKIT_SANDBOX=1"):
        Settings.from_env({"AGENTKIT_SANDBOX": "1"}, env_file=None)


def test_every_secret_shown_in_the_repository_is_known_as_published() -> None:
    """Each whsec_ value in the docs, .env.example and compose file is in PUBLISHED_SECRETS."""
    places = [ROOT / "README.md", ROOT / ".env.example", ROOT / "docker-compose.yml",
              *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*.yaml"))]
    shown = {match for place in places
             for match in re.findall(r"whsec_[A-Za-z0-9_]+", place.read_text())}
    assert shown, "the scan found no secrets at all: it is looking in the wrong places"
    long_enough = {s for s in shown if len(s.removeprefix("whsec_")) >= 24}
    assert long_enough <= PUBLISHED_SECRETS


def test_every_problem_is_named_at_once() -> None:
    """A malformed variable and missing credentials are reported together, in one ConfigError."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AGENTKIT_RETENTION_DAYS": "soon"}, env_file=None)
    for name in ("AGENTKIT_RETENTION_DAYS", "ODYGY_API_KEY", "ODYGY_WEBHOOK_SECRET"):
        assert name in str(caught.value)


def test_blank_variable_counts_as_unset() -> None:
    """A variable set to blanks takes its default."""
    settings = Settings.from_env({**BASE, "ODYGY_BASE_URL": "  ", "AGENTKIT_MODEL": ""},
                                 env_file=None)
    assert (settings.base_url, settings.model) == ("https://api.odygy.com/v1", "gpt-4o-mini")


def test_constructor_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings(...) takes only the values given; from_env is what reads the environment."""
    monkeypatch.setenv("AGENTKIT_MODEL", "from-the-environment")
    assert Settings(api_key=Secret("k")).model == "gpt-4o-mini"


# --- the list of variables ------------------------------------------------------------

def test_each_variable_is_listed_once_with_a_description() -> None:
    """environment_variables() names one variable per setting, each with a one-line description."""
    variables = environment_variables()
    assert len({v.name for v in variables}) == len(variables) == len(Settings.model_fields)
    assert all(v.description and "\n" not in v.description for v in variables)


def test_secret_variables_are_marked() -> None:
    """The credentials and webhook URLs, and nothing else, are marked secret."""
    assert {v.name for v in environment_variables() if v.secret} == {
        "ODYGY_API_KEY", "ODYGY_WEBHOOK_SECRET", "OPENAI_API_KEY", "SLACK_WEBHOOK_URL",
        "TEAMS_WEBHOOK_URL", "AGENTKIT_CONSOLE_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET",
        "AGENTKIT_SHADOW_CHANNEL"}


def test_listed_defaults_are_the_values_read() -> None:
    """Each listed default is what from_env gives when its variable is unset."""
    settings = Settings.from_env(BASE, env_file=None)
    attribute = {field.validation_alias: name for name, field in Settings.model_fields.items()}
    for variable in environment_variables():
        if variable.default:
            value = getattr(settings, str(attribute[variable.name]))
            shown = ("1" if value else "0") if isinstance(value, bool) else str(value)
            assert variable.default == shown, variable.name


def runtime_settings_table() -> dict[str, str]:
    """docs/runtime.md's settings table: each variable named in it, and its row's defaults."""
    text = (ROOT / "docs" / "runtime.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            rows.update({name: cells[2] for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])})
    return rows


def test_runtime_docs_list_exactly_the_variables() -> None:
    """docs/runtime.md's settings table names every variable agentkit reads, and no other."""
    assert set(runtime_settings_table()) == {v.name for v in environment_variables()}


def test_runtime_docs_show_each_default() -> None:
    """Each default in docs/runtime.md's settings table is the one agentkit uses."""
    table = runtime_settings_table()
    for variable in environment_variables():
        if variable.default:
            assert f"`{variable.default}`" in table[variable.name], variable.name
