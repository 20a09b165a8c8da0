"""Everything that can be found wrong before start-up, at once.

``agentkit check`` prints what ``check_project`` finds; ``agentkit run`` runs
the same checks before it listens, and starts only when there is nothing to
report, with the settings and bots the checks loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentkit.bot import Bot, unknown_shadow_bots
from agentkit.errors import ConfigError
from agentkit.llm import PromptError, PromptLibrary
from agentkit.runtime.loader import load_bots
from agentkit.settings import Settings

TASK_PROMPTS = ("summarise", "classify", "extract", "decide")


@dataclass
class ProjectCheck:
    """What the checks found, and what they loaded on the way."""

    problems: list[str] = field(default_factory=list)
    settings: Settings | None = None
    bots: list[Bot] = field(default_factory=list)
    prompts: Path | None = None

    @property
    def summary(self) -> str:
        handlers = sum(len(bot.listeners) + len(bot.callback_listeners) for bot in self.bots)
        return (f"{len(self.bots)} bot(s), {handlers} handler(s), settings and prompts in "
                f"order (prompts: {self.prompts})")


def check_project(
    *,
    bots: str,
    prompts: str | Path | None,
    sandbox: bool,
    environ: Mapping[str, str] | None = None,
    load: bool = True,
) -> ProjectCheck:
    """Check the settings, the prompt folder and (with ``load``) the bots and their prompts.

    ``prompts`` is the folder the user named; None takes ``prompts/`` beside
    the bots' folder, then ``./prompts`` (``prompts_folder``).
    """
    from agentkit.runtime.loader import prompts_folder

    found = ProjectCheck()
    try:
        found.settings = Settings.from_env(environ, sandbox=sandbox)
    except ConfigError as exc:
        found.problems.append(str(exc))
    if found.settings is not None:
        from agentkit.actions.hours import BusinessHours

        try:
            BusinessHours.parse(found.settings.business_hours)
        except ConfigError as exc:
            found.problems.append(f"AGENTKIT_BUSINESS_HOURS: {exc}")
    if not load:
        return found
    given = prompts or (found.settings.prompts if found.settings else None)
    found.prompts = prompts_folder(bots, str(given) if given else None)
    if given and not found.prompts.is_dir():
        found.problems.append(f"the prompt folder {found.prompts} does not exist")
    library = PromptLibrary.for_project(found.prompts)
    try:
        library.check(TASK_PROMPTS)
    except PromptError as exc:
        found.problems.append(str(exc))
    try:
        found.bots = load_bots(bots)
    except ConfigError as exc:
        found.problems.append(str(exc))
    for bot in found.bots:
        found.problems += _bot_problems(bot, library, found.settings)
    shadow = unknown_shadow_bots(found.settings.shadow, found.bots) if found.settings else None
    if shadow is not None:
        found.problems.append(shadow)
    return found


def _bot_problems(bot: Bot, library: PromptLibrary, settings: Settings | None) -> list[str]:
    problems: list[str] = []
    if bot.prompts is not None and not bot.prompts.is_dir():
        problems.append(f"bot {bot.name!r}: its prompt folder {bot.prompts} does not exist")
    own = library.before(bot.prompts) if bot.prompts else library
    for task, name in sorted(bot.prompt_names.items()):
        if task not in TASK_PROMPTS:
            problems.append(
                f"bot {bot.name!r}: prompt_names has unknown task {task!r}; "
                f"tasks are {', '.join(TASK_PROMPTS)}"
            )
        else:
            problems += _template_problems(own, bot.name, name, f"for {task}")
    for name in bot.templates:
        problems += _template_problems(own, bot.name, name, "listed in templates")
    if not bot.listeners and not bot.callback_listeners:
        problems.append(f"bot {bot.name!r} has no handlers: decorate one with @bot.on(...)")
    wanted = bot.dial_policy.allowed_countries
    deployment = settings.dial_countries if settings is not None else None
    if wanted is not None and deployment is not None and not wanted <= deployment:
        problems.append(
            f"bot {bot.name!r}: its dial policy allows {', '.join(sorted(wanted - deployment))}, "
            f"which AGENTKIT_DIAL_COUNTRIES ({', '.join(sorted(deployment))}) does not: a bot "
            "may narrow the deployment's countries, never widen them"
        )
    return problems


def _template_problems(library: PromptLibrary, bot: str, name: str, why: str) -> list[str]:
    """What is wrong with one of a bot's templates: missing, broken, or without its blocks."""
    try:
        library.check([name])
    except PromptError as exc:
        return [f"bot {bot!r}: prompt {name!r} ({why}): {exc}"]
    return []
