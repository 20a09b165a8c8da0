"""docs/bots.md as a new bot author uses it: its worked example runs as printed, in a new
project with no configuration, and its event reference matches the models."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import sys
from pathlib import Path

import agentkit
from agentkit.reference import END, START, event_reference

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bots.md"
SHIPPED = ROOT / "bots"


def example_files() -> dict[str, str]:
    """The files docs/bots.md prints, by the path named in the comment above each block."""
    found = re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    return dict(found)


def test_event_reference_is_current() -> None:
    """The event types section is what the models generate (python -m agentkit.reference)."""
    text = DOC.read_text()
    generated = text.split(START, 1)[1].split(END, 1)[0]
    assert generated == f"\n{event_reference()}", (
        "docs/bots.md is out of date: run python -m agentkit.reference docs/bots.md"
    )


def test_event_reference_lists_the_seven_types() -> None:
    """Each of the seven webhook event types has its section, with its class."""
    reference = event_reference()
    for event_type in ("call.initiated", "call.answered", "call.completed", "recording.ready",
                       "transcript.ready", "voicemail.received", "number.ported"):
        assert f"### `{event_type}`" in reference


async def test_worked_example_passes_in_a_new_project(tmp_path: Path) -> None:
    """The example bot and its tests, written out as printed, pass with ``python -m pytest``
    in a folder with no conftest and no pytest configuration."""
    files = example_files()
    assert set(files) == {"bots/vip_voicemail.py", "tests/test_vip_voicemail.py"}
    for name, source in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "PYTEST_", "PYTHONPATH"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    text = out.decode()
    assert process.returncode == 0, text[-3000:]
    assert "3 passed" in text


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [node.module or "" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("agentkit")]


def test_shipped_bots_import_only_from_agentkit() -> None:
    """The shipped bots, like an author's, need nothing but ``agentkit``'s public names."""
    for path in sorted(SHIPPED.glob("*.py")):
        assert set(_imports(path)) <= {"agentkit"}, path.name
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "agentkit":
                for alias in node.names:
                    assert alias.name in agentkit.__all__, (path.name, alias.name)


def test_no_untyped_context_in_shipped_bots() -> None:
    """No shipped bot takes a ``Context[Any]``."""
    for path in sorted(SHIPPED.glob("*.py")):
        assert "Context[Any" not in path.read_text(), path.name


def test_examples_import_only_public_names() -> None:
    """The docs' example imports nothing from agentkit that is not exported."""
    for source in example_files().values():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module == "agentkit":
                assert all(alias.name in agentkit.__all__ for alias in node.names)
