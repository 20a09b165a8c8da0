"""A join that expires without its handler's own event warns only when the call should have
brought that event."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs
from structlog.typing import EventDict

from agentkit.bot import Bot
from agentkit.context import Context
from agentkit.events import parse_event
from agentkit.runtime.dispatch import Dispatcher
from agentkit.store import Job, NewEvent, Store
from agentkit.store.base import JobKind
from agentkit.store.sqlite import SqliteStore
from agentkit.testing.deliveries import default_data, envelope


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SqliteStore(tmp_path / "agentkit.db", max_attempts=3)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def logs() -> Iterator[list[EventDict]]:
    """Every line logged, debug ones included."""
    wrapper = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(wrapper_class=wrapper)


def voicemail_bot() -> Bot:
    bot = Bot("voicemail")

    @bot.on("voicemail.received", join="transcript.ready", join_timeout=60)
    async def call_back(ctx: Context[Any]) -> None:
        raise AssertionError("the handler must not run without its voicemail")

    return bot


def inbound_bot() -> Bot:
    bot = Bot("inbound")

    @bot.on("call.completed", join="transcript.ready", join_timeout=60, direction="inbound")
    async def review(ctx: Context[Any]) -> None:
        raise AssertionError("the handler must not run without its call")

    return bot


def completed(**call: Any) -> dict[str, Any]:
    return envelope("call.completed", default_data("call.completed") | call)


def no_context(*args: Any, **kwargs: Any) -> Context[Any]:
    raise AssertionError("no handler runs in these tests")


def job(raw: dict[str, Any], bot: Bot, *, kind: JobKind = "bot", name: str = "",
        payload: dict[str, Any] | None = None) -> Job:
    return Job(id=1, kind=kind, event_id=raw["id"], seq=0, call_id="cal_test_1",
               bot=bot.name, name=name, payload=payload or {}, attempts=1, max_attempts=3,
               run_at=datetime.now(UTC), lease_owner="test", last_error=None,
               event_body=json.dumps(raw).encode())


async def expire(store: Store, bot: Bot, *stored: dict[str, Any]) -> None:
    """Store the call's events, let a transcript start the bot's join, then time it out."""
    transcript = envelope("transcript.ready")
    bodies = [*stored, transcript]
    await store.add_events([
        NewEvent(raw["id"], raw["type"], datetime.now(UTC), "cal_test_1",
                 json.dumps(raw).encode(), True)
        for raw in bodies
    ])
    dispatcher = Dispatcher([bot], no_context, store)
    event = parse_event(json.dumps(transcript).encode())
    (timer,) = await dispatcher.run(job(transcript, bot), event)
    await dispatcher.run(job(transcript, bot, kind="task", name=timer.name,
                             payload=timer.payload), event)


async def expired_at(store: Store, logs: list[EventDict], bot: Bot,
                     *stored: dict[str, Any]) -> str:
    """The level join.expired is logged at, once the bot's join times out."""
    await expire(store, bot, *stored)
    (line,) = [entry for entry in logs if entry["event"] == "join.expired"]
    return str(line["log_level"])


async def test_answered_call_expires_quietly(store: Store, logs: list[EventDict]) -> None:
    """A voicemail handler's join on an answered call's transcript expires at debug level."""
    answered = completed(answered_at="2026-04-23T10:10:09Z")
    assert await expired_at(store, logs, voicemail_bot(), answered) == "debug"


async def test_voicemail_that_never_came_warns(store: Store, logs: list[EventDict]) -> None:
    """A call that ended in voicemail but brought no voicemail.received expires with a warning."""
    ended_in_voicemail = completed(status="voicemail")
    assert await expired_at(store, logs, voicemail_bot(), ended_in_voicemail) == "warning"


async def test_call_the_filters_refuse_expires_quietly(
    store: Store, logs: list[EventDict]
) -> None:
    """A join on a call its handler's filters refuse expires at debug level."""
    assert await expired_at(store, logs, inbound_bot(), completed(direction="outbound")) == "debug"


async def test_unknown_call_end_warns(store: Store, logs: list[EventDict]) -> None:
    """Without the call's call.completed there is no telling, and the expiry warns."""
    assert await expired_at(store, logs, voicemail_bot()) == "warning"


async def test_wait_without_own_event_is_debug(store: Store, logs: list[EventDict]) -> None:
    """A join started by a joined event alone logs its wait at debug level."""
    await expire(store, voicemail_bot(), completed(answered_at="2026-04-23T10:10:09Z"))
    (line,) = [entry for entry in logs if entry["event"] == "join.waiting"]
    assert line["log_level"] == "debug"
