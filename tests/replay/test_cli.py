"""``agentkit replay`` as users run it: a subprocess, from another folder, over a deployment's
database file, after the deployment stopped."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentkit.runtime.loader import load_bots
from agentkit.testing.harness import BotHarness
from tests.replay.support import STRICT, fill
from tests.shipped.helpers import PROMPTS, ROOT
from tests.test_cli import run

BOTS = str(ROOT / "bots")


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The shipped bots' store after the fill, and the environment ``agentkit run`` had (the
    harness's: the sandbox's dial countries, always open)."""
    async with BotHarness(load_bots(BOTS), tmp_path / "live", prompts=PROMPTS) as h:
        await fill(h)
    yield {**os.environ, "AGENTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'live/agentkit.db'}",
           "AGENTKIT_MODEL": "fake-model", "ODYGY_BASE_URL": "http://127.0.0.1:9/v1",
           "AGENTKIT_DIAL_COUNTRIES": "RO,GB", "AGENTKIT_BUSINESS_HOURS": "always",
           "AGENTKIT_REPLAY_DIR": str(tmp_path / "kept")}


async def test_replay_of_the_live_bots_finds_nothing(deployment: dict[str, str],
                                                      tmp_path: Path) -> None:
    """The live bots replayed with the fake model: no difference, exit 0 under --fail-on, the
    table on stdout, the JSON report written and kept for the console."""
    code, out, err = await run(
        "replay", "--bots", BOTS, "--model", "fake", "--report", "out.json",
        "--fail-on", "new-callbacks,removed-callbacks,changed-callbacks", "--since", "1d",
        env=deployment, cwd=tmp_path)
    assert code == 0, err
    assert "no differences" in out
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["calls"] >= 5 and report["counts"] == {} and report["failing"] == []
    assert report["replayed"]["cached_answers"] == report["replayed"]["model_answers"] > 0
    assert len(list((tmp_path / "kept").glob("*.json"))) == 1


async def test_fail_on_a_prompt_change_exits_1(deployment: dict[str, str],
                                               tmp_path: Path) -> None:
    """A changed triage prompt whose fake answers want no callback: --fail-on removed-callbacks
    exits 1, naming it, and the HTML report shows the removed callbacks."""
    prompts = tmp_path / "candidate-prompts"
    shutil.copytree(PROMPTS, prompts)
    triage = prompts / "voicemail_triage.j2"
    triage.write_text(triage.read_text().replace("{% block system %}",
                                                 "{% block system %}\n" + STRICT))
    code, out, err = await run(
        "replay", "--bots", BOTS, "--prompts", str(prompts), "--model", "fake",
        "--fail-on", "removed-callbacks", "--report", "out.html", env=deployment, cwd=tmp_path)
    assert code == 1, err
    assert "removed-callbacks" in out
    page = (tmp_path / "out.html").read_text()
    assert "removed" in page and "+442079460001" in page


@pytest.mark.parametrize(("args", "says"), [
    (["--since", "yesterday"], "--since 'yesterday'"),
    (["--fail-on", "new-calls"], "--fail-on does not know new-calls"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--call", "cal_nope"], "no call 'cal_nope'"),
    (["--report", "out.txt"], "name a .json or .html file"),
    (["--database-url", "sqlite:////tmp/agentkit-nowhere/x.db"], "no store at"),
    (["--since", "2099-01-01", "--fail-on", "new-callbacks"], "--fail-on judged nothing"),
])
async def test_bad_options_are_refused_plainly(deployment: dict[str, str], tmp_path: Path,
                                               args: list[str], says: str) -> None:
    """A wrong option gets one line saying what is wrong, exit 2, and no traceback."""
    code, _out, err = await run("replay", "--bots", BOTS, "--model", "fake", *args,
                               env=deployment, cwd=tmp_path)
    assert code == 2 and says in err and "Traceback" not in err
    assert nothing_at(Path("/tmp/agentkit-nowhere"))


async def test_shadow_without_against_is_refused(deployment: dict[str, str],
                                                 tmp_path: Path) -> None:
    """--shadow alone would compare the bot with itself: refused, naming --against."""
    code, _out, err = await run("replay", "--shadow", "voicemail-callback", env=deployment,
                                cwd=tmp_path)
    assert code == 2 and "--shadow needs --against" in err


async def test_the_fake_models_answers_are_not_kept(deployment: dict[str, str],
                                                    tmp_path: Path) -> None:
    """A changed prompt replayed with --model fake asks the fake, and keeps none of its answers
    in the answer cache the live bots read."""
    prompts = tmp_path / "candidate-prompts"
    shutil.copytree(PROMPTS, prompts)
    triage = prompts / "voicemail_triage.j2"
    triage.write_text(triage.read_text().replace("{% block system %}",
                                                 "{% block system %}\n" + STRICT))
    database = deployment["AGENTKIT_DATABASE_URL"].removeprefix("sqlite:///")
    before = cached(database)
    code, _out, err = await run("replay", "--bots", BOTS, "--prompts", str(prompts),
                                "--model", "fake", "--report", "out.json", env=deployment,
                                cwd=tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["replayed"]["model_answers"] > report["replayed"]["cached_answers"]
    assert cached(database) == before


def nothing_at(path: Path) -> bool:
    """A refused replay made no folder for a store it did not find."""
    return not path.exists()


def cached(database: str) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0])


async def test_shadow_needs_no_bots(deployment: dict[str, str], tmp_path: Path) -> None:
    """--shadow reads the action log alone: a bot that never ran in shadow has no actions, so
    every live voicemail action it is compared with shows as removed, and a warning says so."""
    code, _out, err = await run("replay", "--shadow", "voicemail-v2", "--against",
                               "voicemail-callback", "--report", "out.json",
                               env=deployment, cwd=tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["source"] == "shadow" and report["counts"]["removed-callbacks"] == 2
    assert "voicemail-v2 recorded nothing in this period" in err
