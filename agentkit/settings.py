"""One Settings object, read from the environment (and a .env file) once, at start-up.

Each variable is declared once, as a field of ``Settings``: its name, default,
description and validation. ``environment_variables()`` lists them, for
``agentkit run --help`` and the docs.
"""

from __future__ import annotations

import os
import typing
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotated_types import Ge
from dotenv import dotenv_values
from pydantic import Field, GetCoreSchemaHandler, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema, ErrorDetails, core_schema
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agentkit.approvals.rules import APPROVAL_RULES, DEFAULT_APPROVAL_TIMEOUT
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
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
# A webhook secret shorter than this (after a whsec_ prefix) can be guessed or was typed in.
MIN_SECRET_LENGTH = 24
# Secrets anyone can read in this repository: the sandbox's, and the examples in the docs.
PUBLISHED_SECRETS = frozenset({SANDBOX_WEBHOOK_SECRET, "whsec_new", "whsec_old"})
_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no", ""}


class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


@dataclass(frozen=True)
class EnvironmentVariable:
    """One variable agentkit reads: its name, default (as text; "" for none), what it sets."""

    name: str
    default: str
    description: str
    secret: bool


def read_environment(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> dict[str, str]:
    """The process environment over the variables of ``env_file`` (if it exists)."""
    env: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    return env


def _setting(name: str, default: Any, description: str, **constraints: Any) -> Any:
    return Field(default, validation_alias=name, description=description, **constraints)


class Settings(BaseSettings):
    """What agentkit is told by its environment: read it with ``Settings.from_env``.

    ``Settings(...)`` takes only the values it is given (tests build it so);
    ``environment_variables()`` lists every variable, as does docs/runtime.md.
    """

    model_config = SettingsConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, extra="forbid",
    )

    api_key: Secret = _setting(
        "ODYGY_API_KEY", Secret(""),
        "the phone.systems API key (admin console, API keys); required outside sandbox mode")
    base_url: str = _setting("ODYGY_BASE_URL", DEFAULT_BASE_URL,
                             "the phone.systems API, ending in /v1")
    webhook_secrets: tuple[Secret, ...] = _setting(
        "ODYGY_WEBHOOK_SECRET", (),
        "the webhook endpoint's secret, several comma-separated during a rotation; required "
        "outside sandbox mode")
    database_url: str = _setting(
        "AGENTKIT_DATABASE_URL", DEFAULT_DATABASE_URL,
        "the store: sqlite:///path.db (one process) or postgresql://...")
    bots: str = _setting("AGENTKIT_BOTS", "./bots",
                         "the folder of bot modules, or a dotted module; --bots wins")
    model: str = _setting("AGENTKIT_MODEL", DEFAULT_MODEL, "the chat model")
    openai_api_key: Secret | None = _setting(
        "OPENAI_API_KEY", None,
        "OpenAI's key, or an OpenAI-compatible server's (unset, and no OPENAI_BASE_URL: no "
        "model, bots fall back)")
    openai_base_url: str | None = _setting(
        "OPENAI_BASE_URL", None,
        "an OpenAI-compatible server instead of OpenAI, ending in /v1 (vLLM, Ollama, llama.cpp)")
    slack_webhook_url: Secret | None = _setting(
        "SLACK_WEBHOOK_URL", None, "a Slack incoming webhook for chat notes (unset: the console)")
    teams_webhook_url: Secret | None = _setting(
        "TEAMS_WEBHOOK_URL", None,
        "a Microsoft Teams incoming webhook for chat notes (unset: the console)")
    dry_run: bool = _setting("AGENTKIT_DRY_RUN", False,
                             "1: bots decide and record their actions, never execute them")
    business_hours: str = _setting(
        "AGENTKIT_BUSINESS_HOURS", DEFAULT_BUSINESS_HOURS,
        "when callbacks may be placed, or always; sandbox mode: always")
    time_zone: str | None = _setting(
        "AGENTKIT_TIME_ZONE", None,
        "the business's IANA time zone, for the times callers ask for and the daily digest's "
        "day (unset: the business hours' zone, else UTC)")
    sandbox: bool = _setting(
        "AGENTKIT_SANDBOX", False,
        "1: the API is a simulator started apart, so its published key and secret are accepted")
    prompts: str | None = _setting(
        "AGENTKIT_PROMPTS", None,
        "the prompt folder; --prompts wins; unset: prompts/ beside the bots, then ./prompts")
    dial_countries: frozenset[str] | None = _setting(
        "AGENTKIT_DIAL_COUNTRIES", None,
        "the countries callbacks may go to, region codes, comma-separated (unset: the "
        "account's country; sandbox mode: RO,GB)")
    dial_daily_max: int = _setting("AGENTKIT_DIAL_DAILY_MAX", DEFAULT_DIAL_DAILY_MAX,
                                   "outbound calls in 24 hours, the whole deployment", ge=0)
    calls_paused: bool = _setting("AGENTKIT_CALLS_PAUSED", False,
                                  "1: no outbound call is placed, as after agentkit calls pause")
    retention_days: int = _setting(
        "AGENTKIT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS,
        "days event bodies, transcripts and model answers are kept", ge=1)
    console_token: Secret = _setting(
        "AGENTKIT_CONSOLE_TOKEN", Secret(""),
        "one shared operator login for the console (unset, with no users file: no console)")
    console_users: str | None = _setting(
        "AGENTKIT_CONSOLE_USERS", None,
        "the console's users file: names, roles and token hashes (agentkit console add-user)")
    public_url: str | None = _setting(
        "AGENTKIT_PUBLIC_URL", None,
        "the console's address as users reach it, for links in chat notes (unset: no links)")
    forwarded_allow_ips: str = _setting(
        "AGENTKIT_FORWARDED_ALLOW_IPS", "127.0.0.1",
        "proxies trusted for X-Forwarded-For and -Proto, comma-separated addresses or *")
    approvals: tuple[str, ...] = _setting(
        "AGENTKIT_APPROVALS", (),
        "rules whose actions wait for a person, comma-separated: callback_to_other_number, "
        "flow_change, escalation, all_callbacks (unset: none; a bot's Approvals wins)")
    approvers: tuple[str, ...] = _setting(
        "AGENTKIT_APPROVERS", (),
        "Slack user ids who may approve, comma-separated (console users need the approver "
        "role)")
    approval_timeout: int = _setting(
        "AGENTKIT_APPROVAL_TIMEOUT", DEFAULT_APPROVAL_TIMEOUT,
        "seconds a pending approval waits; then the action is rejected", ge=1)
    slack_bot_token: Secret | None = _setting(
        "SLACK_BOT_TOKEN", None,
        "the Slack app's bot token (xoxb-...), to post approval requests (unset: approvals "
        "in the console only)")
    slack_signing_secret: Secret | None = _setting(
        "SLACK_SIGNING_SECRET", None,
        "the Slack app's signing secret, to verify button clicks at /slack/interactions")
    slack_approval_channel: str | None = _setting(
        "SLACK_APPROVAL_CHANNEL", None, "the Slack channel id approval requests go to")
    slack_api_url: str = _setting(
        "SLACK_API_URL", DEFAULT_SLACK_API_URL, "the Slack Web API's base URL")
    shadow: tuple[str, ...] = _setting(
        "AGENTKIT_SHADOW", (),
        "bots that run in shadow mode, comma-separated: they decide and record, never act")
    shadow_channel: Secret | None = _setting(
        "AGENTKIT_SHADOW_CHANNEL", None,
        "a chat webhook URL (Slack, Teams or any) for shadow bots' notes, each marked as "
        "shadow (unset: shadow notes are not posted)")
    replay_dir: str = _setting(
        "AGENTKIT_REPLAY_DIR", "./replay-reports",
        "the folder where agentkit replay keeps each report's JSON, shown in the console")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # from_env is the one place the environment is read, so that the variables a
        # test or a caller passes are all there is.
        return (init_settings,)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        sandbox: bool = False,
        env_file: str | Path | None = ".env",
        credentials: bool = True,
    ) -> Settings:
        """Read the settings; raise ConfigError naming every variable that is wrong.

        Variables already in the environment win over those in ``env_file``; a blank
        variable counts as unset. ``credentials=False``: the deployment's settings, for
        a command that may go without the API key and webhook secret (a replay).
        """
        values = _Environment(cls, read_environment(environ, env_file=env_file))()
        problems: list[str] = []
        wrong: set[str | int] = set()
        try:
            read = cls(**values)
        except ValidationError as exc:
            problems += [_problem(error) for error in exc.errors()]
            wrong = {error["loc"][0] for error in exc.errors() if error["loc"]}
            # The rest is still read, so that the checks below can name their problems too.
            read = cls(**{k: v for k, v in values.items() if k not in wrong})
        # --sandbox also starts the embedded simulator; AGENTKIT_SANDBOX=1 is for a
        # deployment whose API is a simulator started apart (the compose sandbox profile).
        in_sandbox = sandbox or read.sandbox
        if read.sandbox and "base_url" not in wrong and _is_odygy(read.base_url):
            problems.append(
                "AGENTKIT_SANDBOX=1 is for a deployment whose API is the simulator, but "
                f"ODYGY_BASE_URL is phone.systems itself ({read.base_url}): remove "
                "AGENTKIT_SANDBOX, or point ODYGY_BASE_URL at the simulator"
            )
        problems += _slack_app_problems(read)
        if not in_sandbox and credentials:
            problems += _credential_problems(read.api_key, read.webhook_secrets)
        if problems:
            raise ConfigError("agentkit is not configured: " + "; ".join(problems))
        if not in_sandbox:
            return read
        return read.model_copy(update={
            "sandbox": True,
            "api_key": read.api_key or Secret(SANDBOX_API_KEY),
            "webhook_secrets": read.webhook_secrets or (Secret(SANDBOX_WEBHOOK_SECRET),),
            "dial_countries": SANDBOX_DIAL_COUNTRIES if read.dial_countries is None
            else read.dial_countries,
            # The sandbox is for trying things now: it never waits for office hours.
            "business_hours": read.business_hours if "business_hours" in values else "always",
        })

    def secret_values(self) -> list[str]:
        """Every secret value, for the log redactor to mask."""
        values: list[str] = [self.api_key, *self.webhook_secrets]
        for optional in (self.openai_api_key, self.slack_webhook_url, self.teams_webhook_url,
                         self.slack_bot_token, self.slack_signing_secret,
                         self.shadow_channel):
            if optional:
                values.append(optional)
        return [v for v in values if v]

    @field_validator("base_url", "public_url", mode="before")
    @classmethod
    def _http_url(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        url = value.strip().rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{_name(info)} must be an http(s) URL, not {url!r}")
        return url

    @field_validator("time_zone", mode="before")
    @classmethod
    def _time_zone(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        name = value.strip()
        if not name:
            return None
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{_name(info)} must be an IANA time zone such as "
                             f"Europe/Bucharest or UTC, not {name!r}") from None
        return name

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        url = value.strip()
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(
                f"{_name(info)} must be sqlite:///path.db or postgresql://..., not {url!r}")
        return url

    @field_validator("webhook_secrets", "approvers", "shadow", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return tuple(part.strip() for part in value.split(",") if part.strip())

    @field_validator("approvals", mode="before")
    @classmethod
    def _approval_rules(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        unknown = [name for name in names if name not in APPROVAL_RULES]
        if unknown:
            raise ValueError(f"{_name(info)} has unknown rules {', '.join(unknown)}: use some "
                             f"of {', '.join(APPROVAL_RULES)}")
        return names

    @field_validator("slack_api_url", mode="before")
    @classmethod
    def _slack_api_url(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        url = value.strip()
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{_name(info)} must be an http(s) URL, not {url!r}")
        return url if url.endswith("/") else url + "/"

    @field_validator("dry_run", "sandbox", "calls_paused", mode="before")
    @classmethod
    def _flag(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        raw = value.strip().lower()
        if raw not in _TRUE | _FALSE:
            raise ValueError(f"{_name(info)} must be 0 or 1, not {raw!r}")
        return raw in _TRUE

    @field_validator("dial_daily_max", "retention_days", "approval_timeout", mode="before")
    @classmethod
    def _count(cls, value: object, info: ValidationInfo) -> object:
        field = cls.model_fields[str(info.field_name)]
        least = next(typing.cast(int, m.ge) for m in field.metadata if isinstance(m, Ge))
        raw = str(value).strip()
        if not raw.isdigit() or int(raw) < least:
            raise ValueError(f"{_name(info)} must be a whole number, {least} or more, not {raw!r}")
        return int(raw)

    @field_validator("dial_countries", mode="before")
    @classmethod
    def _regions(cls, value: object, info: ValidationInfo) -> object:
        """Region codes, upper-cased; None when unset (the account's country)."""
        if not isinstance(value, str):
            return value
        import phonenumbers

        names = {part.strip().upper() for part in value.split(",") if part.strip()}
        if not names:
            return None
        known = phonenumbers.SUPPORTED_REGIONS | {phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY}
        unknown = sorted(names - known)
        if unknown:
            raise ValueError(
                f"{_name(info)} has unknown region codes {', '.join(unknown)}: use ISO 3166 "
                "codes as libphonenumber does (GB, RO, US; 001 for non-geographic numbers)"
            )
        return frozenset(names)


def environment_variables() -> list[EnvironmentVariable]:
    """Every variable ``Settings.from_env`` reads, in the order ``Settings`` declares them."""
    return [
        EnvironmentVariable(name=_variable_name(field), default=_as_text(field.default),
                            description=field.description or "",
                            secret=_holds_secret(field.annotation))
        for field in Settings.model_fields.values()
    ]


class _Environment(PydanticBaseSettingsSource):
    """The variables of one environment, by field name: stripped; a blank one is unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = self._environ.get(_variable_name(field), "").strip()
        return value or None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                found[key] = value
        return found


def _variable_name(field: FieldInfo) -> str:
    assert isinstance(field.validation_alias, str), "every setting names its variable"
    return field.validation_alias


def _name(info: ValidationInfo) -> str:
    return _variable_name(Settings.model_fields[str(info.field_name)])


def _problem(error: ErrorDetails) -> str:
    """A validation error as the sentence the variable's validator wrote."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):
        return str(cause)
    field = Settings.model_fields.get(str(error["loc"][0])) if error["loc"] else None
    return f"{_variable_name(field) if field else 'a setting'}: {error['msg']}"


def _as_text(default: Any) -> str:
    if isinstance(default, bool):
        return "1" if default else "0"
    return "" if default is None or default == () else str(default)


def _holds_secret(annotation: Any) -> bool:
    """True for Secret, and for a union or tuple with a Secret in it."""
    return annotation is Secret or any(_holds_secret(a) for a in typing.get_args(annotation))


def _is_odygy(base_url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(base_url).hostname or "").lower()
    return host == "odygy.com" or host.endswith(".odygy.com")


def _slack_app_problems(read: Settings) -> list[str]:
    """The Slack app for approvals needs its token, its signing secret and a channel."""
    given = {"SLACK_BOT_TOKEN": read.slack_bot_token,
             "SLACK_SIGNING_SECRET": read.slack_signing_secret,
             "SLACK_APPROVAL_CHANNEL": read.slack_approval_channel}
    missing = [name for name, value in given.items() if not value]
    if not missing or len(missing) == len(given):
        return []
    return [f"the Slack app for approvals needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and "
            f"SLACK_APPROVAL_CHANNEL together; {', '.join(missing)} not set: set "
            f"{'it' if len(missing) == 1 else 'them'}, or unset the others (approvals then "
            "happen in the console only)"]


def _credential_problems(api_key: str, secrets: Sequence[str]) -> list[str]:
    """Missing, published or guessable credentials, outside sandbox mode."""
    problems: list[str] = []
    if not api_key:
        problems.append("ODYGY_API_KEY is not set: give the API key from the admin console, "
                        "or add --sandbox to try agentkit without one")
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
