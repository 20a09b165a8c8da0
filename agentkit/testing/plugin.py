"""agentkit's pytest plugin: installed with agentkit, loaded by pytest on its own.

It gives every project the fixtures ``sim``, ``sim_config``, ``odygy``,
``fake_llm`` and ``recorder``, and runs ``async def`` tests without
configuration: unless the project sets pytest-asyncio's ``asyncio_mode``
itself (in its ini file or with ``--asyncio-mode``), the mode is ``auto``.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import pytest

from agentkit.testing.fixtures import fake_llm, odygy, recorder, sim, sim_config

__all__ = ["fake_llm", "odygy", "recorder", "sim", "sim_config"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("asyncio"):
        return
    if getattr(config.option, "asyncio_mode", None) or _ini_sets_mode(config.inipath):
        return
    config.option.asyncio_mode = "auto"


def _ini_sets_mode(path: Path | None) -> bool:
    """Whether the project's ini file chooses ``asyncio_mode`` itself."""
    if path is None or not path.is_file():
        return False
    try:
        if path.suffix == ".toml":
            options = tomllib.loads(path.read_text()).get("tool", {}).get("pytest", {})
            return any("asyncio_mode" in section for section in
                       (options.get("ini_options", {}), options) if isinstance(section, dict))
        parser = configparser.ConfigParser()
        parser.read(path)
        return any(parser.has_option(section, "asyncio_mode")
                   for section in ("pytest", "tool:pytest") if parser.has_section(section))
    except (OSError, ValueError, configparser.Error):
        return False
