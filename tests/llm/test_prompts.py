"""Prompt templates: where they are found, what they need, and how they fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.llm import PromptError, PromptLibrary
from tests.llm.conftest import PROJECT_PROMPTS

TASKS = ["summarise", "classify", "extract", "decide"]


def write(folder: Path, name: str, system: str, user: str, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.j2").write_text(
        f"{{% block system %}}{system}{{% endblock %}}\n{{% block user %}}{user}{{% endblock %}}\n"
        + extra
    )


def test_project_templates_are_complete(prompts: PromptLibrary) -> None:
    """Every task's default template exists, parses and has system, user and reask blocks."""
    prompts.check(TASKS)
    for name in TASKS:
        assert prompts.render_block(name, "reask", problem="p", labels=["a"], options=[])


def test_render_gives_system_then_user(tmp_path: Path) -> None:
    """A template renders to a system message then a user message, with its variables."""
    write(tmp_path, "greet", "You are terse.", "Say hi to {{ name }}.")
    messages = PromptLibrary([tmp_path]).render("greet", name="Ana")
    assert messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hi to Ana."},
    ]


def test_first_folder_wins(tmp_path: Path) -> None:
    """A bot's folder searched first overrides the project's template of the same name."""
    write(tmp_path / "bot", "summarise", "Bot system.", "Bot user {{ transcript }}")
    library = PromptLibrary([PROJECT_PROMPTS]).before(tmp_path / "bot")
    system, _ = library.render("summarise", transcript="T", max_words=5)
    assert system["content"] == "Bot system."
    assert library.where("summarise") == tmp_path / "bot" / "summarise.j2"


def test_later_folders_fill_in(tmp_path: Path) -> None:
    """A template the bot's folder lacks comes from the next folder."""
    library = PromptLibrary([tmp_path / "bot", PROJECT_PROMPTS])
    assert library.where("classify") == PROJECT_PROMPTS / "classify.j2"


def test_missing_template_names_file_and_folders(tmp_path: Path) -> None:
    """Rendering a template no folder has raises PromptError naming the file and the folders."""
    library = PromptLibrary([tmp_path / "bot", PROJECT_PROMPTS])
    with pytest.raises(PromptError) as caught:
        library.render("voicemail_triage")
    message = str(caught.value)
    assert "voicemail_triage.j2" in message
    assert str(tmp_path / "bot") in message and str(PROJECT_PROMPTS) in message


def test_missing_variable_names_it(tmp_path: Path) -> None:
    """A variable the template uses but nobody gave raises PromptError naming it and the file."""
    write(tmp_path, "greet", "sys", "Hello {{ caller_name }}")
    with pytest.raises(PromptError) as caught:
        PromptLibrary([tmp_path]).render("greet")
    assert "caller_name" in str(caught.value)
    assert str(tmp_path / "greet.j2") in str(caught.value)


def test_missing_lists_absent_names(tmp_path: Path) -> None:
    """missing() returns the names no folder has, for a check at load time."""
    library = PromptLibrary([tmp_path, PROJECT_PROMPTS])
    assert library.missing(["summarise", "nope", "decide", "nada"]) == ["nope", "nada"]


def test_check_reports_a_missing_block(tmp_path: Path) -> None:
    """check() refuses a template without a user block, saying which block to add."""
    (tmp_path / "half.j2").write_text("{% block system %}s{% endblock %}")
    with pytest.raises(PromptError, match=r"defines no \{% block user %\}"):
        PromptLibrary([tmp_path]).check(["half"])


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A template that does not parse raises PromptError with its line."""
    (tmp_path / "bad.j2").write_text("{% block system %}\n{{ oops }\n{% endblock %}")
    with pytest.raises(PromptError, match="line 2"):
        PromptLibrary([tmp_path]).render("bad", oops=1)


def test_nothing_is_escaped(tmp_path: Path) -> None:
    """Variables are inserted as they are, without HTML escaping."""
    write(tmp_path, "raw", "s", "{{ text }}")
    _, user = PromptLibrary([tmp_path]).render("raw", text="<a & b>")
    assert user["content"] == "<a & b>"


def test_reask_falls_back_to_the_task_template(tmp_path: Path) -> None:
    """A bot template without a reask block borrows the task template's."""
    write(tmp_path, "mine", "s", "u")
    library = PromptLibrary([tmp_path, PROJECT_PROMPTS])
    text = library.render_block("mine", "reask", "summarise", problem="no JSON")
    assert text.startswith("That answer did not fit: no JSON.")
