"""One Settings object, read from the environment (and a .env file) once, at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from agentkit.errors import ConfigError
from agentkit.odygy.transport import DEFAULT_BASE_URL
from agentkit.sim.config import (
    SANDBOX_API_KEY,
    SANDBOX_DIAL_COUNTRIES,
    SANDBOX_WEBHOOK_SECRET,
)

DEFAULT_DATABASE_URL = "sqlite:///agentkit.db"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BUSINESS_HOURS = "Mon-Fri 09:00-17:30 Europe/Bucharest"
DEFAULT_DIAL_DAILY_MAX = 500
DEFAULT_RETENTION_DAYS = 90
# A webhook secret shorter than this (after a whsec_ prefix) can be guessed or was typed in.
MIN_SECRET_LENGTH = 24
# Secrets anyone can read in this repository: the sandbox's, and the examples in the docs.
PUBLISHED_SECRETS = frozenset({SANDBOX_WEBHOOK_SECRET, "whsec_new", "whsec_old"})
_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no", ""}


class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


def read_environment(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> dict[str, str]:
    """The process environment over the variables of ``env_file`` (if it exists)."""
    env: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    return env


@dataclass(frozen=True)
class Settings:
    """What agentkit is told by its environment; every variable is in docs/runtime.md."""

    api_key: Secret
    base_url: str = DEFAULT_BASE_URL
    webhook_secrets: tuple[Secret, ...] = ()
    database_url: str = DEFAULT_DATABASE_URL
    bots: str = "./bots"
    model: str = DEFAULT_MODEL
    openai_api_key: Secret | None = None
    openai_base_url: str | None = None
    slack_webhook_url: Secret | None = None
    teams_webhook_url: Secret | None = None
    dry_run: bool = False
    business_hours: str = DEFAULT_BUSINESS_HOURS
    sandbox: bool = False
    prompts: str | None = None
    dial_countries: frozenset[str] | None = None
    dial_daily_max: int = DEFAULT_DIAL_DAILY_MAX
    calls_paused: bool = False
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        sandbox: bool = False,
        env_file: str | Path | None = ".env",
    ) -> Settings:
        """Read the settings; raise ConfigError naming every variable that is wrong.

        Variables already in the environment win over those in ``env_file``.
        """
        env = read_environment(environ, env_file=env_file)

        problems: list[str] = []
        dry_run = _flag(env, "AGENTKIT_DRY_RUN", problems)
        paused = _flag(env, "AGENTKIT_CALLS_PAUSED", problems)
        # --sandbox also starts the embedded simulator; AGENTKIT_SANDBOX=1 is for a
        # deployment whose API is a simulator started apart (the compose sandbox profile).
        sandbox_variable = _flag(env, "AGENTKIT_SANDBOX", problems)
        sandbox = sandbox or sandbox_variable
        api_key = env.get("ODYGY_API_KEY", "").strip()
        secrets = [s.strip() for s in env.get("ODYGY_WEBHOOK_SECRET", "").split(",") if s.strip()]
        base_url = env.get("ODYGY_BASE_URL", DEFAULT_BASE_URL).strip().rstrip("/")
        if sandbox:
            api_key = api_key or SANDBOX_API_KEY
            secrets = secrets or [SANDBOX_WEBHOOK_SECRET]
            if sandbox_variable and _is_odygy(base_url):
                problems.append(
                    "AGENTKIT_SANDBOX=1 is for a deployment whose API is the simulator, but "
                    f"ODYGY_BASE_URL is phone.systems itself ({base_url}): remove "
                    "AGENTKIT_SANDBOX, or point ODYGY_BASE_URL at the simulator"
                )
        else:
            problems += _credential_problems(api_key, secrets)
        if not base_url.startswith(("https://", "http://")):
            problems.append(f"ODYGY_BASE_URL must be an http(s) URL, not {base_url!r}")
        database_url = env.get("AGENTKIT_DATABASE_URL", DEFAULT_DATABASE_URL).strip()
        if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            problems.append(
                "AGENTKIT_DATABASE_URL must be sqlite:///path.db or postgresql://..., "
                f"not {database_url!r}"
            )
        dial_countries = _regions(env.get("AGENTKIT_DIAL_COUNTRIES", ""), problems)
        if dial_countries is None and sandbox:
            dial_countries = SANDBOX_DIAL_COUNTRIES
        daily_max = _count(env, "AGENTKIT_DIAL_DAILY_MAX", DEFAULT_DIAL_DAILY_MAX, 0, problems)
        retention = _count(env, "AGENTKIT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1, problems)
        if problems:
            raise ConfigError("agentkit is not configured: " + "; ".join(problems))

        def optional(name: str) -> Secret | None:
            value = env.get(name, "").strip()
            return Secret(value) if value else None

        return cls(
            api_key=Secret(api_key),
            base_url=base_url,
            webhook_secrets=tuple(Secret(s) for s in secrets),
            database_url=database_url,
            bots=env.get("AGENTKIT_BOTS", "./bots").strip() or "./bots",
            model=env.get("AGENTKIT_MODEL", DEFAULT_MODEL).strip() or DEFAULT_MODEL,
            openai_api_key=optional("OPENAI_API_KEY"),
            openai_base_url=env.get("OPENAI_BASE_URL", "").strip() or None,
            slack_webhook_url=optional("SLACK_WEBHOOK_URL"),
            teams_webhook_url=optional("TEAMS_WEBHOOK_URL"),
            dry_run=dry_run,
            # The sandbox is for trying things now: it never waits for office hours.
            business_hours=env.get("AGENTKIT_BUSINESS_HOURS", "").strip()
            or ("always" if sandbox else DEFAULT_BUSINESS_HOURS),
            sandbox=sandbox,
            prompts=env.get("AGENTKIT_PROMPTS", "").strip() or None,
            dial_countries=dial_countries,
            dial_daily_max=daily_max,
            calls_paused=paused,
            retention_days=retention,
        )

    def secret_values(self) -> list[str]:
        """Every secret value, for the log redactor to mask."""
        values: list[str] = [self.api_key, *self.webhook_secrets]
        for optional in (self.openai_api_key, self.slack_webhook_url, self.teams_webhook_url):
            if optional:
                values.append(optional)
        return [v for v in values if v]


def _flag(env: Mapping[str, str], name: str, problems: list[str]) -> bool:
    raw = env.get(name, "0").strip().lower()
    if raw not in _TRUE | _FALSE:
        problems.append(f"{name} must be 0 or 1, not {raw!r}")
    return raw in _TRUE


def _count(env: Mapping[str, str], name: str, default: int, least: int,
           problems: list[str]) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < least:
        problems.append(f"{name} must be a whole number, {least} or more, not {raw!r}")
        return default
    return int(raw)


def _regions(raw: str, problems: list[str]) -> frozenset[str] | None:
    """AGENTKIT_DIAL_COUNTRIES as region codes; None when unset (the account's country)."""
    import phonenumbers

    names = {part.strip().upper() for part in raw.split(",") if part.strip()}
    if not names:
        return None
    known = phonenumbers.SUPPORTED_REGIONS | {phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY}
    unknown = sorted(names - known)
    if unknown:
        problems.append(
            f"AGENTKIT_DIAL_COUNTRIES has unknown region codes {', '.join(unknown)}: use ISO "
            "3166 codes as libphonenumber does (GB, RO, US; 001 for non-geographic numbers)"
        )
    return frozenset(names & known)


def _is_odygy(base_url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(base_url).hostname or "").lower()
    return host == "odygy.com" or host.endswith(".odygy.com")


def _credential_problems(api_key: str, secrets: list[str]) -> list[str]:
    """Missing, published or guessable credentials, outside sandbox mode."""
    problems: list[str] = []
    if not api_key:
        problems.append("ODYGY_API_KEY is not set: give the API key from the admin console")
    elif api_key == SANDBOX_API_KEY:
        problems.append(
            "ODYGY_API_KEY is the sandbox's published key: give your account's key "
            "(phone.systems admin console, API keys), or run with --sandbox"
        )
    if not secrets:
        problems.append(
            "ODYGY_WEBHOOK_SECRET is not set: give the webhook endpoint's secret "
            "(several, comma-separated, during a rotation)"
        )
    where = ("the secret phone.systems showed when the webhook endpoint was created "
             "(POST /v1/webhooks; create a new endpoint if it is lost)")
    for position, secret in enumerate(secrets, start=1):
        which = f"ODYGY_WEBHOOK_SECRET (secret {position})" if len(secrets) > 1 else \
            "ODYGY_WEBHOOK_SECRET"
        if secret in PUBLISHED_SECRETS:
            problems.append(
                f"{which} is published in agentkit's repository, so anyone can sign "
                f"webhooks with it: give {where}, or run with --sandbox"
            )
        elif len(secret.removeprefix("whsec_")) < MIN_SECRET_LENGTH:
            problems.append(
                f"{which} is too short to be safe ({len(secret.removeprefix('whsec_'))} "
                f"characters; at least {MIN_SECRET_LENGTH} after whsec_): give {where}"
            )
    return problems
