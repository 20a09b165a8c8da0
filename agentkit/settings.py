"""One Settings object, read from the environment (and a .env file) once, at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from agentkit.errors import ConfigError
from agentkit.odygy.transport import DEFAULT_BASE_URL
from agentkit.sim.config import SANDBOX_API_KEY, SANDBOX_WEBHOOK_SECRET

DEFAULT_DATABASE_URL = "sqlite:///agentkit.db"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BUSINESS_HOURS = "Mon-Fri 09:00-17:30 Europe/Bucharest"


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
    """What agentkit is told by its environment; see CONTRACT.md section 1."""

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
        api_key = env.get("ODYGY_API_KEY", "").strip()
        secrets = [s.strip() for s in env.get("ODYGY_WEBHOOK_SECRET", "").split(",") if s.strip()]
        if sandbox:
            api_key = api_key or SANDBOX_API_KEY
            secrets = secrets or [SANDBOX_WEBHOOK_SECRET]
        else:
            if not api_key:
                problems.append("ODYGY_API_KEY is not set: give the API key from the admin console")
            if not secrets:
                problems.append(
                    "ODYGY_WEBHOOK_SECRET is not set: give the webhook endpoint's secret "
                    "(several, comma-separated, during a rotation)"
                )
        base_url = env.get("ODYGY_BASE_URL", DEFAULT_BASE_URL).strip().rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            problems.append(f"ODYGY_BASE_URL must be an http(s) URL, not {base_url!r}")
        database_url = env.get("AGENTKIT_DATABASE_URL", DEFAULT_DATABASE_URL).strip()
        if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            problems.append(
                "AGENTKIT_DATABASE_URL must be sqlite:///path.db or postgresql://..., "
                f"not {database_url!r}"
            )
        dry_run_raw = env.get("AGENTKIT_DRY_RUN", "0").strip().lower()
        if dry_run_raw not in {"0", "1", "true", "false", "yes", "no", ""}:
            problems.append(f"AGENTKIT_DRY_RUN must be 0 or 1, not {dry_run_raw!r}")
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
            dry_run=dry_run_raw in {"1", "true", "yes"},
            # The sandbox is for trying things now: it never waits for office hours.
            business_hours=env.get("AGENTKIT_BUSINESS_HOURS", "").strip()
            or ("always" if sandbox else DEFAULT_BUSINESS_HOURS),
            sandbox=sandbox,
        )

    def secret_values(self) -> list[str]:
        """Every secret value, for the log redactor to mask."""
        values: list[str] = [self.api_key, *self.webhook_secrets]
        for optional in (self.openai_api_key, self.slack_webhook_url, self.teams_webhook_url):
            if optional:
                values.append(optional)
        return [v for v in values if v]
