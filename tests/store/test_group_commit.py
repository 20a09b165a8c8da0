"""SQLite's group commit: transactions asked for while the store's thread is busy commit
together, each undone alone when it fails, and none is answered before the COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agentkit.store.base import StoreError, StoreUnavailable
from agentkit.store.sqlite import SqliteStore


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "group.db")
    await store.open()
    await store._write(lambda db: db.execute("CREATE TABLE probe (name TEXT UNIQUE)"))
    yield store
    await store.close()


def insert(name: str, *, then_fail: bool = False) -> Callable[[sqlite3.Connection], str]:
    def write(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO probe (name) VALUES (?)", (name,))
        if then_fail:
            raise StoreError(f"{name} refused after writing")
        return name
    return write


async def grouped(store: SqliteStore, *writes: Callable[[sqlite3.Connection], Any]
                  ) -> list[Any]:
    """Run ``writes`` as one group: queued while the store's thread is held busy."""
    holding, gate = threading.Event(), threading.Event()

    def hold(db: sqlite3.Connection) -> bool:
        holding.set()
        return gate.wait(10)

    holder = asyncio.create_task(store._write(hold))
    assert await asyncio.to_thread(holding.wait, 10), "the store's thread never took it"
    asked = [asyncio.create_task(store._write(write)) for write in writes]
    await asyncio.sleep(0)  # each asks for its transaction, queued behind the holder
    gate.set()
    await holder
    return await asyncio.gather(*asked, return_exceptions=True)


def names(path: str) -> list[str]:
    """What another connection sees: only what was committed."""
    with sqlite3.connect(path) as db:
        return sorted(row[0] for row in db.execute("SELECT name FROM probe"))


async def test_a_failing_transaction_is_undone_alone(sqlite: SqliteStore) -> None:
    """Of five transactions committed together, the one that fails after writing leaves
    nothing, gets its own error, and the four others are committed with their results."""
    results = await grouped(sqlite, insert("a"), insert("b"), insert("c", then_fail=True),
                            insert("d"), insert("e"))
    assert results[:2] == ["a", "b"] and results[3:] == ["d", "e"]
    assert isinstance(results[2], StoreError) and "c refused" in str(results[2])
    assert names(sqlite.path) == ["a", "b", "d", "e"]


async def test_a_constraint_violation_in_a_group_is_that_transaction_s_error(
    sqlite: SqliteStore,
) -> None:
    """A duplicate key fails only the transaction that wrote it, as a StoreError."""
    results = await grouped(sqlite, insert("x"), insert("x"), insert("y"))
    assert results[0] == "x" and results[2] == "y"
    assert isinstance(results[1], StoreError)
    assert names(sqlite.path) == ["x", "y"]


async def test_answered_only_once_committed(sqlite: SqliteStore) -> None:
    """Whoever gets an answer finds the change on disk: another connection sees it."""
    seen: list[list[str]] = []

    async def write_then_look(name: str) -> None:
        await sqlite._write(insert(name))
        seen.append(names(sqlite.path))

    await asyncio.gather(*(write_then_look(f"n{i}") for i in range(20)))
    for i in range(20):
        assert any(f"n{i}" in after for after in seen)
    assert len(names(sqlite.path)) == 20


async def test_a_failure_that_ends_the_transaction_fails_the_whole_group(
    sqlite: SqliteStore,
) -> None:
    """When SQLite itself ends the transaction (a full disk does), nothing of the group
    is kept and every member is told the store could not write."""
    def ends_everything(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO probe (name) VALUES ('doomed')")
        db.execute("ROLLBACK")  # as SQLite does on SQLITE_FULL
        raise sqlite3.OperationalError("database or disk is full")

    results = await grouped(sqlite, insert("p"), ends_everything, insert("q"))
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert names(sqlite.path) == []
    assert await sqlite._write(insert("after")) == "after"
