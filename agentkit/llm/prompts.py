"""Prompt templates: Jinja2 files rendered with explicit variables into chat messages.

A template ``<name>.j2`` defines ``{% block system %}`` and ``{% block user %}``,
and may define ``{% block reask %}``, the message sent when an answer did not
fit. The first folder holding the file wins: a bot's own folder goes before
the project's ``prompts/``, which goes before the defaults shipped with
agentkit (``DEFAULT_TEMPLATES``). Undefined variables are errors, nothing is
escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from agentkit.llm.errors import PromptError

SUFFIX = ".j2"
REQUIRED_BLOCKS = ("system", "user")
DEFAULT_TEMPLATES = Path(__file__).parent / "templates"


class PromptLibrary:
    """The templates of a list of folders, searched in order."""

    def __init__(self, dirs: Sequence[Path | str]) -> None:
        self.dirs = tuple(Path(d) for d in dirs)
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @classmethod
    def for_project(cls, *dirs: Path | str) -> PromptLibrary:
        """The given folders, then agentkit's default task templates."""
        return cls([*dirs, DEFAULT_TEMPLATES])

    def before(self, *dirs: Path | str | None) -> PromptLibrary:
        """A library searching ``dirs`` first, then these folders (a bot's own prompts)."""
        first = [Path(d) for d in dirs if d is not None]
        return PromptLibrary([*first, *(d for d in self.dirs if d not in first)])

    def missing(self, names: Iterable[str]) -> list[str]:
        """The names with no template file in any folder, for a check before any work."""
        return [name for name in names if not self._exists(name)]

    def check(self, names: Iterable[str]) -> None:
        """Raise PromptError unless every template exists, parses and has its blocks."""
        problems: list[str] = []
        for name in names:
            try:
                template = self._template(name)
            except PromptError as exc:
                problems.append(str(exc))
                continue
            lacking = [b for b in REQUIRED_BLOCKS if self._owner(template, b) is None]
            if lacking:
                problems.append(self._no_block(template, lacking[0]))
        if problems:
            raise PromptError("; ".join(problems))

    def render(self, name: str, /, **variables: Any) -> list[dict[str, str]]:
        """The chat messages of template ``name``: its system block, then its user block."""
        template = self._template(name)
        return [
            {"role": role, "content": self._block(template, role, variables)}
            for role in REQUIRED_BLOCKS
        ]

    def render_block(
        self, name: str, block: str, fallback: str | None = None, /, **variables: Any
    ) -> str:
        """One block of ``name``; when ``name`` lacks it, the same block of ``fallback``."""
        template = self._template(name)
        if self._owner(template, block) is None and fallback is not None and fallback != name:
            template = self._template(fallback)
        return self._block(template, block, variables)

    def where(self, name: str) -> Path:
        """The file template ``name`` renders from."""
        return Path(self._template(name).filename or name + SUFFIX)

    def _exists(self, name: str) -> bool:
        try:
            self._env.get_template(name + SUFFIX)
        except jinja2.TemplateNotFound:
            return False
        except jinja2.TemplateError:
            return True
        return True

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self._env.get_template(name + SUFFIX)
        except jinja2.TemplateNotFound:
            searched = ", ".join(str(d) for d in self.dirs) or "no folders"
            raise PromptError(
                f"no prompt template {name}{SUFFIX} (searched {searched}): add the file, "
                "or fix the prompt name"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise PromptError(
                f"prompt template {exc.filename or name + SUFFIX} line {exc.lineno} "
                f"does not parse: {exc.message}"
            ) from None

    def _owner(self, template: jinja2.Template, block: str) -> jinja2.Template | None:
        """The template that defines ``block``: this one, or one it extends."""
        seen: set[str] = set()
        while block not in template.blocks:
            parent = self._parent(template)
            if parent is None or parent in seen:
                return None
            seen.add(parent)
            template = self._template(parent.removesuffix(SUFFIX))
        return template

    def _parent(self, template: jinja2.Template) -> str | None:
        """The name in ``{% extends "..." %}``, if the template has one."""
        if template.name is None or self._env.loader is None:
            return None
        source, _, _ = self._env.loader.get_source(self._env, template.name)
        extends = self._env.parse(source).find(jinja2.nodes.Extends)
        if extends is None or not isinstance(extends.template, jinja2.nodes.Const):
            return None
        return str(extends.template.value)

    def _block(self, template: jinja2.Template, block: str, variables: dict[str, Any]) -> str:
        owner = self._owner(template, block)
        if owner is None:
            raise PromptError(self._no_block(template, block))
        template = owner
        render = template.blocks[block]
        try:
            return "".join(render(template.new_context(dict(variables)))).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(
                f"prompt template {template.filename} needs a variable that was not given "
                f"({exc.message}): pass it to the task as a keyword argument, or remove it "
                "from the template"
            ) from None
        except jinja2.TemplateError as exc:
            raise PromptError(f"prompt template {template.filename} failed: {exc}") from None

    @staticmethod
    def _no_block(template: jinja2.Template, block: str) -> str:
        return (
            f"prompt template {template.filename} defines no {{% block {block} %}}: "
            "add it (a template needs system and user blocks)"
        )
