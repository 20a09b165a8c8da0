"""A real SQLite store for the answer cache, and tasks that ask the fake model over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agentkit.llm import LlmClient, LlmTasks, PromptLibrary, Usage
from agentkit.llm.prompts import DEFAULT_TEMPLATES
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import FakeLlm

PROJECT_PROMPTS = DEFAULT_TEMPLATES

MakeTasks = Callable[..., LlmTasks]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh SQLite store, for the answer cache."""
    db = SqliteStore(tmp_path / "a.db")
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def prompts() -> PromptLibrary:
    """The project's own prompt templates."""
    return PromptLibrary([PROJECT_PROMPTS])


@pytest.fixture
async def make_tasks(
    fake_llm: FakeLlm, store: SqliteStore, prompts: PromptLibrary
) -> AsyncIterator[MakeTasks]:
    """Builds LlmTasks over a real openai client pointed at the fake model; closes them after."""
    clients: list[LlmClient] = []

    def build(
        *,
        cache: bool = True,
        usage: Usage | None = None,
        library: PromptLibrary | None = None,
        prompt_names: dict[str, str] | None = None,
        **config: Any,
    ) -> LlmTasks:
        config.setdefault("max_retries", 1)
        client = LlmClient(fake_llm.llm_config(**config), store if cache else None)
        clients.append(client)
        return LlmTasks(
            client, library or prompts, usage=usage or Usage(), prompt_names=prompt_names
        )

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def tasks(make_tasks: MakeTasks) -> LlmTasks:
    """Tasks with the answer cache, one retry, and a 5 s timeout."""
    return make_tasks()
