"""The agentkit command: serving the simulator and driving it from another process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import agentkit
from agentkit.odygy.signing import verify
from agentkit.settings import environment_variables
from agentkit.testing import HttpRecorder
from tests.process import FIXTURE_BOTS

AGENTKIT = str(Path(sys.executable).with_name("agentkit"))
SECRET = "whsec_cli_test_secret_0001"


async def run(*args: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def served_sim(recorder: HttpRecorder) -> AsyncIterator[dict[str, object]]:
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, "sim", "--port", "0", "--time-scale", "0.001",
        "--webhook-url", recorder.url + "/hook", "--webhook-secret", SECRET,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    info = json.loads(line)
    yield {**info, "process": process}
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)


async def test_sim_voicemail_command(served_sim: dict[str, object],
                                     recorder: HttpRecorder) -> None:
    """'agentkit sim voicemail' makes the served simulator deliver signed voicemail events."""
    sim_url = str(served_sim["simulator"]).removesuffix("/v1")
    code, out, err = await run("sim", "voicemail", "--from", "+442079460000",
                               "--words", "Please call me back.", "--sim-url", sim_url)
    assert code == 0, err
    placed = json.loads(out)
    delivered = await recorder.wait_for(5)
    voicemail = next(r for r in delivered if r.json()["type"] == "voicemail.received")
    assert voicemail.json()["data"]["id"] == placed["voicemail_id"]
    verify(voicemail.body, voicemail.headers["odygy-signature"], [SECRET])


async def test_sim_exits_0_on_sigterm(served_sim: dict[str, object]) -> None:
    """The simulator stops cleanly on SIGTERM."""
    process = served_sim["process"]
    assert isinstance(process, asyncio.subprocess.Process)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), timeout=30) == 0


async def test_bad_number_is_a_clear_error(served_sim: dict[str, object]) -> None:
    """A malformed caller number exits non-zero with the simulator's reason."""
    sim_url = str(served_sim["simulator"]).removesuffix("/v1")
    code, _, err = await run("sim", "voicemail", "--from", "0740123456", "--words", "x",
                             "--sim-url", sim_url)
    assert code == 2
    assert "E.164" in err


async def test_no_simulator_is_a_clear_error() -> None:
    """Driving a simulator that is not running exits non-zero and says how to start one."""
    code, _, err = await run("sim", "voicemail", "--from", "+442079460000", "--words", "x",
                             "--sim-url", "http://127.0.0.1:9")
    assert code == 2
    assert "agentkit sim" in err


async def test_bad_say_line_is_a_clear_error() -> None:
    """A --say line without SPEAKER: exits non-zero with the expected form."""
    code, _, err = await run("sim", "call", "--from", "+442079460000", "--say", "hello",
                             "--sim-url", "http://127.0.0.1:9")
    assert code == 2
    assert "SPEAKER:TEXT" in err


async def test_unknown_command_is_a_usage_error() -> None:
    """An unknown command exits non-zero with usage."""
    code, _, err = await run("fly")
    assert code == 2
    assert "usage" in err


async def test_taken_port_is_a_clear_error(served_sim: dict[str, object]) -> None:
    """Serving on a port already in use exits non-zero and names the address."""
    port = str(served_sim["simulator"]).rsplit(":", 1)[1].removesuffix("/v1")
    code, _, err = await run("sim", "--port", port)
    assert code == 2
    assert f"127.0.0.1:{port}" in err
    assert "Traceback" not in err


async def test_bots_folder_from_env_file(tmp_path: Path) -> None:
    """AGENTKIT_BOTS set only in ./.env is honoured by `agentkit bots`, as by `agentkit run`."""
    fixtures = Path(__file__).parent / "fixtures" / "bots"
    (tmp_path / ".env").write_text(f"AGENTKIT_BOTS={fixtures}\n")
    env = {k: v for k, v in os.environ.items() if k != "AGENTKIT_BOTS"}
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, "bots", "--json", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert [bot["name"] for bot in json.loads(out)] == ["probe"]


@pytest.mark.parametrize("args", [["--api-rate", "-1"], ["--api-calls-in-flight", "0"]])
async def test_bad_api_limits_are_a_clear_error(args: list[str]) -> None:
    """Impossible API limits stop `agentkit run` before it starts, with a message."""
    code, _, err = await run("run", "--sandbox", "--port", "0", *args)
    assert code == 2
    assert args[0] in err


def without_credentials(tmp_path: Path) -> dict[str, str]:
    """The test's environment with no phone.systems credentials and a store in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ODYGY_API_KEY", "ODYGY_WEBHOOK_SECRET", "AGENTKIT_SANDBOX")}
    return {**env, "AGENTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'agentkit.db'}"}


async def test_version() -> None:
    """'agentkit --version' prints agentkit and its version, and exits 0."""
    code, out, _ = await run("--version")
    assert code == 0
    assert out == f"agentkit {agentkit.__version__}\n"


async def test_run_help_lists_the_environment_variables() -> None:
    """'agentkit run --help' names every variable the settings read."""
    code, out, _ = await run("run", "--help")
    assert code == 0
    listed = set(re.findall(r"^  ([A-Z][A-Z0-9_]+) ", out, flags=re.MULTILINE))
    assert listed == {variable.name for variable in environment_variables()}


async def test_taken_sim_port_names_the_option(tmp_path: Path) -> None:
    """When the simulator's port is taken, 'agentkit run --sandbox' exits 2 naming --sim-port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run("run", "--sandbox", "--port", "0", "--sim-port", str(port),
                                   "--bots", FIXTURE_BOTS, env=without_credentials(tmp_path),
                                   cwd=tmp_path)
    assert code == 2
    assert f"127.0.0.1:{port}" in err and "--sim-port" in err
    assert "Traceback" not in err + out


async def test_check_without_api_key_suggests_the_sandbox(tmp_path: Path) -> None:
    """'agentkit check' without ODYGY_API_KEY says --sandbox tries agentkit without one."""
    code, _, err = await run("check", "--bots", FIXTURE_BOTS, env=without_credentials(tmp_path),
                             cwd=tmp_path)
    assert code == 2
    assert re.search(r"ODYGY_API_KEY is not set[^;]*--sandbox", err), err


@pytest.mark.parametrize("command", ["check", "run"])
async def test_misspelt_shadow_bot_is_refused(tmp_path: Path, command: str) -> None:
    """AGENTKIT_SHADOW naming no loaded bot stops check and run (exit 2, naming it): the bot
    meant would otherwise act for real."""
    env = {**without_credentials(tmp_path), "AGENTKIT_SHADOW": "no-such-bot"}
    ports = ["--port", "0", "--sim-port", "0"] if command == "run" else []
    code, out, err = await run(command, "--sandbox", *ports, "--bots", FIXTURE_BOTS, env=env,
                               cwd=tmp_path)
    assert code == 2
    assert "AGENTKIT_SHADOW names no-such-bot" in err
    assert "Traceback" not in err + out
