"""Replay over 100,000 stored calls: the live bots as the candidate, a fake model, flat memory.

The goal: ``agentkit replay`` streams events by cursor, so memory stays flat
however many calls there are; at least 200 calls a second on this machine,
under 300 MB of RSS, and 0 differences, since the candidate is the live bots.

**The fill (not timed).** The shipped bots (bots/) run with the project's
prompts in a ``BotHarness`` over a sample of the simulator's scenarios:
voicemails that ask for a callback (one urgent), a spam voicemail, answered
calls (a calm one, an angry one that is escalated), a missed call, and a
voicemail whose transcript never comes (its joins time out). Their model is
a fake whose answers follow the caller's words. The sample's calls are then
copied into the same SQLite file with fresh ids until it holds ``--calls``
calls: each call's row, events, jobs, action log, model answers, kept API
reads and placed calls, every id in them rewritten. The model-answer cache is
keyed by content, so the copies share the sample's entries.

**The replay (timed).** ``agentkit replay --bots bots --model fake`` runs as a
subprocess over that file, as an operator runs it; its RSS is read from /proc
every 0.2 s. ``calls_per_s`` is the report's calls over the replay's own run
time (from its report); ``differences`` is every difference it counted.

The last line is one JSON object: ``calls``, ``calls_per_s``, ``rss_mb_max``,
``differences``, and ``fill_s``, ``replay_s``, ``sample_calls``, ``events``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from agentkit.logs import configure_logging
from agentkit.runtime.loader import load_bots
from agentkit.store.base import CallQuery
from agentkit.testing.fake_llm import minimal_answer
from agentkit.testing.harness import BotHarness

ROOT = Path(__file__).resolve().parents[1]
AGENTKIT = str(Path(sys.executable).with_name("agentkit"))
CALLERS = ["+442079460101", "+442079460102", "+442079460103", "+442079460104",
           "+442079460105", "+442079460106", "+442079460107"]
# Every id a copy rewrites: calls and events (and the ids made of them).
_ID = re.compile(rb"(?:cal|evt)_[0-9A-Z]{26}")
COPY_BATCH = 2000


def log(message: str) -> None:
    print(message, flush=True)


def follows_the_words(body: dict[str, Any]) -> str:
    """The fake model: answers shaped by the caller's words, as a real model's are."""
    answer = json.loads(str(minimal_answer(body)))
    user = " ".join(str(m["content"]) for m in body["messages"][1:])
    words = user.split("<transcript>")[-1].split("</transcript>")[0].lower()
    if "wants_callback" in answer:
        answer.update(reason="a billing question" if "invoice" in words else "a question",
                      urgency="urgent" if "outage" in words else "normal",
                      wants_callback="call me" in words, spam="prize" in words,
                      language="en")
    elif "escalate" in answer:
        angry = "cancel" in words
        answer.update(escalate=angry, reasons=["cancellation_threat"] if angry else [],
                      explanation="threatens to cancel" if angry else "calm")
    elif "sentiment" in answer:
        answer.update(summary="A caller asked about an invoice.", topics=["billing"],
                      sentiment="negative" if "cancel" in words else "neutral")
    return json.dumps(answer)


async def run_sample(folder: Path) -> list[str]:
    """The live bots over the scenarios; returns the sample's call ids."""
    async with BotHarness(load_bots(str(ROOT / "bots")), folder,
                          prompts=ROOT / "prompts") as h:
        h.llm.responder = follows_the_words
        h.sim.leave_voicemail(CALLERS[0], words="Hi, invoice 4011 is wrong. Please call me.")
        h.sim.leave_voicemail(CALLERS[1], words="Our phones are down, an outage. Call me now.")
        h.sim.leave_voicemail(CALLERS[2], words="You have won a prize, press one.")
        h.sim.inbound_call(CALLERS[3], dialogue=(
            ("caller", "Can you send me the invoice again?"), ("agent", "Sure.")),
            recording=True)
        h.sim.inbound_call(CALLERS[4], dialogue=(
            ("caller", "I will cancel the contract, third outage this month."),
            ("agent", "I am sorry.")), recording=True)
        h.sim.inbound_call(CALLERS[5], outcome="missed")
        await h.settle(timeout=60)
        h.sim.hold_deliveries()
        h.sim.leave_voicemail(CALLERS[6], words="Call me about the outage.")
        await h.sim.settle()
        h.sim.release_deliveries(lambda held: [e for e in held
                                               if e.type != "transcript.ready"])
        await h.settle(timeout=60)
        await h.run_scheduled("join-timeout")
        await h.settle(timeout=60)
        rows = await h.store.list_calls(CallQuery(), limit=1000)
    return [row.call_id for row in rows]


class Copier:
    """Copies the sample's calls, every id rewritten, straight into the SQLite file."""

    TABLES = ("events", "jobs", "actions", "model_answers", "api_reads", "placed_calls")
    # Columns left for SQLite to number.
    NUMBERED = {"events": "seq", "jobs": "id", "model_answers": "id"}

    def __init__(self, db: sqlite3.Connection, calls: list[str]) -> None:
        self.db = db
        self.rows: list[tuple[str, dict[str, list[tuple[Any, ...]]]]] = []
        self.columns: dict[str, list[str]] = {}
        for table in (*self.TABLES, "calls"):
            names = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            self.columns[table] = [n for n in names if n != self.NUMBERED.get(table)]
        for call_id in calls:
            found = {table: db.execute(
                f"SELECT {', '.join(self.columns[table])} FROM {table} WHERE call_id = ?",
                (call_id,)).fetchall() for table in (*self.TABLES, "calls")}
            self.rows.append((call_id, found))
        self.events = sum(len(found["events"]) for _, found in self.rows)

    def copy(self, copies: int, progress_every: int = 10_000) -> int:
        """Write ``copies`` copies of every sample call; returns the calls written."""
        written = 0
        started = time.monotonic()
        for k in range(1, copies + 1):
            suffix = f"X{k:07d}".encode()
            if k % COPY_BATCH == 1:
                self.db.execute("BEGIN")
            for _, found in self.rows:
                seqs: dict[str, int] = {}
                for row in found["events"]:
                    values = [_fresh(v, suffix) for v in row]
                    cursor = self.db.execute(_insert("events", self.columns["events"]), values)
                    seqs[str(values[self.columns["events"].index("id")])] = \
                        int(cursor.lastrowid or 0)
                for table in ("calls", "jobs", "actions", "model_answers", "api_reads",
                              "placed_calls"):
                    columns = self.columns[table]
                    rows = [[_fresh(v, suffix) for v in row] for row in found[table]]
                    if table == "jobs":
                        at_seq, at_event = columns.index("seq"), columns.index("event_id")
                        for values in rows:
                            values[at_seq] = seqs.get(str(values[at_event]), values[at_seq])
                    self.db.executemany(_insert(table, columns), rows)
                written += 1
            if k % COPY_BATCH == 0 or k == copies:
                self.db.execute("COMMIT")
            if written % progress_every < len(self.rows):
                rate = written / max(time.monotonic() - started, 1e-9)
                log(f"fill: {written:,} calls copied ({rate:,.0f}/s)")
        return written


def _insert(table: str, columns: list[str]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})")


def _fresh(value: Any, suffix: bytes) -> Any:
    if isinstance(value, bytes):
        return _ID.sub(lambda m: m.group(0) + suffix, value)
    if isinstance(value, str):
        return _ID.sub(lambda m: m.group(0) + suffix, value.encode()).decode()
    return value


def read_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmHWM:\s+(\d+) kB", status) or re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


async def replay(database: Path, folder: Path) -> tuple[dict[str, Any], float, float]:
    """``agentkit replay`` over the file; its report, its peak RSS (MB) and its wall time."""
    report_path = folder / "report.json"
    env = {**os.environ, "AGENTKIT_DATABASE_URL": f"sqlite:///{database}",
           "AGENTKIT_MODEL": "fake-model", "ODYGY_BASE_URL": "http://127.0.0.1:9/v1",
           "AGENTKIT_DIAL_COUNTRIES": "RO,GB", "AGENTKIT_BUSINESS_HOURS": "always",
           "AGENTKIT_REPLAY_DIR": str(folder / "kept"), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, "replay", "--bots", str(ROOT / "bots"), "--prompts", str(ROOT / "prompts"),
        "--model", "fake", "--report", str(report_path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env, cwd=folder,
    )
    assert process.stderr is not None
    peak = 0.0

    async def sample() -> None:
        nonlocal peak
        while process.returncode is None:
            peak = max(peak, read_rss_mb(process.pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    async for line in process.stderr:
        text = line.decode().rstrip()
        if text.startswith("replay:"):
            log(text)
    await process.wait()
    wall = time.monotonic() - started
    sampler.cancel()
    if process.returncode not in (0, 1):
        raise SystemExit(f"agentkit replay failed with exit {process.returncode}")
    return json.loads(report_path.read_text()), peak, wall


async def main(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging(level="warning")
    folder = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    try:
        return await measure(folder, args)
    finally:
        if args.keep:
            log(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


async def measure(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    database = folder / "agentkit.db"
    filling = time.monotonic()
    log("fill: running the shipped bots over the simulator's scenarios")
    sample = await run_sample(folder)
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    copier = Copier(db, sample)
    log(f"fill: {len(sample)} sample calls, {copier.events} events; copying")
    copies = max(0, -(-(args.calls - len(sample)) // len(sample)))
    written = copier.copy(copies)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    events = db.execute("SELECT COUNT(*) FROM events WHERE call_id IS NOT NULL").fetchone()[0]
    calls = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    db.close()
    fill_s = time.monotonic() - filling
    log(f"fill: {calls:,} calls ({written:,} copied), {events:,} events in {fill_s:.0f} s")
    report, rss, wall = await replay(database, folder)
    run_s = (datetime.fromisoformat(report["finished_at"])
             - datetime.fromisoformat(report["started_at"])).total_seconds()
    differences = sum(report["counts"].values())
    return {
        "calls": report["calls"],
        "calls_per_s": round(report["calls"] / run_s, 1),
        "rss_mb_max": round(rss, 1),
        "differences": differences,
        "errors": report["errors"],
        "replay_s": round(run_s, 1),
        "replay_wall_s": round(wall, 1),
        "fill_s": round(fill_s, 1),
        "sample_calls": len(sample),
        "events": events,
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000,
                        help="calls in the store (default 100,000)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the store and the report (their folder is printed)")
    args = parser.parse_args()
    figures = asyncio.run(main(args))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    cli()
