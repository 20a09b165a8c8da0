"""Declaring bots: mistakes raise at load time with a message that says how to fix them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from agentkit import Bot, BotDefinitionError, Context
from agentkit.bot import CallbackPolicy, Team
from agentkit.runtime.loader import BotLoadError, load_bots
from agentkit.testing.deliveries import default_data, envelope

AGENTKIT = str(Path(sys.executable).with_name("agentkit"))


async def handler(ctx: Context[Any]) -> None:
    """A handler that does nothing."""


def test_unknown_event_type() -> None:
    """An event type phone.systems does not send is refused, listing the valid ones."""
    bot = Bot("b")
    with pytest.raises(BotDefinitionError, match=r"unknown event type 'voicemail\.recieved'.*"
                       r"voicemail\.received"):
        bot.on("voicemail.recieved")


def test_unknown_join_type() -> None:
    """A join on an unknown event type is refused."""
    with pytest.raises(BotDefinitionError, match="join type"):
        Bot("b").on("voicemail.received", join="transcript.readyy")


def test_handler_must_be_async() -> None:
    """A plain function as a handler is refused and told to use async def."""
    def sync_handler(ctx: Context[Any]) -> None:
        pass

    with pytest.raises(BotDefinitionError, match="async def"):
        Bot("b").on("call.completed")(sync_handler)  # type: ignore[arg-type]


def test_handler_names_unique() -> None:
    """Two handlers with one name in a bot are refused."""
    bot = Bot("b")
    bot.on("call.completed")(handler)
    with pytest.raises(BotDefinitionError, match="already has a handler named 'handler'"):
        bot.on("call.answered")(handler)


@pytest.mark.parametrize("name", ["", "Voicemail", "9lives", "a b", "x" * 70])
def test_bad_bot_name(name: str) -> None:
    """A bot name that is not lower-case letters, digits, - and _ is refused."""
    with pytest.raises(BotDefinitionError, match="bot name"):
        Bot(name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"business_hours": "Mon-Fri 9-5"}, "business_hours"),
        ({"team": None, "callbacks": None, "business_hours": "always"}, None),
    ],
)
def test_settings_checked(kwargs: dict[str, Any], message: str | None) -> None:
    """Bad business hours are refused when the bot is declared; good settings pass."""
    if message is None:
        Bot("b", **kwargs)
        return
    with pytest.raises(BotDefinitionError, match=message):
        Bot("b", **kwargs)


def test_team_needs_role_or_users() -> None:
    """A team names a role or users, exactly one of them."""
    with pytest.raises(BotDefinitionError, match="either role"):
        Team()
    with pytest.raises(BotDefinitionError, match="either role"):
        Team(role="agent", users=("usr_1",))
    with pytest.raises(BotDefinitionError, match="not one of"):
        Team(role="boss")  # type: ignore[arg-type]


def test_callback_policy_checked() -> None:
    """A callback policy with no attempts or an unknown status is refused."""
    with pytest.raises(BotDefinitionError, match="max_attempts"):
        CallbackPolicy(max_attempts=0)
    with pytest.raises(BotDefinitionError, match="unknown statuses"):
        CallbackPolicy(retry_on=frozenset({"bored"}))


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"status": "bored"}, "unknown call status"),
        ({"number": "0264 000 111"}, "number filter"),
        ({"join": "call.completed"}, "repeats"),
        ({"join_timeout": 0}, "join_timeout"),
    ],
)
def test_filters_checked(filters: dict[str, Any], message: str) -> None:
    """Filters and joins that cannot match anything are refused."""
    with pytest.raises(BotDefinitionError, match=message):
        Bot("b").on("call.completed", **filters)


def test_filters_route_only_matching_events() -> None:
    """Direction, status, number, mailbox and user filters choose which events a handler gets."""
    from agentkit.events import parse_event

    bot = Bot("b")
    bot.on("call.completed", direction="inbound", status={"missed", "voicemail"},
           number="+40264000111")(handler)
    call = default_data("call.completed")

    def event(**changes: Any) -> Any:
        return parse_event(json.dumps(envelope("call.completed", {**call, **changes})).encode())

    assert bot.listeners_for(event(status="missed"))
    assert not bot.listeners_for(event(status="completed"))
    assert not bot.listeners_for(event(status="missed", direction="outbound"))
    assert not bot.listeners_for(event(status="missed", to="+40264000222"))


def test_loader_finds_module_level_bots(tmp_path: Path) -> None:
    """Every module-level Bot in a folder is loaded; _private modules are skipped."""
    (tmp_path / "one.py").write_text(
        "from agentkit import Bot\nfirst = Bot('first')\nsecond = Bot('second')\n"
    )
    (tmp_path / "_helpers.py").write_text("raise RuntimeError('never imported')\n")
    assert sorted(bot.name for bot in load_bots(str(tmp_path))) == ["first", "second"]


def test_loader_reports_a_broken_module(tmp_path: Path) -> None:
    """A module that fails to import is named with its error."""
    (tmp_path / "broken.py").write_text("import nothing_here_at_all\n")
    with pytest.raises(BotLoadError, match=r"broken\.py failed to import: ModuleNotFoundError"):
        load_bots(str(tmp_path))


def test_loader_refuses_duplicate_names(tmp_path: Path) -> None:
    """Two bots with one name are refused."""
    (tmp_path / "a.py").write_text("from agentkit import Bot\nbot = Bot('same')\n")
    (tmp_path / "b.py").write_text("from agentkit import Bot\nbot = Bot('same')\n")
    with pytest.raises(BotLoadError, match="same"):
        load_bots(str(tmp_path))


async def _cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        AGENTKIT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_bots_command_lists_handlers(tmp_path: Path) -> None:
    """'agentkit bots' lists each bot with its handlers and what they react to."""
    (tmp_path / "vm.py").write_text(
        "from agentkit import Bot\nbot = Bot('vm')\n"
        "@bot.on('voicemail.received', join='transcript.ready')\n"
        "async def call_back(ctx):\n    pass\n"
    )
    code, out, _ = await _cli("bots", "--bots", str(tmp_path), "--json")
    assert code == 0
    (described,) = json.loads(out)
    assert described["name"] == "vm"
    assert described["handlers"][0]["on"] == "voicemail.received"
    assert described["handlers"][0]["join"] == ["transcript.ready"]


async def test_check_finds_mistakes(tmp_path: Path) -> None:
    """'agentkit check' reports a bad declaration and a missing prompt, and exits non-zero."""
    bots = tmp_path / "bots"
    bots.mkdir()
    (bots / "bad.py").write_text(
        "from agentkit import Bot\nbot = Bot('bad', prompt_names={'extract': 'nowhere'})\n"
        "@bot.on('call.completed')\nasync def h(ctx):\n    pass\n"
    )
    code, _, err = await _cli("check", "--sandbox", "--bots", str(bots),
                              "--prompts", str(tmp_path / "prompts"), cwd=tmp_path)
    assert code == 2
    assert "nowhere" in err
    assert "prompt folder" in err
    (bots / "bad.py").write_text("from agentkit import Bot\nbot = Bot('bad')\nbot.on('nope')\n")
    code, _, err = await _cli("check", "--sandbox", "--bots", str(bots), cwd=tmp_path)
    assert code == 2
    assert "unknown event type 'nope'" in err


async def test_check_passes_a_good_project(tmp_path: Path) -> None:
    """'agentkit check' exits 0 and says what it checked when all is well."""
    bots = tmp_path / "bots"
    bots.mkdir()
    (tmp_path / "prompts").mkdir()
    (bots / "ok.py").write_text(
        "from agentkit import Bot\nbot = Bot('ok')\n"
        "@bot.on('call.completed')\nasync def h(ctx):\n    pass\n"
    )
    code, out, err = await _cli("check", "--sandbox", "--bots", str(bots), cwd=tmp_path)
    assert code == 0, err
    assert "1 bot(s)" in out
