"""docs/replay.md's worked example: the script runs from any folder, and shows what the doc
says it shows: the billing voicemail's callback turning urgent, and nothing else."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "examples" / "replay_prompt_change.py"
DOC = ROOT / "docs" / "replay.md"
BILLING_CALLER = "+442079460101"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    folder: str


def run_example(folder: Path) -> Run:
    """The script, run as a reader would: its own interpreter, from an empty folder, with
    no agentkit, phone.systems or model settings in the environment."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "PYTEST_", "PYTHONPATH"))}
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return Run(done.returncode, done.stdout, done.stderr, str(folder))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The script's run, once per test run: the pytest-xdist workers share it through a
    file, under a lock, rather than each running it again."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return run_example(tmp_path_factory.mktemp("elsewhere"))
    shared = tmp_path_factory.getbasetemp().parent / f"replay-example-{run_id}"
    shared.mkdir(exist_ok=True)
    lock = os.open(shared / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # closing the file unlocks it
        kept = shared / "run.json"
        if kept.exists():
            return Run(**json.loads(kept.read_text(encoding="utf-8")))
        run = run_example(shared / "elsewhere")
        kept.write_text(json.dumps(asdict(run)), encoding="utf-8")
        return run
    finally:
        os.close(lock)


def section(text: str, title: str) -> list[str]:
    """The lines under ``title`` up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    block: list[str] = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        block.append(line)
    return block


def normalised(text: str) -> list[str]:
    """The report with what changes from run to run taken out: call ids, times, token
    figures (they follow the prompts' length), and the spaces that align them."""
    text = re.sub(r"cal_[0-9A-Z]+", "cal_ID", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TIME", text)
    lines = []
    for line in text.strip().splitlines():
        if re.match(r"\s*(tokens|prompt|completion)\s", line):
            line = re.sub(r"[\d,]+", "N", line)
        lines.append(" ".join(line.split()))
    return lines


def test_runs_from_another_folder_and_leaves_nothing_there(example: Run) -> None:
    """Started from an empty folder, the script exits 0 without a traceback and writes
    nothing where it was started."""
    assert example.code == 0, example.err[-3000:]
    assert "Traceback" not in example.err
    assert list(Path(example.folder).iterdir()) == []


def test_the_billing_callback_turns_urgent(example: Run) -> None:
    """The report's one differing call is the billing voicemail: its callback's urgency and
    the model's urgency field go from normal to urgent."""
    calls = section(example.out, "Calls that differ")
    assert calls[0].endswith(f"from {BILLING_CALLER}")
    assert calls[1:] == ['  changed callback: urgency normal -> urgent',
                         '  changed field extract.urgency: "normal" -> "urgent"']


def test_nothing_else_differs(example: Run) -> None:
    """One changed callback and one changed field, on one call, no handler error, and the
    --fail-on changed-callbacks verdict fails."""
    assert [line.split() for line in section(example.out, "Differences")] == [
        ["changed-callbacks", "1"], ["changed-fields", "1"]]
    assert re.search(r"calls differing\s+1\n", example.out)
    assert re.search(r"handler errors\s+0\n", example.out)
    assert example.out.rstrip().endswith("fails on: changed-callbacks (1)")


def test_unchanged_prompts_come_from_the_cache(example: Run) -> None:
    """The escalation checks, whose prompt did not change, are answered from the answer
    cache: 3 of the candidate's 6 model answers."""
    assert [line.split() for line in section(example.out, "Totals")][2:4] == [
        ["model", "answers", "6", "6"], ["from", "cache", "0", "3"]]


def test_the_doc_prints_this_output(example: Run) -> None:
    """docs/replay.md shows the script's output as it is now, call ids and times aside."""
    shown = DOC.read_text(encoding="utf-8").split(
        "```text\nLive: the shipped bots", 1)[1].split("```", 1)[0]
    assert normalised("Live: the shipped bots" + shown) == normalised(example.out), (
        "docs/replay.md is out of date: run python docs/examples/replay_prompt_change.py "
        "and paste its output into the worked example")
