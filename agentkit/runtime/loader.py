"""Finding bots (every module-level ``Bot`` in a folder of modules or a dotted module),
and the project's prompt folder beside them.

Paths a project gives relative to itself are resolved against the bots'
folder, never against the current folder: a service manager starts agentkit
from anywhere.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from agentkit.bot import Bot, BotDefinitionError
from agentkit.errors import ConfigError


class BotLoadError(ConfigError):
    """Bots could not be loaded; the message names the module and the cause."""


def load_bots(spec: str) -> list[Bot]:
    """The bots of ``spec``: a folder of ``*.py`` modules, one file, or a dotted module.

    Modules whose names start with ``_`` are skipped. Two bots with one name,
    or a module that fails to import, raise BotLoadError.
    """
    path = Path(spec)
    if path.is_dir():
        modules = [_import_file(file) for file in sorted(path.glob("*.py"))
                   if not file.name.startswith("_")]
    elif path.suffix == ".py" and path.is_file():
        modules = [_import_file(path)]
    elif path.suffix == ".py" or "/" in spec or spec.startswith("."):
        raise BotLoadError(f"no bots at {spec!r}: give a folder of modules, a .py file or a "
                           "dotted module name")
    else:
        modules = [_import_dotted(spec)]
    bots: list[Bot] = []
    for module in modules:
        found = [value for value in vars(module).values() if isinstance(value, Bot)]
        home = Path(module.__file__).resolve().parent if module.__file__ else None
        for bot in found:
            if bot.prompts is not None and not bot.prompts.is_absolute() and home is not None:
                # A bot's own prompt folder is named relative to its module.
                bot.prompts = home / bot.prompts
        bots.extend(found)
    names = [bot.name for bot in bots]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BotLoadError(f"two bots are named {', '.join(repeated)}: bot names must be unique")
    return bots


def _import_file(file: Path) -> ModuleType:
    name = f"agentkit_bots.{file.stem}"
    module_spec = importlib.util.spec_from_file_location(name, file)
    if module_spec is None or module_spec.loader is None:
        raise BotLoadError(f"cannot import {file}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BotDefinitionError:
        raise
    except Exception as exc:
        del sys.modules[name]
        raise BotLoadError(f"bot module {file} failed to import: {type(exc).__name__}: {exc}") \
            from exc
    return module


def _import_dotted(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except BotDefinitionError:
        raise
    except Exception as exc:
        raise BotLoadError(f"bot module {name!r} failed to import: {type(exc).__name__}: {exc}") \
            from exc


def bots_folder(spec: str) -> Path | None:
    """The folder the bots of ``spec`` live in: the folder itself, a file's, a module's."""
    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    if path.suffix == ".py":
        return path.resolve().parent if path.is_file() else None
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError):
        return None
    if found is None or found.origin is None:
        return None
    return Path(found.origin).resolve().parent


def prompts_folder(bots: str, given: str | None = None) -> Path:
    """The project's prompt folder, as an absolute path.

    ``given`` (``--prompts`` or AGENTKIT_PROMPTS) wins; otherwise ``prompts/``
    beside the bots' folder, then ``./prompts``. When neither exists, the first
    (so that a message can name where prompts are expected).
    """
    if given:
        return Path(given).expanduser().resolve()
    folder = bots_folder(bots)
    beside = folder.parent / "prompts" if folder is not None else None
    if beside is not None and beside.is_dir():
        return beside
    here = Path("prompts").resolve()
    if here.is_dir() or beside is None:
        return here
    return beside
