"""The shipped bots' prompts render, and how agentkit treats templates built like them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit.checks import check_project
from agentkit.llm import PromptLibrary
from tests.shipped.helpers import PROMPTS, ROOT, shipped

TRANSCRIPT = "<transcript>\n[00:00.0] caller: Hello.\n</transcript>"
EXTRACT_VARIABLES: dict[str, Any] = {
    "transcript": TRANSCRIPT, "schema_name": "Record", "schema_description": "", "fields": [],
}


@pytest.mark.parametrize("module", ["voicemail_callback", "call_summary", "escalation"])
def test_each_bot_prompt_renders_a_system_and_a_user_message(module: str) -> None:
    """Every template a shipped bot names is complete and ends its user message with the call."""
    library = PromptLibrary.for_project(PROMPTS)
    bot = shipped(module)
    assert bot.prompt_names
    for name in bot.prompt_names.values():
        library.check([name])
        system, user = library.render(name, **EXTRACT_VARIABLES)
        assert (system["role"], user["role"]) == ("system", "user")
        assert "<transcript>" in system["content"]
        assert user["content"].endswith(TRANSCRIPT)


def test_project_passes_agentkit_check() -> None:
    """`agentkit check --sandbox` finds nothing wrong with the shipped bots and prompts."""
    problems = check_project(bots=str(ROOT / "bots"), prompts=str(PROMPTS), sandbox=True).problems
    assert problems == []


def test_template_extending_a_default_inherits_its_user_block(tmp_path: Path) -> None:
    """A prompt that extends extract.j2 and overrides the system block renders extract's user."""
    (tmp_path / "mine.j2").write_text(
        '{% extends "extract.j2" %}\n{% block system %}Mine.{% endblock %}\n'
    )
    system, user = PromptLibrary.for_project(tmp_path).render("mine", **EXTRACT_VARIABLES)
    assert system["content"] == "Mine."
    assert user["content"].startswith("Fill in a Record record")


def test_check_reports_a_bot_prompt_without_a_user_block(tmp_path: Path) -> None:
    """`agentkit check` reports a template a bot names that has no user block."""
    prompts, bots = tmp_path / "prompts", tmp_path / "bots"
    prompts.mkdir()
    bots.mkdir()
    (prompts / "half.j2").write_text("{% block system %}Only a system block.{% endblock %}\n")
    (bots / "half.py").write_text(
        "from agentkit import Bot, Context\n\n"
        'bot = Bot("half", prompt_names={"extract": "half"})\n\n\n'
        '@bot.on("voicemail.received")\n'
        "async def handle(ctx: Context) -> None:\n"
        "    pass\n"
    )
    problems = check_project(bots=str(bots), prompts=str(prompts), sandbox=True).problems
    assert any("half" in p and "user" in p for p in problems)
