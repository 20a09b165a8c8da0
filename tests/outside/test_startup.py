"""Start-up as a service manager does it: every check before listening, all problems at once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agentkit.sim import SANDBOX_API_KEY, SANDBOX_WEBHOOK_SECRET
from tests.outside.support import API_KEY, SECRET, project
from tests.process import AGENTKIT


async def agentkit(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """Run ``agentkit ARGS`` from an empty folder with a deployment's settings; code, out, err."""
    settings = {
        "ODYGY_API_KEY": API_KEY, "ODYGY_WEBHOOK_SECRET": SECRET,
        "ODYGY_BASE_URL": "http://127.0.0.1:9/v1",
        "AGENTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'agentkit.db'}", **env,
    }
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "SLACK_", "TEAMS_"))}
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**clean, **settings}, cwd=tmp_path / "elsewhere",
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return project(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("ODYGY_WEBHOOK_SECRET", "whsec_short", "too short"),
        ("ODYGY_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET, "published"),
        ("ODYGY_WEBHOOK_SECRET", f"{SECRET},whsec_old", "published"),
        ("ODYGY_API_KEY", SANDBOX_API_KEY, "sandbox's published key"),
    ],
    ids=["short", "sandbox-secret", "docs-secret-in-rotation", "sandbox-key"],
)
async def test_weak_and_published_credentials_refused(
    tmp_path: Path, app: Path, variable: str, value: str, complaint: str
) -> None:
    """agentkit run and agentkit check exit 2 on a weak or published secret or key."""
    for command in (["run", "--port", "0"], ["check"]):
        code, out, err = await agentkit(tmp_path, *command, "--bots", str(app / "bots"),
                                        **{variable: value})
        assert code == 2, (command, out, err)
        assert complaint in err
        assert "agentkit.started" not in out


async def test_run_lists_every_problem_before_listening(tmp_path: Path, app: Path) -> None:
    """A missing prompt and a short secret: both named, exit 2, nothing served."""
    (app / "prompts" / "voicemail_triage.j2").unlink()
    code, out, err = await agentkit(tmp_path, "run", "--bots", str(app / "bots"),
                                    "--port", "0", ODYGY_WEBHOOK_SECRET="whsec_short")
    assert code == 2
    assert "voicemail_triage.j2" in err and "too short" in err
    assert "2 problem(s) found" in err
    assert "agentkit.started" not in out


async def test_check_from_elsewhere_finds_the_prompts_beside_the_bots(
    tmp_path: Path, app: Path
) -> None:
    """agentkit check --bots /srv/app/bots from another folder uses /srv/app/prompts."""
    code, out, err = await agentkit(tmp_path, "check", "--bots", str(app / "bots"))
    assert code == 0, err
    assert str(app / "prompts") in out


async def test_prompts_variable_names_the_folder(tmp_path: Path, app: Path) -> None:
    """AGENTKIT_PROMPTS pointing at a folder without the bots' templates is a problem."""
    empty = tmp_path / "no-prompts"
    empty.mkdir()
    code, _, err = await agentkit(tmp_path, "check", "--bots", str(app / "bots"),
                                  AGENTKIT_PROMPTS=str(empty))
    assert code == 2
    assert "voicemail_triage.j2" in err and str(empty) in err


async def test_a_bot_may_not_widen_the_deployments_countries(tmp_path: Path, app: Path) -> None:
    """A bot allowing a country AGENTKIT_DIAL_COUNTRIES does not is refused at start-up."""
    (app / "bots" / "abroad.py").write_text(
        "from agentkit import Bot, Context\n"
        "from agentkit.actions.policy import DialPolicy\n\n"
        "bot = Bot('abroad', dial_policy=DialPolicy(allowed_countries=frozenset({'RO', 'SO'})))\n"
        "\n\n@bot.on('voicemail.received')\n"
        "async def call(ctx: Context) -> None:\n"
        "    await ctx.actions.callback()\n"
    )
    code, _, err = await agentkit(tmp_path, "run", "--bots", str(app / "bots"), "--port", "0",
                                  AGENTKIT_DIAL_COUNTRIES="RO")
    assert code == 2
    assert "'abroad'" in err and "SO" in err and "never widen" in err
