"""Replay as users run it: ``agentkit run`` served the shipped bots, stopped, and then
``agentkit replay`` read its database from another folder, the simulator still answering.

The simulator outlives agentkit (tests/approvals/test_served.py's set-up, approvals off,
no model, so the voicemail bot calls every caller back). Judged outside: no call reaches
the simulator during the replay, and the report says what the candidate would do.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from agentkit.testing import wait_until
from tests.approvals.test_served import BOTS, CALLER, Served, served
from tests.process import API_KEY
from tests.test_cli import run

__all__ = ["served"]

# A candidate voicemail bot that may call only British numbers: the caller is Romanian.
BRITISH_ONLY = '''
from agentkit import DialPolicy
from agentkit.runtime.loader import load_bots

(bot,) = [b for b in load_bots({bots!r}) if b.name == "voicemail-callback"]
bot.dial_policy = DialPolicy(allowed_countries=frozenset({{"GB"}}))
'''


async def test_replay_after_agentkit_run_places_no_call(served: Served) -> None:
    """The live voicemail bot replayed: 0 differences; a candidate that may not dial the
    caller's country: a changed callback, refused, and --fail-on exits 1. The simulator
    sees no new call either time."""
    process = await served.start(AGENTKIT_APPROVALS="")
    served.leave_voicemail()
    await wait_until(lambda: len(served.calls()) == 1, timeout=20,
                     message="the live callback at the simulator")
    await wait_until(lambda: process.logged("callback.finished"), timeout=20,
                     message="the live callback to end")
    process.signal(signal.SIGTERM)
    assert await process.wait() == 0
    env = {"ODYGY_API_KEY": API_KEY, "ODYGY_BASE_URL": served.sim.base_url,
           "AGENTKIT_DATABASE_URL": served.database, "AGENTKIT_REPLAY_DIR": "kept",
           "PATH": "/usr/bin:/bin"}
    here = served.tmp / "elsewhere"
    code, out, err = await run("replay", "--bots", BOTS, "--since", "1h",
                               "--report", "same.json", env=env, cwd=here)
    assert code == 0, err
    same = json.loads((here / "same.json").read_text())
    assert same["counts"] == {} and same["live"]["actions"]["callback"] == 1
    candidate = write_candidate(served.tmp / "candidate")
    code, out, err = await run("replay", "--bots", str(candidate), "--since", "1h",
                               "--fail-on", "changed-callbacks", "--report", "gb.json",
                               env=env, cwd=here)
    assert code == 1, err
    assert "fails on: changed-callbacks (1)" in out
    report = json.loads((here / "gb.json").read_text())
    ((changed,),) = [call["differences"]["actions"] for call in report["differing"]]
    assert changed["candidate"]["decision"] == "refused" and changed["live"]["to"] == CALLER
    assert len(served.calls()) == 1


def write_candidate(folder: Path) -> Path:
    folder.mkdir()
    (folder / "voicemail_callback.py").write_text(BRITISH_ONLY.format(bots=BOTS))
    return folder
