"""structlog set-up: JSON lines for machines, readable lines for people, secrets masked.

agentkit's modules log through ``get_logger``, which stays silent until logging is
set up (``configure_logging``, or the application's own structlog or logging set-up),
so the client used as a library prints nothing of its own accord.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TextIO, cast

import structlog
from structlog.processors import NAME_TO_LEVEL, ExceptionRenderer
from structlog.stdlib import ProcessorFormatter
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import FilteringBoundLogger, Processor

from agentkit.redact import mask_payment_data

_SECRET_KEYS = re.compile(r"(api_?key|secret|token|password|authorization)", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+", re.I)
MASK = "***"

# Bound by the workers for every line of a job. JSON lines keep them; in a terminal at info
# level only error lines do, for a person to find the job (--log-level debug: every line).
BOOKKEEPING = frozenset({"job_id", "job_kind", "attempt", "event_id", "event_type", "call_id"})

# Warnings that repeat for as long as something stays down (the store, mostly): logged
# once a window, with a count of the ones left out.
REPEATING = frozenset({
    "agentkit.store_unavailable",
    "delivery.not_stored",
    "store.write_failed",
    "workers.lease_failed",
    "job.lease_extend_failed",
    "job.store_failed",
    "schedule.not_stored",
})

# The logging HOWTO's advice for libraries: without it, the standard library prints an
# unconfigured library's warnings to stderr.
logging.getLogger("agentkit").addHandler(logging.NullHandler())


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger named ``name`` that prints nothing until logging is set up."""
    return cast(FilteringBoundLogger, structlog.wrap_logger(_Deferred(name)))


class _Deferred:
    """The end of an agentkit logger's chain, chosen when a line is logged.

    Once structlog is configured: the configured factory's logger. Before: the standard
    library's logger of the same name, silent unless the application sets logging up.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        if structlog.is_configured():
            return getattr(structlog.get_config()["logger_factory"](self.name), method)
        return getattr(logging.getLogger(self.name), method)


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


class MergeContext:
    """A processor that adds the context bound with structlog.contextvars.

    The bound keys come first, so a line reads context then event. The ones in ``hide``
    are left out of lines below error level; a key passed to the log call itself is
    always kept, even one named in ``hide``.
    """

    def __init__(self, hide: Iterable[str] = ()) -> None:
        self._hide = frozenset(hide)

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        hide = self._hide if NAME_TO_LEVEL.get(method_name, 0) < logging.ERROR else ()
        merged = {key: value for key, value in structlog.contextvars.get_contextvars().items()
                  if key not in hide}
        merged.update(event_dict)
        return merged


class RateLimitRepeats:
    """A processor that logs each of ``events`` at most once a ``window`` (seconds).

    The first occurrence is logged; the ones after it within the window are dropped and
    counted, and the next one logged carries the count as ``repeated``.
    """

    def __init__(
        self,
        events: Iterable[str],
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = frozenset(events)
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._logged_at: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event = event_dict.get("event")
        if not isinstance(event, str) or event not in self._events:
            return event_dict
        now = self._clock()
        with self._lock:
            last = self._logged_at.get(event)
            if last is not None and now - last < self._window:
                self._dropped[event] = self._dropped.get(event, 0) + 1
                raise structlog.DropEvent
            self._logged_at[event] = now
            dropped = self._dropped.pop(event, 0)
        if dropped:
            event_dict["repeated"] = dropped
        return event_dict


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes records to sys.stdout as it is when each is logged, as structlog's lines are."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def configure_logging(
    *, secrets: Iterable[str] = (), level: str = "info", json: bool | None = None
) -> None:
    """Set structlog and the standard library's logging up for this process.

    Both write one line per event to stdout: JSON, or readable lines for a terminal
    (``json=None`` picks JSON when stdout is not a terminal). The standard library's
    records (uvicorn, asyncpg, ...) pass the same processors as structlog's.
    """
    as_json = not sys.stdout.isatty() if json is None else json
    threshold = int(logging.getLevelName(level.upper()))
    people = not as_json and threshold > logging.DEBUG
    before: list[Processor] = [
        MergeContext(hide=BOOKKEEPING if people else ()),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True) if as_json
        else structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
    ]
    after: list[Processor] = [
        # A traceback becomes one JSON field, never lines of its own.
        ExceptionRenderer(ExceptionDictTransformer(show_locals=False)) if as_json
        else structlog.processors.format_exc_info,
        RedactSecrets(secrets),
        structlog.processors.JSONRenderer() if as_json
        else structlog.dev.ConsoleRenderer(pad_event_to=20, sort_keys=False,
                                           colors=sys.stdout.isatty()),
    ]
    structlog.configure(
        processors=[*before, RateLimitRepeats(REPEATING), *after],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        # No file given: each logger writes to sys.stdout as it is when the line is logged.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _StdoutHandler()
    handler.setFormatter(ProcessorFormatter(
        foreign_pre_chain=[*before, structlog.stdlib.add_logger_name],
        processors=[ProcessorFormatter.remove_processors_meta, *after],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdoutHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
