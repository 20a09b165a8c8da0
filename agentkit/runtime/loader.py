"""Finding bots: every module-level ``Bot`` in a folder of modules or a dotted module."""

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
        bots.extend(value for value in vars(module).values() if isinstance(value, Bot))
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
