"""The whole pipeline: voicemails delivered to ``agentkit run``, triaged by a model, called back.

Three processes, as users run them, plus this one:

- ``agentkit sim --no-limits --call-creation-seconds S --time-scale 0.001``, the
  phone.systems simulator in its own process: its rate limits lifted and its calls
  short (``benchmarks/client_ratelimit.py`` measures the client under the limits);
- ``agentkit run --bots bots/voicemail_callback.py --concurrency C``, the real CLI
  with the shipped voicemail bot only, a fresh store (a SQLite file by default;
  ``--store postgres`` creates a database of its own on ``--postgres-url`` and drops
  it afterwards), ``AGENTKIT_BUSINESS_HOURS=always`` so that every callback is
  placed at once, logging at ``--log-level`` (warning by default, as
  ``benchmarks/ingest.py`` runs it; the bot's chat notes go to the console, as they
  do for a user with no chat URL, and are drained here);
- in this process, the fake model (``agentkit.testing.FakeLlm``) that waits
  ``--latency`` L seconds before each answer and then says: a normal-urgency
  voicemail, not spam, wants a callback, no other number; and the sender.

Before the clock starts, M voicemails are left in the simulator (``POST
/_sim/voicemails``, each from its own caller number and with its own words, so
that neither the dial policy's per-number limit nor the model cache applies);
no webhook is registered there, so the simulator delivers nothing itself. Then
this process posts, for each voicemail, ``voicemail.received`` and
``transcript.ready`` (``--deliveries 5`` adds ``call.initiated``,
``call.completed`` and ``recording.ready``, as the simulator's scenario sends them),
signed just before sending, over ``--connections`` keep-alive connections to
``/webhooks/odygy``, as fast as agentkit answers or at ``--rate`` voicemails per
second. Every answer must be 2xx; a non-2xx or broken answer is retried, as
phone.systems would, and counted.

Measures, taken from agentkit's own store once the run is over:

- an *event* is one voicemail (all of its deliveries); it is *done* when its
  callback was placed: the row agentkit writes to ``placed_calls`` right after the
  simulator answered ``POST /v1/calls``;
- ``p50_ms``, ``p99_ms``: delivery to action, from the moment the first delivery of
  a voicemail was sent to that row's ``created_at`` (one clock: the same machine).
  Unpaced, the sender gets ahead of the workers and these include the time a
  voicemail waits in the store; ``--rate`` below capacity measures them unloaded;
- ``events_per_s``: callbacks placed / ``seconds``, the time from the first
  delivery sent to the last callback placed;
- ``ideal_ratio``: ``seconds`` / (M x L / C), the wall time over the time C
  concurrent jobs would need if each voicemail cost only the model's L seconds;
  null for L = 0, where the ideal is 0.

The simulator's limits are lifted, but agentkit's API client keeps under phone.systems'
documented limits by itself (100 requests/s per key, less a 3 % reserve, after a burst
of 170), and each voicemail costs about 2 API requests (the transcript and the call;
the team's users are listed once per 10 s): ``api_requests_per_event`` and
``api_max_requests_per_s`` (the most the simulator saw in one second) say so. That
budget, not agentkit's own work, bounds the default run at about 48 voicemails/s.
``--client-limits off`` lifts the client's pacing, to measure what the rest of the
pipeline can do with a larger API budget: with ``agentkit run --api-rate 0`` where the
CLI has that option, else through a shim around the same CLI (``UNLIMITED_CLIENT``
below); ``client_limits`` in the JSON says which.

Checks: ``callbacks_placed`` (voicemails with a callback), ``duplicates`` (callbacks
beyond one per voicemail, counted both in agentkit's store and in the calls the
simulator saw), ``missing``, ``dead`` (dead-lettered jobs), ``bot_run_errors`` (failed
handler runs, retried), ``model_requests`` (the fake model's count: a voicemail
triaged without the model would still be called back, by the bot's fallback).

CPU: ``agentkit_cpu_ms_per_event`` is agentkit's own CPU (every thread, from /proc)
per voicemail; ``postgres_cpu_ms_per_event`` the PostgreSQL server's, apart. After the
run, ``--bare-requests`` requests go to the bare Quart app of benchmarks/bare_quart.py
(served as agentkit serves itself) under wrk at ``--connections``, and the CPU one costs
it is ``bare_request_cpu_ms``: ``cpu_per_event_in_bare_requests`` is the first over the
second, a figure this machine's drift does not move. Goal: at most 12.

Goals: with L = 0, ``events_per_s`` at least 300; with L > 0, ``ideal_ratio`` at most
1.2 (the issue's run: ``--latency 1 --events 1000`` at a concurrency such as 100;
agentkit's default ``--concurrency`` is 8). Each goal is reported only for the
latency it is about. Progress lines are printed as the run goes; the last line is
one JSON object with the parameters, the figures, the checks, the machine (CPU
count, load, the CPU each process used and what other processes used meanwhile:
the machine may be shared, ``noisy`` says so; agentkit's CPU per voicemail and that
of its event-loop thread apart from its other threads) and ``goals``.
``--py-spy FILE`` records agentkit run meanwhile (``pip install py-spy``).

    .venv/bin/python benchmarks/pipeline.py --latency 0 --events 2000 --concurrency 32
    .venv/bin/python benchmarks/pipeline.py --latency 1 --events 1000 --concurrency 100
    .venv/bin/python benchmarks/pipeline.py --latency 1 --events 1000 --concurrency 25
    .venv/bin/python benchmarks/pipeline.py --latency 0 --events 2000 --concurrency 32 \
        --store postgres --client-limits off
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from quart import Quart, request

from agentkit.odygy.signing import SIGNATURE_HEADER, sign
from agentkit.serving import event_loop_factory
from agentkit.testing.fake_llm import FakeLlm

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AGENTKIT = str(Path(sys.executable).with_name("agentkit"))
BOT = REPO / "bots" / "voicemail_callback.py"
LUA = HERE / "wrk" / "replay.lua"
WEBHOOK_PATH = "/webhooks/odygy"
SECRET = "whsec_pipeline_" + secrets.token_hex(8)
MODEL = "fake-model"
CALLED = "+40264000111"  # the sandbox account's main number
# --client-limits off: ``agentkit run`` as the CLI runs it, but with its API client's own
# pacing (phone.systems' 100 requests/s per key) lifted, to see what the rest of the
# pipeline could do with a larger API budget. Not how users run it; reported as such.
UNLIMITED_CLIENT = """
import sys
import agentkit.service as service
from agentkit.odygy.ratelimit import RateLimits

class UnlimitedClient(service.OdygyClient):
    def __init__(self, *args, **kwargs):
        kwargs.pop("limiter", None)
        kwargs["limits"] = RateLimits(enabled=False)
        super().__init__(*args, **kwargs)

service.OdygyClient = UnlimitedClient
if hasattr(service, "shared_rate_limiter"):  # PostgreSQL's budget shared between processes
    service.shared_rate_limiter = lambda *args, **kwargs: None
from agentkit.cli import main
sys.argv[0] = "agentkit"
main()
"""
TRIAGE = json.dumps({
    "caller_name": None, "reason": "their line is down", "urgency": "normal",
    "wants_callback": True, "callback_window": None, "callback_number": None, "spam": False,
    "language": "en",
})


def log(message: str) -> None:
    print(message, flush=True)


def caller(index: int) -> str:
    """A distinct London fixed-line number per voicemail (the dial policy allows them)."""
    return f"+4420710{index:05d}"


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- the fake model

class SlowModel(FakeLlm):
    """FakeLlm that thinks ``seconds`` before each chat completion (a hook of its own, so
    that it works whether or not FakeLlm has a latency knob)."""

    def __init__(self, seconds: float) -> None:
        self.think_seconds = seconds
        super().__init__(model=MODEL, responder=lambda body: TRIAGE)

    def _build(self) -> Quart:
        app = super()._build()

        @app.before_request
        async def think() -> None:
            if self.think_seconds > 0 and request.path.endswith("/chat/completions"):
                await asyncio.sleep(self.think_seconds)

        return app


# ---------------------------------------------------------------- processes

def run_help(env: dict[str, str]) -> str:
    return subprocess.run([AGENTKIT, "run", "--help"], env=env, capture_output=True, text=True,
                          timeout=60).stdout


def start_py_spy(pid: int, args: argparse.Namespace) -> subprocess.Popen[str]:
    """py-spy recording ``pid`` until SIGINT, as collapsed stacks (``--format raw``)."""
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
         "--format", "raw", "--rate", "200",
         # --native (C frames too) has to pause the process to sample it
         *(["--native"] if args.py_spy_native else ["--nonblocking"]),
         "--output", args.py_spy],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process whose output is drained by threads; the last lines are kept."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, keep: str | None = None) -> None:
        self.name = name
        self._keep = open(keep, "w") if keep else None  # closed by stop()
        self._keep_lock = threading.Lock()
        self.lines: deque[str] = deque(maxlen=200)
        self.first_json: dict[str, Any] | None = None
        self.warnings: Counter[str] = Counter()
        self._got_json = threading.Event()
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for raw in stream:
            line = raw.rstrip()
            self.lines.append(line)
            with self._keep_lock:
                if self._keep is not None:
                    self._keep.write(raw)
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if self.first_json is None:
                    self.first_json = parsed
                    self._got_json.set()
                if isinstance(parsed, dict) and parsed.get("level") in ("warning", "error"):
                    self.warnings[f"{parsed.get('level')}: {parsed.get('event')}"] += 1

    def tail(self, lines: int = 30) -> str:
        return "\n".join(list(self.lines)[-lines:])

    def wait_json(self, timeout: float = 30) -> dict[str, Any]:
        if not self._got_json.wait(timeout) or self.first_json is None:
            raise RuntimeError(f"{self.name} printed no JSON line within {timeout} s:\n"
                               f"{self.tail()}")
        return self.first_json

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                               f"{self.tail()}")

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def stop(self, timeout: float = 60) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with self._keep_lock:
            if self._keep is not None:
                self._keep.close()
                self._keep = None
        return self.process.returncode


# ---------------------------------------------------------------- CPU accounting

def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [1] is the parent, [11] and [12] the CPU."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its threads and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(current)
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        todo += children.get(current, [])
    return total


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU of a process's main thread, and of its other threads together."""
    main = others = 0.0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError), \
                    open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
                seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                if int(tid) == pid:
                    main += seconds
                else:
                    others += seconds
    return main, others


def postgres_cpu_seconds() -> float:
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError), open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
                if text[text.find("(") + 1:text.rfind(")")] == "postgres":
                    fields = text.rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def busy_cpu_seconds() -> float:
    """CPU-seconds all CPUs have spent busy since boot (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:8]]
    return (values[0] + values[1] + values[2] + values[5] + values[6]) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- stores

class SqliteStore:
    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "agentkit.db"

    async def create(self) -> str:
        return f"sqlite:///{self.path}"

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
            return [tuple(row) for row in db.execute(sql).fetchall()]

    async def drop(self) -> None:
        """The file goes with the temporary folder."""

    def describe(self) -> str:
        return f"SQLite at {self.path}"


class PostgresStore:
    """A database of its own for the run, dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.database = f"agentkit_pipeline_{secrets.token_hex(4)}"

    def _url(self, database: str) -> str:
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{database}"))

    async def create(self) -> str:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()
        return self._url(self.database)

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(self._url(self.database))
        try:
            rows = await conn.fetch(sql)
        finally:
            await conn.close()
        return [tuple(row.values()) for row in rows]

    async def drop(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await conn.close()

    def describe(self) -> str:
        parts = urlsplit(self.admin_url)
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432}, database {self.database}"


def epoch(value: Any) -> float:
    """A store timestamp (SQLite: epoch seconds; PostgreSQL: datetime) as epoch seconds."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


# ---------------------------------------------------------------- deliveries

@dataclass
class Voicemail:
    index: int
    call_id: str
    voicemail_id: str
    first_sent: float = 0.0


@dataclass
class Sender:
    """Posts signed deliveries over keep-alive HTTP/1.1 connections (a lean client, so
    that this process's CPU goes to the model and not to an HTTP library)."""

    host: str
    port: int
    run_id: str
    kinds: tuple[str, ...]
    sent: int = 0
    retried: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def bodies(self, vm: Voicemail) -> list[bytes]:
        now = stamp(time.time())
        call: dict[str, Any] = {
            "id": vm.call_id, "direction": "inbound", "from": caller(vm.index), "to": CALLED,
            "user_id": None, "call_flow_id": None, "status": "ringing", "started_at": now,
            "answered_at": None, "ended_at": None, "duration": 0, "recording": True,
            "ai_features": [], "ai": None,
        }
        data = {
            "call.initiated": call,
            "call.completed": {**call, "status": "voicemail", "ended_at": now, "duration": 8},
            "voicemail.received": {
                "id": vm.voicemail_id, "call_id": vm.call_id, "mailbox_id": "vm_main",
                "from": caller(vm.index), "to": CALLED, "duration": 8, "received_at": now,
            },
            "recording.ready": {"call_id": vm.call_id, "duration": 8},
            "transcript.ready": {"call_id": vm.call_id, "language": "en-US"},
        }
        out = []
        for kind in self.kinds:
            envelope = {"id": f"evt_pl{self.run_id}_{vm.index:06d}_{kind.split('.')[0][:4]}",
                        "type": kind, "created_at": now, "data": data[kind]}
            out.append(json.dumps(envelope, separators=(",", ":")).encode())
        return out

    async def run(self, queue: asyncio.Queue[tuple[float, Voicemail]]) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while True:
                try:
                    due, vm = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                vm.first_sent = time.time()
                for body in self.bodies(vm):
                    reader, writer = await self._post(reader, writer, body)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _post(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    body: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for attempt in range(1, 11):
            signature = sign(body, [SECRET], timestamp=int(time.time()))
            head = (f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"Content-Type: application/json\r\n{SIGNATURE_HEADER}: {signature}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            try:
                writer.write(head + body)
                status = await self._answer(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
            self.statuses[status] += 1
            if 200 <= status < 300:
                self.sent += 1
                return reader, writer
            self.retried += 1
            writer.close()
            await asyncio.sleep(min(2.0, 0.05 * 2 ** attempt))
            reader, writer = await asyncio.open_connection(self.host, self.port)
        raise RuntimeError(f"a delivery was refused 10 times (answers: {dict(self.statuses)})")

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> int:
        status_line = await reader.readline()
        if not status_line:
            raise ValueError("connection closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        return status


# ---------------------------------------------------------------- the run

async def leave_voicemails(http: httpx.AsyncClient, sim_url: str, count: int,
                           run_id: str) -> list[Voicemail]:
    """M voicemails in the simulator, each from its own number with its own words."""
    voicemails: list[Voicemail | None] = [None] * count
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            words = (f"Hello, this is customer {index} of run {run_id}. My internet has been "
                     "down since this morning and I work from home. Please call me back.")
            answer = await http.post(f"{sim_url}/_sim/voicemails",
                                     json={"from": caller(index), "to": CALLED, "words": words})
            answer.raise_for_status()
            placed = answer.json()
            voicemails[index] = Voicemail(index, placed["call_id"], placed["voicemail_id"])

    await asyncio.gather(*(worker() for _ in range(16)))
    # Each voicemail emits five events in the simulator; the transcript comes last.
    deadline = time.monotonic() + 60
    while (await sim_stats(http, sim_url))["events"] < 5 * count:
        if time.monotonic() > deadline:
            raise RuntimeError("the simulator did not finish its voicemails within 60 s")
        await asyncio.sleep(0.1)
    return [vm for vm in voicemails if vm is not None]


async def sim_stats(http: httpx.AsyncClient, sim_url: str) -> dict[str, Any]:
    answer = await http.get(f"{sim_url}/_sim/stats")
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


async def sim_outbound_calls(http: httpx.AsyncClient, base_url: str,
                             api_key: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    params: dict[str, Any] = {"direction": "outbound", "limit": 100}
    while True:
        answer = await http.get(f"{base_url}/calls", params=params,
                                headers={"Authorization": f"Bearer {api_key}"})
        answer.raise_for_status()
        page = answer.json()
        calls.extend(page["data"])
        if not page.get("next_cursor"):
            return calls
        params["cursor"] = page["next_cursor"]


async def wait_ready(http: httpx.AsyncClient, url: str, agentkit: Process,
                     timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agentkit.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"{url}/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"agentkit was not ready within {timeout} s:\n{agentkit.tail()}")


def bare_request_cpu(workdir: Path, body: bytes, requests: int, connections: int
                     ) -> dict[str, Any]:
    """The CPU one request costs the bare Quart app of benchmarks/bare_quart.py, served as
    agentkit serves itself (uvicorn, uvloop), under wrk at ``connections`` connections: the
    unit agentkit's CPU per voicemail is measured in, taken in the same run because this
    machine's speed drifts."""
    port = free_port()
    server = Process("bare Quart", [sys.executable, str(HERE / "bare_quart.py"),
                                    "--port", str(port)], cwd=REPO)
    try:
        server.wait_json()
        lines = workdir / "bare-requests.txt"
        line = b"unsigned\t" + body + b"\n"
        lines.write_bytes(line * requests)
        before = server.cpu_seconds()
        done = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", "-d300s", "-T30s", "-s", str(LUA),
             f"http://127.0.0.1:{port}/webhooks/odygy", "--", str(lines)],
            capture_output=True, text=True, timeout=420)
        spent = server.cpu_seconds() - before
    finally:
        server.stop()
    found = [x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(found[-1].removeprefix("WRK_RESULT "))
    answered = int(result["answered"])
    window = float(result.get("window_us") or result["duration_us"]) / 1e6
    return {"requests": answered, "rps": round(answered / window, 1) if window else None,
            "cpu_ms": round(spent * 1000 / max(1, answered), 4)}


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    kinds = (("voicemail.received", "transcript.ready") if args.deliveries == 2 else
             ("call.initiated", "call.completed", "voicemail.received", "recording.ready",
              "transcript.ready"))
    store: SqliteStore | PostgresStore = (
        SqliteStore(workdir) if args.store == "sqlite" else PostgresStore(args.postgres_url))
    load_before = os.getloadavg()
    log(f"pipeline benchmark {run_id}: {args.events} voicemails ({len(kinds)} deliveries each), "
        f"model latency {args.latency} s, agentkit --concurrency {args.concurrency}, "
        f"store {args.store}, {args.connections} connections, "
        f"rate {args.rate or 'unpaced'}")
    log(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f}, "
        f"Python {platform.python_version()}")

    sim = Process("agentkit sim", [
        AGENTKIT, "--log-level", "warning", "sim", "--port", "0", "--no-limits",
        "--time-scale", "0.001", "--call-creation-seconds", str(args.call_seconds),
    ], cwd=workdir)
    agentkit: Process | None = None
    url = await store.create()
    try:
        info = sim.wait_json()
        base_url, api_key = str(info["simulator"]), str(info["api_key"])
        sim_url = base_url.removesuffix("/v1")
        async with httpx.AsyncClient(timeout=30) as http, SlowModel(args.latency) as model:
            log(f"simulator at {base_url}; fake model at {model.base_url}; {store.describe()}")
            started = time.monotonic()
            voicemails = await leave_voicemails(http, sim_url, args.events, run_id)
            log(f"left {len(voicemails)} voicemails in the simulator "
                f"in {time.monotonic() - started:.1f} s")

            port = free_port()
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "SLACK_", "TEAMS_"))}
            env.update(
                ODYGY_API_KEY=api_key, ODYGY_BASE_URL=base_url, ODYGY_WEBHOOK_SECRET=SECRET,
                AGENTKIT_DATABASE_URL=url, AGENTKIT_MODEL=MODEL,
                OPENAI_BASE_URL=model.base_url, OPENAI_API_KEY="sk-pipeline-benchmark",
                AGENTKIT_BUSINESS_HOURS="always",
                # The API is the simulator; every voicemail's callback is placed.
                AGENTKIT_SANDBOX="1", AGENTKIT_DIAL_DAILY_MAX="1000000",
            )
            command, lift = [AGENTKIT], []
            if args.client_limits == "off":
                if "--api-rate" in run_help(env):
                    lift = ["--api-rate", "0"]
                else:
                    command = [sys.executable, "-c", UNLIMITED_CLIENT]
            client_limits = ("on" if args.client_limits == "on" else
                             "off (--api-rate 0)" if lift else "off (shim)")
            agentkit = Process("agentkit run", [
                *command, "run", *lift, "--log-level", args.log_level, "--host", "127.0.0.1",
                "--port", str(port), "--bots", str(BOT), "--concurrency", str(args.concurrency),
            ], env=env, cwd=REPO, keep=args.agentkit_log)
            agentkit_url = f"http://127.0.0.1:{port}"
            await wait_ready(http, agentkit_url, agentkit)
            log(f"agentkit run at {agentkit_url} (bot: {BOT.relative_to(REPO)})")

            profiler = start_py_spy(agentkit.process.pid, args) if args.py_spy else None
            queue: asyncio.Queue[tuple[float, Voicemail]] = asyncio.Queue()
            cpu_start = {"agentkit": agentkit.cpu_seconds(), "sim": sim.cpu_seconds(),
                         "bench": self_cpu_seconds(), "postgres": postgres_cpu_seconds(),
                         "busy": busy_cpu_seconds()}
            api_before = (await sim_stats(http, sim_url))["requests"]
            threads_before = thread_cpu_seconds(agentkit.process.pid)
            t0 = time.time()
            m0 = time.monotonic()
            for vm in voicemails:
                due = m0 + vm.index / args.rate if args.rate else 0.0
                queue.put_nowait((due, vm))
            sender = Sender("127.0.0.1", port, run_id, kinds)
            senders = asyncio.gather(*(sender.run(queue) for _ in range(args.connections)))

            placed = 0
            last_report = m0
            timed_out = False
            while True:
                await asyncio.sleep(0.2)
                agentkit.check_alive()
                if senders.done() and senders.exception() is not None:
                    raise senders.exception()  # type: ignore[misc]
                placed = (await sim_stats(http, sim_url))["calls"] - args.events
                now = time.monotonic()
                if now - last_report >= args.progress_seconds:
                    last_report = now
                    log(f"  {now - m0:6.1f} s: sent {sender.sent} deliveries "
                        f"({sender.sent // len(kinds)} voicemails), callbacks placed {placed} "
                        f"({placed / (now - m0):.0f}/s)")
                if placed >= args.events and senders.done():
                    break
                if now - m0 > args.max_seconds:
                    timed_out = True
                    log(f"  WARNING: gave up after {args.max_seconds} s with {placed} callbacks")
                    break
            if not timed_out:
                await senders
            # Look for late duplicates: a second callback would come within a job's time.
            await asyncio.sleep(args.settle_seconds)
            wall_monotonic = time.monotonic() - m0
            cpu = {"agentkit": agentkit.cpu_seconds() - cpu_start["agentkit"],
                   "sim": sim.cpu_seconds() - cpu_start["sim"],
                   "bench": self_cpu_seconds() - cpu_start["bench"],
                   "postgres": max(0.0, postgres_cpu_seconds() - cpu_start["postgres"]),
                   "busy": busy_cpu_seconds() - cpu_start["busy"]}
            threads_after = thread_cpu_seconds(agentkit.process.pid)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=60)
                log(f"py-spy profile of agentkit run (collapsed stacks): {args.py_spy}")
            final_stats = await sim_stats(http, sim_url)
            outbound = await sim_outbound_calls(http, base_url, api_key)
            model_requests = len(model.requests)
            metrics = (await http.get(f"{agentkit_url}/metrics")).text
            # In a thread: a job still waiting on the model (this loop) must get its answer.
            code = await asyncio.to_thread(agentkit.stop)
            log(f"agentkit stopped (exit {code})")
            bare: dict[str, Any] | None = None
            if args.bare_requests and shutil.which("wrk"):
                sample = sender.bodies(voicemails[0])[0]
                log(f"bare Quart app: {args.bare_requests} requests of {len(sample)} bytes "
                    f"under wrk, {args.connections} connections")
                bare = await asyncio.to_thread(bare_request_cpu, workdir, sample,
                                               args.bare_requests, args.connections)
                log(f"  {bare['cpu_ms']:.3f} ms of CPU per bare request "
                    f"({bare['rps']:.0f} requests/s)")
            elif args.bare_requests:
                log("WARNING: wrk is not installed (apt-get install wrk): no bare-request unit")
            senders_task = senders
            if not senders_task.done():
                senders_task.cancel()
                with contextlib.suppress(BaseException):
                    await senders_task

        placed_rows = await store.query(
            "SELECT action_key, call_id, created_at FROM placed_calls")
        job_states = dict(await store.query("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        run_outcomes = dict(await store.query(
            "SELECT outcome, COUNT(*) FROM bot_runs GROUP BY outcome"))
        refused = (await store.query(
            "SELECT COUNT(*) FROM actions WHERE kind = 'callback' AND state = 'failed'"))[0][0]
    finally:
        if agentkit is not None:
            agentkit.stop()
        sim.stop()
        await store.drop()

    # Per voicemail: its callbacks, as agentkit's store and as the simulator saw them.
    by_index: dict[int, list[float]] = {}
    for key, _call_id, created_at in placed_rows:
        event_id = str(key).split(":", 1)[0]
        index = int(event_id.split("_")[2])
        by_index.setdefault(index, []).append(epoch(created_at))
    sim_counts = Counter(call["to"] for call in outbound)
    latencies = [
        (min(times) - voicemails[index].first_sent) * 1000 for index, times in by_index.items()
    ]
    done_at = [min(times) for times in by_index.values()]
    seconds = (max(done_at) - t0) if done_at else wall_monotonic
    completed = len(by_index)
    duplicates = max(sum(len(t) - 1 for t in by_index.values()),
                     sum(n - 1 for n in sim_counts.values() if n > 1))
    ideal = args.events * args.latency / args.concurrency
    ideal_ratio = round(seconds / ideal, 3) if args.latency > 0 else None
    events_per_s = round(completed / seconds, 1) if seconds > 0 else 0.0
    other_cpu = max(0.0, cpu["busy"] - cpu["agentkit"] - cpu["sim"] - cpu["bench"]
                    - cpu["postgres"])
    noisy = other_cpu > 0.05 * wall_monotonic
    dead = int(job_states.get("dead", 0))
    checks_ok = (completed == args.events and duplicates == 0 and dead == 0
                 and model_requests >= args.events and not timed_out)
    goals: dict[str, bool] = {}
    cpu_per_event = cpu["agentkit"] * 1000 / max(1, completed)
    in_bare = round(cpu_per_event / bare["cpu_ms"], 1) if bare and bare["cpu_ms"] else None
    if in_bare is not None:
        goals["cpu_per_event_in_bare_requests_at_most_12"] = in_bare <= 12
        log(f"agentkit's CPU per voicemail: {cpu_per_event:.2f} ms = {in_bare} bare requests")
    if args.latency == 0:
        goals["events_per_s_at_least_300"] = events_per_s >= 300
    else:
        goals["ideal_ratio_at_most_1.2"] = ideal_ratio is not None and ideal_ratio <= 1.2
    for goal, met in goals.items():
        log(f"goal {goal}: {'met' if met else 'NOT met'}")
    if not checks_ok:
        log("WARNING: not every voicemail got exactly one callback with the model's triage")
    if agentkit is not None and agentkit.warnings:
        log(f"agentkit logged: {dict(agentkit.warnings.most_common(5))}")
    ingest = _metric(metrics, "agentkit_ingest_batch_events_sum")
    batches = _metric(metrics, "agentkit_ingest_batch_events_count")
    log(f"CPU over {wall_monotonic:.1f} s: agentkit {cpu['agentkit']:.1f} s, simulator "
        f"{cpu['sim']:.1f} s, this process (model, sender) {cpu['bench']:.1f} s, PostgreSQL "
        f"{cpu['postgres']:.1f} s, other processes {other_cpu:.1f} s"
        + (" (noisy)" if noisy else ""))
    return {
        "events": args.events,
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "store": args.store,
        "deliveries_per_voicemail": len(kinds),
        "connections": args.connections,
        "rate": args.rate or None,
        "log_level": args.log_level,
        "call_creation_s": args.call_seconds,
        "client_limits": client_limits,
        "events_per_s": events_per_s,
        "seconds": round(seconds, 2),
        "p50_ms": _round(percentile(latencies, 0.50)),
        "p90_ms": _round(percentile(latencies, 0.90)),
        "p99_ms": _round(percentile(latencies, 0.99)),
        "max_ms": _round(max(latencies) if latencies else None),
        "ideal_s": round(ideal, 2) if args.latency > 0 else None,
        "ideal_ratio": ideal_ratio,
        "callbacks_placed": completed,
        "missing": args.events - completed,
        "duplicates": duplicates,
        "sim_outbound_calls": len(outbound),
        "refused": int(refused),
        "dead": dead,
        "jobs_open": int(job_states.get("pending", 0)) + int(job_states.get("running", 0)),
        "bot_run_errors": int(run_outcomes.get("error", 0)),
        "model_requests": model_requests,
        "api_requests": final_stats["requests"] - api_before,
        "api_requests_per_event": round((final_stats["requests"] - api_before)
                                        / max(1, completed), 2),
        "api_max_requests_per_s": final_stats.get("max_requests_per_second"),
        "deliveries_sent": sender.sent,
        "deliveries_retried": sender.retried,
        "ingest_batch_mean": round(ingest / batches, 1) if batches else None,
        "cpu_seconds": {"agentkit": round(cpu["agentkit"], 2), "simulator": round(cpu["sim"], 2),
                        "benchmark": round(cpu["bench"], 2),
                        "postgres": round(cpu["postgres"], 2), "other": round(other_cpu, 2)},
        "agentkit_cpu_ms_per_event": round(cpu_per_event, 2),
        "bare_request_cpu_ms": bare["cpu_ms"] if bare else None,
        "bare_requests_per_s": bare["rps"] if bare else None,
        "cpu_per_event_in_bare_requests": in_bare,
        "postgres_cpu_ms_per_event": round(cpu["postgres"] * 1000 / max(1, completed), 2),
        # the event loop's thread, and the others (the SQLite store's, the default executor's)
        "agentkit_main_thread_cpu_s": round(threads_after[0] - threads_before[0], 2),
        "agentkit_other_threads_cpu_s": round(threads_after[1] - threads_before[1], 2),
        "noisy": noisy,
        "cpu_count": os.cpu_count(),
        "load_average_before": round(load_before[0], 2),
        "python": platform.python_version(),
        "timed_out": timed_out,
        "checks_ok": checks_ok,
        "goals": goals,
        "goals_met": all(goals.values()) and checks_ok,
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            with contextlib.suppress(ValueError):
                return float(line.rpartition(" ")[2])
    return 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="voicemails (M)")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="the fake model's seconds per answer (L)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="agentkit run --concurrency (C; agentkit's default is 8)")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to while creating and dropping the run's own")
    parser.add_argument("--deliveries", type=int, choices=[2, 5], default=2,
                        help="deliveries per voicemail: 2 (voicemail.received, "
                             "transcript.ready) or 5 (as the simulator's scenario sends)")
    parser.add_argument("--connections", type=int, default=16,
                        help="the sender's connections to agentkit")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="voicemails sent per second (0: as fast as agentkit answers)")
    parser.add_argument("--call-seconds", type=float, default=0.005,
                        help="how long the simulator takes to answer POST /v1/calls")
    parser.add_argument("--client-limits", choices=["on", "off"], default="on",
                        help="off: lift agentkit's own API pacing (100 requests/s per key) "
                             "through a shim around the CLI; not as users run it")
    parser.add_argument("--log-level", choices=["debug", "info", "warning"], default="warning",
                        help="agentkit run's log level")
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="give up waiting for callbacks after this long")
    parser.add_argument("--settle-seconds", type=float, default=1.0,
                        help="after the last callback, wait this long for duplicates")
    parser.add_argument("--progress-seconds", type=float, default=2.0)
    parser.add_argument("--bare-requests", type=int, default=20000,
                        help="after the run, requests to the bare Quart app (the CPU unit); "
                             "0: skip")
    parser.add_argument("--agentkit-log", metavar="FILE", default=None,
                        help="write everything agentkit run prints to FILE")
    parser.add_argument("--py-spy", metavar="FILE", default=None,
                        help="record agentkit run with py-spy (pip install py-spy) while the "
                             "voicemails are sent and called back; collapsed stacks to FILE")
    parser.add_argument("--py-spy-native", action="store_true",
                        help="with --py-spy: sample C frames too (slows agentkit down)")
    args = parser.parse_args()
    if args.events < 1 or args.concurrency < 1 or args.connections < 1 or args.latency < 0:
        parser.error("--events, --concurrency and --connections must be at least 1, "
                     "--latency at least 0")
    with tempfile.TemporaryDirectory(prefix="agentkit-pipeline-") as tmp:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            summary = runner.run(bench(args, Path(tmp)))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
