"""The deployment files: Dockerfile, docker-compose.yml and .env.example, read without Docker.

The compose file and the Dockerfile are parsed and held to what agentkit itself accepts:
its CLI parser, the variables ``Settings.from_env`` reads, the routes it serves. Their
health-check one-liners are run against real ``agentkit run`` processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from dotenv import dotenv_values

from agentkit.cli import _parser
from agentkit.errors import ConfigError
from agentkit.ingress.receiver import WEBHOOK_PATH
from agentkit.settings import Settings, environment_variables
from agentkit.sim.config import SANDBOX_API_KEY
from tests.process import FIXTURE_BOTS, AgentkitProcess, closed_port, run_env

ROOT = Path(__file__).resolve().parent.parent
AGENTKIT_SERVICES = ("receiver", "workers")


# --- reading the files ----------------------------------------------------------------

def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return dict(services[name])


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, rest), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def instruction(keyword: str) -> list[str]:
    return [rest for key, rest in dockerfile() if key == keyword]


def env_example() -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}


def env_example_listed() -> set[str]:
    """Every variable .env.example names, set or commented out (``# NAME=example``)."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def settings_variables() -> set[str]:
    """The variables Settings.from_env reads."""
    return {variable.name for variable in environment_variables()}


def agentkit_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed as the ``agentkit`` command would; a usage error fails the test."""
    try:
        return _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"agentkit refuses the arguments {argv}")


def command_of(name: str) -> argparse.Namespace:
    command = service(name)["command"]
    assert isinstance(command, list), f"{name}: give the command as a list"
    return agentkit_args(command)


def seconds(duration: str) -> float:
    """A compose duration (``40s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def interpolated(value: str) -> str:
    """A compose value with each ``${NAME:-default}`` replaced by its default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def healthcheck_argv(test: list[str]) -> list[str]:
    assert test[0] == "CMD", "health checks run without a shell: [\"CMD\", ...]"
    return list(test[1:])


def dockerfile_healthcheck() -> tuple[str, list[str]]:
    """The HEALTHCHECK's options and its exec-form command."""
    (rest,) = instruction("HEALTHCHECK")
    options, sep, command = rest.partition("CMD ")
    assert sep, "HEALTHCHECK has no CMD"
    argv = json.loads(command)
    assert isinstance(argv, list), "HEALTHCHECK CMD in exec form (a JSON list)"
    return options, argv


def checked_url(argv: list[str]) -> str:
    (url,) = re.findall(r"https?://[^'\"\s]+", " ".join(argv))
    return str(url)


# --- docker-compose.yml ---------------------------------------------------------------

def test_compose_services_and_sandbox_profile() -> None:
    """PostgreSQL, receiver and workers always run; the simulator only with the sandbox profile."""
    services = compose()["services"]
    assert set(services) == {"postgres", "receiver", "workers", "sim"}
    assert services["sim"]["profiles"] == ["sandbox"]
    for name in ("postgres", "receiver", "workers"):
        assert "profiles" not in services[name], name


def test_postgres_keeps_its_data_in_a_named_volume() -> None:
    """postgres:16 stores in a named volume and reports healthy through pg_isready."""
    postgres = service("postgres")
    assert postgres["image"] == "postgres:16"
    volumes = compose().get("volumes") or {}
    mounts = [m.split(":") for m in postgres["volumes"]]
    assert ["pgdata", "/var/lib/postgresql/data"] in mounts
    assert "pgdata" in volumes
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test)
    assert ["-U", postgres["environment"]["POSTGRES_USER"]] == test[test.index("-U"):][:2]


@pytest.mark.parametrize("name", AGENTKIT_SERVICES)
def test_agentkit_waits_for_healthy_postgres(name: str) -> None:
    """Receivers and workers start once PostgreSQL answers, not merely once it started."""
    assert service(name)["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_receiver_command_and_port() -> None:
    """The receiver runs only the receiver, on all interfaces, on the port it publishes."""
    args = command_of("receiver")
    assert (args.command, args.receiver_only, args.workers_only) == ("run", True, False)
    assert args.host == "0.0.0.0"
    published = [str(p).rsplit(":", 1) for p in service("receiver")["ports"]]
    assert published == [["8080", str(args.port)]]


def test_workers_command_and_no_published_port() -> None:
    """Workers run only jobs and publish no port, so that --scale workers=N never collides."""
    args = command_of("workers")
    assert (args.command, args.receiver_only, args.workers_only) == ("run", False, True)
    assert args.host == "0.0.0.0"
    assert "ports" not in service("workers")


def test_receiver_health_is_readiness() -> None:
    """The receiver's health check asks /readyz on the receiver's own port."""
    argv = healthcheck_argv(service("receiver")["healthcheck"]["test"])
    url = urlsplit(checked_url(argv))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", command_of("receiver").port,
                                                  "/readyz")


def test_workers_health_is_liveness_on_their_port() -> None:
    """The workers' health check asks /healthz on the workers' own port."""
    argv = healthcheck_argv(service("workers")["healthcheck"]["test"])
    url = urlsplit(checked_url(argv))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", command_of("workers").port,
                                                  "/healthz")


@pytest.mark.parametrize("name", AGENTKIT_SERVICES)
def test_stop_grace_period_exceeds_drain(name: str) -> None:
    """Docker waits --drain-seconds, and 5 s for the rest of shutdown, before it kills."""
    drain = command_of(name).drain_seconds
    assert seconds(service(name)["stop_grace_period"]) >= drain + 5


@pytest.mark.parametrize("name", AGENTKIT_SERVICES)
def test_agentkit_services_read_the_env_file(name: str) -> None:
    """Receivers and workers take their settings from .env."""
    assert service(name)["env_file"] in (".env", [".env"])


def test_every_variable_set_is_one_agentkit_reads() -> None:
    """No variable in the compose file's agentkit services or .env.example is invented."""
    known = settings_variables()
    assert {"ODYGY_API_KEY", "ODYGY_WEBHOOK_SECRET", "AGENTKIT_DATABASE_URL"} <= known
    assert set(env_example()) <= known
    assert env_example_listed() <= known
    for name in (*AGENTKIT_SERVICES, "sim"):
        environment = service(name).get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        assert set(environment) <= known, name


def test_env_example_lists_every_setting() -> None:
    """.env.example names every variable Settings.from_env reads."""
    assert settings_variables() <= env_example_listed()


def test_env_example_is_a_valid_sandbox_configuration() -> None:
    """The values of .env.example pass Settings.from_env, in sandbox mode (AGENTKIT_SANDBOX=1)."""
    settings = Settings.from_env(env_example(), env_file=None)
    assert settings.database_url.startswith("postgresql://")
    assert settings.sandbox


def test_env_example_credentials_are_refused_outside_the_sandbox() -> None:
    """Without AGENTKIT_SANDBOX, .env.example's published key and secret are refused."""
    values = {k: v for k, v in env_example().items() if k != "AGENTKIT_SANDBOX"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(values, env_file=None)
    assert "ODYGY_API_KEY" in str(caught.value) and "published" in str(caught.value)


def test_database_url_points_at_the_postgres_service() -> None:
    """AGENTKIT_DATABASE_URL names the postgres service, and its user, password and database."""
    url = urlsplit(env_example()["AGENTKIT_DATABASE_URL"])
    postgres = service("postgres")["environment"]
    assert url.hostname == "postgres"
    assert url.port in (None, 5432)
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == interpolated(postgres["POSTGRES_PASSWORD"])
    assert url.path == "/" + postgres["POSTGRES_DB"]


def test_sandbox_simulator_signs_for_the_receiver() -> None:
    """The simulator delivers to the receiver's webhook route, signed with .env.example's secret."""
    sim = service("sim")
    args = command_of("sim")
    assert (args.command, args.action, args.host) == ("sim", None, "0.0.0.0")
    target = urlsplit(args.webhook_url)
    assert (target.hostname, target.port, target.path) == (
        "receiver", command_of("receiver").port, WEBHOOK_PATH
    )
    secrets = env_example()["ODYGY_WEBHOOK_SECRET"].split(",")
    assert args.webhook_secret in [s.strip() for s in secrets]
    assert [str(p).rsplit(":", 1)[1] for p in sim["ports"]] == [str(args.port)]


def test_sandbox_api_settings_point_at_the_simulator() -> None:
    """.env.example's base URL is the sim service's /v1, and its key the one the simulator knows."""
    base = urlsplit(env_example()["ODYGY_BASE_URL"])
    assert (base.hostname, base.port, base.path) == ("sim", command_of("sim").port, "/v1")
    assert env_example()["ODYGY_API_KEY"] == SANDBOX_API_KEY


# --- Dockerfile and .dockerignore -----------------------------------------------------

def test_dockerfile_base_user_and_entrypoint() -> None:
    """python:3.11-slim, a non-root user it creates, ENTRYPOINT agentkit, CMD a valid run."""
    assert instruction("FROM") == ["python:3.11-slim"]
    (user,) = instruction("USER")
    assert user not in ("root", "0")
    assert any("useradd" in run and user in run for run in instruction("RUN"))
    assert [json.loads(e) for e in instruction("ENTRYPOINT")] == [["agentkit"]]
    (cmd,) = instruction("CMD")
    assert json.loads(cmd) == ["run", "--host", "0.0.0.0"]
    assert agentkit_args(json.loads(cmd)).command == "run"


def test_dockerfile_installs_dependencies_before_the_code() -> None:
    """Dependencies install from pyproject.toml before the code is copied: edits reuse the layer."""
    steps = dockerfile()
    copies = [i for i, (key, _) in enumerate(steps) if key == "COPY"]
    first_pyproject = next(i for i in copies if "pyproject.toml" in steps[i][1])
    first_code = next(i for i in copies if steps[i][1].split()[0] == "agentkit")
    assert first_pyproject < first_code
    assert any(key == "RUN" and "pip install" in rest
               for key, rest in steps[first_pyproject:first_code])
    assert any(key == "RUN" and re.search(r"pip install .*\s\.(\s|$)", rest)
               for key, rest in steps[first_code:])


def test_dockerfile_ships_bots_and_prompts() -> None:
    """The shipped bots and prompts are copied where ./bots and ./prompts find them."""
    workdir = instruction("WORKDIR")[-1]
    sources = {rest.split()[0]: rest.split()[1] for rest in instruction("COPY")}
    assert sources.get("bots") == "./bots" and sources.get("prompts") == "./prompts"
    assert workdir == "/app"


def test_dockerfile_environment_is_known() -> None:
    """The Dockerfile sets only agentkit's own variables, and Python's and pip's."""
    known = settings_variables()
    for rest in instruction("ENV"):
        for pair in shlex.split(rest):
            name = pair.split("=", 1)[0]
            assert name in known or name.startswith(("PYTHON", "PIP_")), name


def test_dockerfile_health_check_is_liveness() -> None:
    """The image's HEALTHCHECK asks /healthz on the default port with Python, not curl."""
    _, argv = dockerfile_healthcheck()
    assert argv[:2] == ["python", "-c"]
    url = urlsplit(checked_url(argv))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", 8080, "/healthz")


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    """.env, .git and the virtual environment never reach the build context."""
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".git", ".venv"} <= ignored


# --- the health checks, run -----------------------------------------------------------

async def run_check(argv: list[str], port: int) -> int:
    """Run a health-check command against 127.0.0.1:``port``; its exit code."""
    assert argv[0] == "python"
    text = json.dumps(argv)
    assert text.count("127.0.0.1:") == 1
    argv = json.loads(re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", text))
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv[1:],
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=20)


def local_args(name: str) -> list[str]:
    """The service's ``run`` arguments on loopback, a free port and the test bots."""
    command = list(service(name)["command"])
    assert command[0] == "run"
    args = command[1:]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = "0"
    return [*args, "--bots", FIXTURE_BOTS, "--poll-seconds", "0.05"]


async def start_like(name: str, processes: list[AgentkitProcess], tmp: Path) -> int:
    """Start ``agentkit run`` as the compose service runs it, on loopback; its port."""
    process = AgentkitProcess(local_args(name), run_env(tmp))
    processes.append(process)
    await process.start()
    port = urlsplit(process.url).port
    assert port is not None
    return port


async def test_image_health_check_passes_on_a_live_process(
    processes: list[AgentkitProcess], tmp_path: Path
) -> None:
    """The Dockerfile's HEALTHCHECK command exits 0 against a running agentkit."""
    port = await start_like("workers", processes, tmp_path)
    assert await run_check(dockerfile_healthcheck()[1], port) == 0


@pytest.mark.parametrize("name", AGENTKIT_SERVICES)
async def test_service_health_check_passes_on_its_process(
    name: str, processes: list[AgentkitProcess], tmp_path: Path
) -> None:
    """Each compose health check exits 0 against agentkit started with that service's command."""
    port = await start_like(name, processes, tmp_path)
    assert await run_check(healthcheck_argv(service(name)["healthcheck"]["test"]), port) == 0


async def test_health_checks_fail_when_nothing_listens() -> None:
    """Every health check exits non-zero when no process answers on its port."""
    checks = [dockerfile_healthcheck()[1]] + [
        healthcheck_argv(service(name)["healthcheck"]["test"]) for name in AGENTKIT_SERVICES
    ]
    with closed_port() as port:
        for argv in checks:
            assert await run_check(argv, port) != 0, argv


async def test_readiness_check_fails_on_503() -> None:
    """The receiver's health check exits non-zero when /readyz answers 503."""
    async def unready(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(unready, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        argv = healthcheck_argv(service("receiver")["healthcheck"]["test"])
        assert await run_check(argv, port) != 0
    finally:
        server.close()
        await server.wait_closed()
