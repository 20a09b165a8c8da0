"""structlog set-up: JSON lines for machines, readable lines for people, secrets masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from agentkit.redact import mask_payment_data

_SECRET_KEYS = re.compile(r"(api_?key|secret|token|password|authorization)", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+", re.I)
MASK = "***"


class RedactSecrets:
    """A processor that masks secrets, secret-looking fields and payment data.

    Values are masked wherever they appear in a string, so a secret quoted in
    an exception message is masked too.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, MASK)
            return mask_payment_data(_BEARER.sub(r"\1" + MASK, value))
        if isinstance(value, dict):
            return {k: MASK if _secret_field(str(k), v) else self._clean(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._clean(v) for v in value)
        return value

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            if _secret_field(key, value):
                event_dict[key] = MASK
            else:
                event_dict[key] = self._clean(value)
        return event_dict


def _secret_field(key: str, value: Any) -> bool:
    """A field named like a secret holds one, unless it is empty or a number (token counts)."""
    return bool(_SECRET_KEYS.search(key)) and bool(value) and not isinstance(value, (int, float))


def configure_logging(
    *, secrets: Iterable[str] = (), level: str = "info", json: bool | None = None
) -> None:
    """Set structlog (and the standard library's logging) up for this process.

    ``json=None`` picks JSON lines when stdout is not a terminal.
    """
    as_json = not sys.stdout.isatty() if json is None else json
    redact = RedactSecrets(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # No file given: each logger writes to sys.stdout as it is when the line is logged.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(name)s %(message)s")
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
