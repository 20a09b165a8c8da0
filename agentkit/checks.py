"""``agentkit check``: everything that can be found wrong before start-up, at once."""

from __future__ import annotations

from pathlib import Path

from agentkit.errors import ConfigError
from agentkit.llm import PromptError, PromptLibrary
from agentkit.runtime.loader import load_bots
from agentkit.settings import Settings

TASK_PROMPTS = ("summarise", "classify", "extract", "decide")


def check_project(*, bots: str, prompts: str, sandbox: bool) -> tuple[list[str], str]:
    """The problems found (empty when all is well) and a one-line summary."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings.from_env(sandbox=sandbox)
    except ConfigError as exc:
        problems.append(str(exc))
    if settings is not None:
        from agentkit.actions.hours import BusinessHours

        try:
            BusinessHours.parse(settings.business_hours)
        except ConfigError as exc:
            problems.append(f"AGENTKIT_BUSINESS_HOURS: {exc}")
    if not Path(prompts).is_dir():
        problems.append(f"the prompt folder {prompts} does not exist")
    library = PromptLibrary.for_project(prompts)
    try:
        library.check(TASK_PROMPTS)
    except PromptError as exc:
        problems.append(str(exc))
    try:
        loaded = load_bots(bots)
    except ConfigError as exc:
        problems.append(str(exc))
        loaded = []
    handlers = 0
    for bot in loaded:
        handlers += len(bot.listeners) + len(bot.callback_listeners)
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
    summary = f"{len(loaded)} bot(s), {handlers} handler(s), settings and prompts in order"
    return problems, summary


def _template_problems(library: PromptLibrary, bot: str, name: str, why: str) -> list[str]:
    """What is wrong with one of a bot's templates: missing, broken, or without its blocks."""
    try:
        library.check([name])
    except PromptError as exc:
        return [f"bot {bot!r}: prompt {name!r} ({why}): {exc}"]
    return []
