"""Where deliveries, jobs, bot runs, actions and approvals are kept: one interface, two engines."""

from __future__ import annotations

from pathlib import Path

from agentkit.errors import ConfigError
from agentkit.store.base import (
    ActionRecord,
    ApiRead,
    Approval,
    ApprovalDecision,
    ApprovalState,
    BotRun,
    CachedAnswer,
    CallActivity,
    CallCursor,
    CallQuery,
    CallRow,
    DayFigures,
    DeadGroup,
    EventRecord,
    Job,
    JobRecord,
    JobSpec,
    JoinState,
    ModelAnswer,
    NewApproval,
    NewEvent,
    PlacedCall,
    Store,
    StoredEvent,
    StoreError,
    StoreHealth,
    StoreUnavailable,
    dead_error,
)

__all__ = [
    "ActionRecord",
    "ApiRead",
    "Approval",
    "ApprovalDecision",
    "ApprovalState",
    "BotRun",
    "CachedAnswer",
    "CallActivity",
    "CallCursor",
    "CallQuery",
    "CallRow",
    "DayFigures",
    "DeadGroup",
    "EventRecord",
    "Job",
    "JobRecord",
    "JobSpec",
    "JoinState",
    "ModelAnswer",
    "NewApproval",
    "NewEvent",
    "PlacedCall",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoreUnavailable",
    "StoredEvent",
    "dead_error",
    "store_for_url",
]


def store_for_url(url: str, *, max_attempts: int = Store.default_max_attempts,
                  one_at_a_time: bool = False) -> Store:
    """The store an AGENTKIT_DATABASE_URL names (not yet opened).

    ``sqlite:///relative.db``, ``sqlite:////absolute.db`` (SQLAlchemy's
    convention) or ``postgresql://user@host:port/db``. ``one_at_a_time``: the
    process asks one thing at a time (SQLite then runs it inline, see SqliteStore).
    """
    if url.startswith("sqlite:///"):
        from agentkit.store.sqlite import SqliteStore

        path = url.removeprefix("sqlite:///")
        if not path:
            raise ConfigError("AGENTKIT_DATABASE_URL names no SQLite file: sqlite:///agentkit.db")
        return SqliteStore(Path(path), max_attempts=max_attempts, inline=one_at_a_time)
    if url.startswith(("postgresql://", "postgres://")):
        from agentkit.store.postgres import PostgresStore

        return PostgresStore(url, max_attempts=max_attempts)
    raise ConfigError(
        f"AGENTKIT_DATABASE_URL {url!r} is not sqlite:///path.db or postgresql://...: "
        "set one of those"
    )
