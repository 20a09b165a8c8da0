"""Webhook ingest: ``agentkit run`` against a bare Quart app on the same server and on Hypercorn.

Each phase starts a server in its own process pinned to one core (``taskset -c
0``) and drives it with wrk pinned to the other (``taskset -c 1``). wrk replays
pre-signed deliveries from a file (benchmarks/wrk/replay.lua), each at most
once, at a fixed concurrency, and reports the rate and wrk's latency percentiles.
Every delivery has its own event id; bodies are signed just before their phase
so that their timestamps are fresh.

Phases, each with a warm-up of ``--warmup`` deliveries first:

1. ``baseline``: benchmarks/bare_quart.py (reads the body, answers 200) on
   agentkit's own EmbeddedServer (uvicorn, httptools, no access log, uvloop, as
   ``agentkit run`` has it);
2. ``hypercorn``: the same app under ``hypercorn`` with its CLI defaults;
3. ``agentkit``: ``agentkit run`` as users run it (receiver and workers in one
   process, no bots), storing every delivery durably before it answers;
4. ``receiver-only``: ``agentkit run --receiver-only`` (skip with --no-receiver-only).

After each agentkit phase the store is counted: every delivery must be stored
exactly once and wrk must have seen only 2xx answers. In the default mode the
route jobs the workers had not done by the last answer are counted and waited
for: ``jobs_backlog``, ``jobs_drain_s`` and ``end_to_end_rps`` (deliveries
stored and routed per second, the drain included) say whether the workers keep
up with the receiver.

The rate is answers / (last answer - first request sent), measured inside wrk.
Latencies are wrk's percentiles (which include wrk's coordinated-omission
correction). Each progress line also gives the server's CPU per request (all
its threads and child processes), PostgreSQL's CPU per request, wrk's CPU, the
CPU any other process (kernel threads aside) used meanwhile, and per CPU the
share busy and the share stolen by the hypervisor. Other work on the machine (a test suite, a build)
skews the figures: each measured run first waits up to --quiet-wait seconds for
three idle seconds in a row, and a run during which other processes used more
than 5 % of a CPU is named in ``noisy_phases``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
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
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import agentkit as agentkit_package
from agentkit.odygy.signing import sign
from agentkit.testing.deliveries import default_data, envelope

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LUA = HERE / "wrk" / "replay.lua"
BIN = Path(sys.executable).parent
WEBHOOK_PATH = "/webhooks/odygy"
SECRET = "whsec_bench_" + secrets.token_hex(12)
# A realistic mix: a call's three status events, then a recording, a transcript, a voicemail.
TYPES = ("call.initiated", "call.answered", "call.completed", "recording.ready",
         "transcript.ready", "voicemail.received")


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- deliveries

def build_bodies(prefix: str, count: int) -> list[bytes]:
    """``count`` distinct envelopes, serialised once (signing happens later)."""
    bodies = []
    for i in range(count):
        event_type = TYPES[i % len(TYPES)]
        call_id = f"cal_{prefix}_{i // len(TYPES)}"
        body = envelope(event_type, default_data(event_type, call_id),
                        event_id=f"evt_{prefix}_{i:07d}", created_at="2026-11-27T10:00:00Z")
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


def write_signed(bodies: list[bytes], path: Path) -> None:
    """One ``<signature>\\t<body>`` line per delivery, signed now."""
    now = int(time.time())
    with path.open("wb") as out:
        for body in bodies:
            out.write(sign(body, [SECRET], timestamp=now).encode() + b"\t" + body + b"\n")


# ---------------------------------------------------------------- CPU pinning

@dataclass
class Pinning:
    server_cpu: int | None
    client_cpu: int | None

    @classmethod
    def choose(cls, server: int, client: int) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if shutil.which("taskset") and server in cpus and client in cpus and server != client:
            return cls(server, client)
        return cls(None, None)

    def prefix(self, cpu: int | None) -> list[str]:
        return ["taskset", "-c", str(cpu)] if cpu is not None else []

    def describe(self) -> str:
        if self.server_cpu is None:
            return "not pinned (taskset or a second CPU missing)"
        return f"server on CPU {self.server_cpu}, wrk on CPU {self.client_cpu} (taskset)"


def cpu_times() -> dict[str, list[int]]:
    """Per CPU jiffies from /proc/stat: user nice system idle iowait irq softirq steal."""
    times = {}
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *values = line.split()
                times[name] = [int(v) for v in values[:8]]
    return times


def cpu_usage(before: dict[str, list[int]],
              after: dict[str, list[int]]) -> tuple[dict[str, str], float]:
    """Per CPU, the share of the interval that was busy (and stolen by the hypervisor);
    and the busy CPU-seconds of all CPUs together."""
    out, busy_seconds = {}, 0.0
    for name, now in after.items():
        delta = [a - b for a, b in zip(now, before.get(name, [0] * 8), strict=True)]
        total = max(1, sum(delta))
        busy = delta[0] + delta[1] + delta[2] + delta[5] + delta[6]
        busy_seconds += busy / os.sysconf("SC_CLK_TCK")
        out[name] = f"{100 * busy / total:.0f}% busy, {100 * delta[7] / total:.0f}% stolen"
    return out, busy_seconds


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its threads and its live descendants, in seconds."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                ppid = int(_stat_fields(int(entry))[1])
                children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            fields = _stat_fields(current)
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        todo += children.get(current, [])
    return total


def known_cpu_seconds() -> tuple[float, float]:
    """User + system CPU, in seconds, of this machine's PostgreSQL server processes and of
    its kernel threads (which do the disk flushes a durable commit asks for)."""
    postgres = kernel = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
                fields = text.rsplit(")", 1)[1].split()
                seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                if text[text.find("(") + 1:text.rfind(")")] == "postgres":
                    postgres += seconds
                elif fields[1] == "2" or entry == "2":  # kthreadd and its children
                    kernel += seconds
    return postgres, kernel


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: fields[0] is the state, [1] the parent."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def wait_for_quiet(max_wait: float, threshold: float = 0.15, quiet_seconds: int = 3) -> None:
    """Wait (at most ``max_wait`` s) until the machine's CPUs have been idle for
    ``quiet_seconds`` in a row, so that other work (a test suite, a build, a server's
    leftover jobs) does not share the cores under test."""
    deadline = time.monotonic() + max_wait
    said = False
    quiet = 0
    while quiet < quiet_seconds:
        before = cpu_times()
        time.sleep(1)
        _, busy = cpu_usage(before, cpu_times())
        if busy <= threshold:
            quiet += 1
            continue
        quiet = 0
        if time.monotonic() >= deadline:
            log(f"  WARNING: the CPUs are still {busy * 100:.0f}% busy; going on, the figures "
                "may be low")
            return
        if not said:
            log(f"  waiting for the CPUs to go idle ({busy * 100:.0f}% of a CPU busy: "
                "a server's leftover work or other processes)")
            said = True


# ---------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process; its output is drained by threads and kept for error reports."""

    def __init__(self, name: str, argv: list[str], *, port: int, ready_marker: str | None,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        self._ready_marker = ready_marker
        self._ready = threading.Event()
        self._output: deque[str] = deque(maxlen=200)
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self._output.append(line.rstrip())
            if self._ready_marker and self._ready_marker in line:
                self._ready.set()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._output)[-lines:])

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                   f"{self.tail()}")
            if self._ready_marker is not None:
                if self._ready.wait(0.05):
                    return
                continue
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} was not ready within {timeout} s:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---------------------------------------------------------------- load

@dataclass
class PhaseResult:
    name: str
    answered: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    duplicates: int
    statuses: dict[str, int]
    cpu: dict[str, str]
    server_cpu_us_per_request: float
    wrk_cpu_seconds: float
    other_cpu_seconds: float
    postgres_cpu_us_per_request: float
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        cpus = "; ".join(f"{cpu} {usage}" for cpu, usage in sorted(self.cpu.items()))
        return (f"  {self.name}: {self.answered} in {self.seconds:.2f} s = {self.rps:.0f}/s, "
                f"p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
                f"max {self.max_ms:.1f} ms; non-2xx {self.non_2xx}, socket errors "
                f"{self.socket_errors}; server CPU {self.server_cpu_us_per_request:.0f} us/request,"
                f" PostgreSQL {self.postgres_cpu_us_per_request:.0f} us/request;"
                f" wrk CPU {self.wrk_cpu_seconds:.2f} s, other processes "
                f"{self.other_cpu_seconds:.2f} CPU-s; {cpus}")


def scrape_metrics(port: int) -> dict[str, float]:
    """agentkit's /metrics as {"name{labels}": value}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def job_backlog(port: int) -> int:
    metrics = scrape_metrics(port)
    return int(sum(metrics.get(f'agentkit_queue_depth{{state="{state}"}}', 0)
                   for state in ("pending", "running")))


def run_wrk(server: Server, requests_file: Path, *, concurrency: int, pinning: Pinning,
            cap_seconds: int, name: str) -> PhaseResult:
    argv = [*pinning.prefix(pinning.client_cpu), "wrk", "-t1", f"-c{concurrency}",
            f"-d{cap_seconds}s", "-T30s", "-s", str(LUA), server.url, "--", str(requests_file)]
    cpu_before, server_before = cpu_times(), server.cpu_seconds()
    postgres_before, kernel_before = known_cpu_seconds()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=cap_seconds + 120)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after, server_after = cpu_times(), server.cpu_seconds()
    postgres_after, kernel_after = known_cpu_seconds()
    postgres_cpu = postgres_after - postgres_before
    kernel_cpu = kernel_after - kernel_before
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(lines[-1].removeprefix("WRK_RESULT "))
    answered = int(result["answered"])
    window = float(result["window_us"]) / 1e6
    if window <= 0:  # the run hit the time cap before every answer came
        window = float(result["duration_us"]) / 1e6
        log(f"  WARNING: {name}: only {answered} of {result['sent']} answers within "
            f"{cap_seconds} s")
    latency = result["latency_us"]
    errors = result["errors"]
    cpu, busy_seconds = cpu_usage(cpu_before, cpu_after)
    server_cpu = server_after - server_before
    wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime
               - wrk_before.ru_utime - wrk_before.ru_stime)
    statuses = {str(k): int(v) for k, v in result["statuses"].items()}
    non_2xx = sum(n for code, n in statuses.items() if not code.startswith("2"))
    return PhaseResult(
        name=name,
        answered=answered,
        seconds=round(window, 3),
        rps=round(answered / window, 1),
        p50_ms=round(latency["p50"] / 1000, 2),
        p90_ms=round(latency["p90"] / 1000, 2),
        p99_ms=round(latency["p99"] / 1000, 2),
        max_ms=round(latency["max"] / 1000, 2),
        non_2xx=non_2xx,
        socket_errors=sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
        duplicates=int(result["duplicates"]),
        statuses=statuses,
        cpu=cpu,
        server_cpu_us_per_request=round(server_cpu * 1e6 / max(1, answered), 1),
        wrk_cpu_seconds=round(wrk_cpu, 2),
        other_cpu_seconds=round(
            max(0.0, busy_seconds - server_cpu - wrk_cpu - postgres_cpu - kernel_cpu), 2),
        postgres_cpu_us_per_request=round(postgres_cpu * 1e6 / max(1, answered), 1),
        extra={"sent": int(result["sent"])},
    )


def drive(server: Server, prefix: str, args: argparse.Namespace, pinning: Pinning,
          workdir: Path, name: str) -> tuple[PhaseResult | None, PhaseResult]:
    """Warm up, then the measured run; every body unique and signed just before use."""
    warm_file, main_file = workdir / f"{prefix}-warmup.txt", workdir / f"{prefix}-main.txt"
    warm = None
    if args.warmup:
        write_signed(build_bodies(f"{prefix}w", args.warmup), warm_file)
        warm = run_wrk(server, warm_file, concurrency=args.concurrency, pinning=pinning,
                       cap_seconds=args.max_seconds, name=f"{name} (warm-up)")
        log(warm.line())
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait)
    write_signed(build_bodies(f"{prefix}m", args.events), main_file)
    result = run_wrk(server, main_file, concurrency=args.concurrency, pinning=pinning,
                     cap_seconds=args.max_seconds, name=name)
    log(result.line())
    if result.other_cpu_seconds > 0.05 * result.seconds:
        result.extra["noisy"] = True
        log(f"  NOTE: other processes used {result.other_cpu_seconds:.1f} CPU-s during this "
            "run: its figures are noisy")
    return warm, result


# ---------------------------------------------------------------- stores

class SqliteBench:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def create(self, label: str) -> str:
        self.path = self.workdir / f"agentkit-{label}.db"
        return f"sqlite:///{self.path}"

    def count(self, prefix: str) -> int:
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            row = db.execute("SELECT COUNT(*) FROM events WHERE id LIKE ?",
                             (f"evt_{prefix}%",)).fetchone()
        return int(row[0])

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def describe(self) -> str:
        return f"SQLite files in {self.workdir}"


class PostgresBench:
    """A database of its own per agentkit phase, dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.database: str | None = None

    def _url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def create(self, label: str) -> str:
        import asyncpg

        self.database = f"agentkit_bench_{secrets.token_hex(4)}_{label.replace('-', '_')}"

        async def create() -> None:
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(f'CREATE DATABASE "{self.database}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self._url(self.database)

    def count(self, prefix: str) -> int:
        import asyncpg

        assert self.database is not None

        async def count() -> int:
            conn = await asyncpg.connect(self._url(self.database or ""))
            try:
                return int(await conn.fetchval(
                    "SELECT COUNT(*) FROM events WHERE id LIKE $1", f"evt_{prefix}%"))
            finally:
                await conn.close()

        return asyncio.run(count())

    def drop(self) -> None:
        import asyncpg

        if self.database is None:
            return

        async def drop() -> None:
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())
        self.database = None

    def describe(self) -> str:
        parts = urlsplit(self.admin_url)
        return (f"PostgreSQL at {parts.hostname}:{parts.port or 5432}, a fresh database per "
                "phase (not pinned: it shares the machine's two cores)")


# ---------------------------------------------------------------- phases

def run_and_log_level(env: dict[str, str]) -> list[str]:
    """``run`` with warning-level logging, so that no line is logged per delivery.

    Where ``agentkit run`` takes --log-level itself it goes after the command: given
    before it, some versions log at info level all the same.
    """
    help_text = subprocess.run([str(BIN / "agentkit"), "run", "--help"], env=env,
                               capture_output=True, text=True, timeout=60).stdout
    if "--log-level" in help_text:
        return ["run", "--log-level", "warning"]
    return ["--log-level", "warning", "run"]


def agentkit_phase(label: str, extra_args: list[str], args: argparse.Namespace,
                   pinning: Pinning, workdir: Path, store: SqliteBench | PostgresBench,
                   run_id: str) -> tuple[PhaseResult, bool]:
    bots = workdir / "no-bots"
    bots.mkdir(exist_ok=True)
    url = store.create(label)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_"))}
    env.update(ODYGY_API_KEY="bench-api-key", ODYGY_WEBHOOK_SECRET=SECRET,
               AGENTKIT_DATABASE_URL=url)
    port = free_port()
    argv = [*pinning.prefix(pinning.server_cpu), str(BIN / "agentkit"), *run_and_log_level(env),
            "--host", "127.0.0.1", "--port", str(port), "--bots", str(bots), *extra_args]
    prefix = f"{run_id}{label.replace('-', '')}"
    # "agentkit.started" is logged at info level, which --log-level warning hides:
    # readiness is the first HTTP answer instead.
    try:
        server = Server(f"agentkit {label}", argv, port=port, ready_marker=None, env=env,
                        cwd=workdir)
        try:
            server.wait_ready()
            warm, result = drive(server, prefix, args, pinning, workdir, f"agentkit ({label})")
            metrics = scrape_metrics(port)
            batches = metrics.get("agentkit_ingest_batch_events_count", 0)
            if batches:
                mean_batch = metrics["agentkit_ingest_batch_events_sum"] / batches
                log(f"  group commit: {mean_batch:.1f} deliveries per transaction on average")
            if "--receiver-only" not in extra_args:
                # Jobs the workers had not done by the last answer: work deferred, not done.
                backlog = job_backlog(port)
                started = time.monotonic()
                while job_backlog(port) and time.monotonic() - started < args.max_seconds:
                    time.sleep(0.2)
                drained = time.monotonic() - started
                result.extra.update(backlog=backlog, drain_seconds=round(drained, 2))
                log(f"  jobs not yet done at the last answer: {backlog} "
                    f"(all done {drained:.1f} s later)")
        finally:
            server.stop()
        stored = store.count(prefix)
    finally:
        store.drop()
    runs = [r for r in (warm, result) if r is not None]
    expected = args.events + args.warmup
    answered = sum(r.answered for r in runs)
    duplicates = sum(r.duplicates for r in runs)
    non_2xx = sum(r.non_2xx for r in runs)
    ok = stored == expected and answered == expected and duplicates == 0 and non_2xx == 0
    result.extra.update(stored=stored, expected=expected)
    if ok:
        log(f"  stored {stored} of {expected} deliveries (warm-up included), each once; "
            "every answer 2xx")
    else:
        log(f"  WARNING: agentkit ({label}): stored {stored} of {expected} deliveries; "
            f"{answered} answered, {duplicates} as duplicates, {non_2xx} not 2xx "
            f"({result.statuses})")
    return result, ok


def baseline_phase(kind: str, args: argparse.Namespace, pinning: Pinning, workdir: Path,
                   run_id: str) -> PhaseResult:
    port = free_port()
    pin = pinning.prefix(pinning.server_cpu)
    if kind == "uvicorn":
        argv = [*pin, sys.executable, str(HERE / "bare_quart.py"), "--port", str(port)]
        server = Server("bare Quart on uvicorn", argv, port=port, ready_marker="listening",
                        cwd=REPO)
        name = "baseline (bare Quart, agentkit's uvicorn settings)"
    else:
        argv = [*pin, str(BIN / "hypercorn"), "--bind", f"127.0.0.1:{port}",
                "benchmarks.bare_quart:app"]
        server = Server("bare Quart on Hypercorn", argv, port=port, ready_marker=None, cwd=REPO)
        name = "hypercorn (bare Quart, Hypercorn CLI defaults)"
    try:
        server.wait_ready()
        return drive(server, f"{run_id}{kind[:3]}", args, pinning, workdir, name)[1]
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=20000, help="measured deliveries a phase")
    parser.add_argument("--concurrency", type=int, default=50, help="wrk connections")
    parser.add_argument("--warmup", type=int, default=2000, help="deliveries before each phase")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to while creating and dropping the benchmark's own")
    parser.add_argument("--no-receiver-only", action="store_true",
                        help="skip the agentkit --receiver-only phase")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--max-seconds", type=int, default=300,
                        help="give up on a phase after this long")
    parser.add_argument("--quiet-wait", type=float, default=120,
                        help="before each measured run, wait up to this long for other "
                             "processes to leave the CPUs idle (0: do not wait)")
    args = parser.parse_args()
    if args.events < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--events and --concurrency must be at least 1, --warmup at least 0")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")

    pinning = Pinning.choose(args.server_cpu, args.client_cpu)
    run_id = "b" + secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="agentkit-ingest-") as tmp:
        workdir = Path(tmp)
        store: SqliteBench | PostgresBench = (
            SqliteBench(workdir) if args.store == "sqlite" else PostgresBench(args.postgres_url))
        log(f"ingest benchmark {run_id}: store {args.store}, {args.events} deliveries a phase "
            f"(+{args.warmup} warm-up), concurrency {args.concurrency}, wrk -t1")
        log(f"pinning: {pinning.describe()}; {os.cpu_count()} CPUs; {store.describe()}")
        log(f"agentkit from {Path(agentkit_package.__file__).parent}, "
            f"Python {sys.version.split()[0]}")

        phases = 3 if args.no_receiver_only else 4
        log(f"phase 1/{phases}: bare Quart on agentkit's uvicorn settings")
        baseline = baseline_phase("uvicorn", args, pinning, workdir, run_id)
        log(f"phase 2/{phases}: bare Quart on Hypercorn (CLI defaults)")
        hypercorn = baseline_phase("hypercorn", args, pinning, workdir, run_id)
        log(f"phase 3/{phases}: agentkit run (receiver and workers in one process)")
        agentkit, stored_ok = agentkit_phase("all", [], args, pinning, workdir, store, run_id)
        receiver: PhaseResult | None = None
        if not args.no_receiver_only:
            log("phase 4/4: agentkit run --receiver-only")
            receiver, receiver_ok = agentkit_phase("receiver", ["--receiver-only"], args,
                                                   pinning, workdir, store, run_id)
            stored_ok = stored_ok and receiver_ok

    ratio = round(agentkit.rps / baseline.rps, 3) if baseline.rps else 0.0
    goals = {
        "ratio_at_least_0.5": ratio >= 0.5,
        "agentkit_above_hypercorn": agentkit.rps > hypercorn.rps,
        "p99_under_50ms": agentkit.p99_ms < 50,
    }
    for goal, met in goals.items():
        log(f"goal {goal}: {'met' if met else 'NOT met'}")
    if not stored_ok:
        log("WARNING: not every delivery was stored exactly once with a 2xx answer")
    summary: dict[str, Any] = {
        "store": args.store,
        "events": args.events,
        "concurrency": args.concurrency,
        "agentkit_rps": agentkit.rps,
        "baseline_rps": baseline.rps,
        "ratio": ratio,
        "hypercorn_rps": hypercorn.rps,
        "p50_ms": agentkit.p50_ms,
        "p99_ms": agentkit.p99_ms,
        "baseline_p50_ms": baseline.p50_ms,
        "baseline_p99_ms": baseline.p99_ms,
        "hypercorn_p50_ms": hypercorn.p50_ms,
        "hypercorn_p99_ms": hypercorn.p99_ms,
        "agentkit_cpu_us_per_request": agentkit.server_cpu_us_per_request,
        "baseline_cpu_us_per_request": baseline.server_cpu_us_per_request,
        "agentkit_postgres_cpu_us_per_request": agentkit.postgres_cpu_us_per_request,
        "stored_ok": stored_ok,
        "jobs_backlog": agentkit.extra.get("backlog"),
        "jobs_drain_s": agentkit.extra.get("drain_seconds"),
        # Deliveries stored and routed per second, counting the time the workers took after
        # the last answer to finish the route jobs the run left behind.
        "end_to_end_rps": round(args.events / (agentkit.seconds
                                               + agentkit.extra.get("drain_seconds", 0)), 1),
        "pinned": pinning.server_cpu is not None,
    }
    if receiver is not None:
        summary.update(receiver_only_rps=receiver.rps, receiver_only_p50_ms=receiver.p50_ms,
                       receiver_only_p99_ms=receiver.p99_ms,
                       receiver_only_cpu_us_per_request=receiver.server_cpu_us_per_request)
    summary["noisy_phases"] = [
        phase.name for phase in (baseline, hypercorn, agentkit, receiver)
        if phase is not None and phase.extra.get("noisy")]
    summary["goals_met"] = all(goals.values())
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
