"""The console as `agentkit run` serves it: off unless configured, behind a proxy, in /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx

from agentkit.testing import wait_until
from tests.process import FIXTURE_BOTS, AgentkitProcess, run_env

TOKEN = "console-token-for-the-process-test-0123"


async def start(processes: list[AgentkitProcess], tmp: Path, **env: str) -> AgentkitProcess:
    process = AgentkitProcess(["--port", "0", "--bots", FIXTURE_BOTS], run_env(tmp, **env),
                              cwd=str(tmp))
    processes.append(process)
    return await process.start()


async def sign_in(http: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    return await http.post(f"{url}/console/login", data={"token": TOKEN, "name": "Dana"},
                           headers=headers)


async def test_the_console_is_off_unless_a_token_or_users_file_is_set(
        processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """Without AGENTKIT_CONSOLE_TOKEN or AGENTKIT_CONSOLE_USERS, /console is a JSON 404."""
    agentkit = await start(processes, tmp_path)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{agentkit.url}/console/calls")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert agentkit.logged("console.ready") == []


async def test_with_a_token_the_console_signs_in_and_says_where_it_is(
        processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """With the shared token, the console's address is logged (without the token), and a
    sign-in over HTTP opens its pages."""
    agentkit = await start(processes, tmp_path, AGENTKIT_CONSOLE_TOKEN=TOKEN)
    # Logged just after agentkit.started, which is all start() waits for.
    (ready,) = await wait_until(lambda: agentkit.logged("console.ready"), timeout=10,
                                message="the console's address in the log")
    assert ready["url"] == f"{agentkit.url}/console/"
    assert TOKEN not in agentkit.output()
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{agentkit.url}/console/calls")).status_code == 303
        assert (await sign_in(http, agentkit.url)).status_code == 303
        page = await http.get(f"{agentkit.url}/console/calls")
    assert page.status_code == 200 and "Dana" in page.text


async def test_a_trusted_proxy_gives_the_address_and_scheme(
        processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """From a trusted proxy, X-Forwarded-For is the address the login limit counts, and
    X-Forwarded-Proto https makes the cookie Secure."""
    agentkit = await start(processes, tmp_path, AGENTKIT_CONSOLE_TOKEN=TOKEN,
                           AGENTKIT_FORWARDED_ALLOW_IPS="127.0.0.1")
    async with httpx.AsyncClient() as http:
        for n in range(7):
            response = await http.post(f"{agentkit.url}/console/login",
                                       data={"token": "wrong", "name": "x"},
                                       headers={"X-Forwarded-For": f"203.0.113.{n}"})
            assert response.status_code == 401
        secure = await sign_in(http, agentkit.url, **{"X-Forwarded-Proto": "https",
                                                      "X-Forwarded-For": "203.0.113.50"})
    assert secure.status_code == 303
    assert "Secure" in secure.headers["set-cookie"]


async def test_an_untrusted_client_cannot_choose_its_address(
        processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """When the connection is not from a trusted proxy, X-Forwarded-For is ignored: a sixth
    attempt in a minute is refused whatever address it claims."""
    agentkit = await start(processes, tmp_path, AGENTKIT_CONSOLE_TOKEN=TOKEN,
                           AGENTKIT_FORWARDED_ALLOW_IPS="192.0.2.1")
    async with httpx.AsyncClient() as http:
        statuses = []
        for n in range(6):
            response = await http.post(
                f"{agentkit.url}/console/login", data={"token": "wrong", "name": "x"},
                headers={"X-Forwarded-For": f"203.0.113.{n}", "X-Forwarded-Proto": "https"})
            statuses.append(response.status_code)
        refused = await sign_in(http, agentkit.url)
    assert statuses == [401] * 5 + [429]
    assert refused.status_code == 429


async def test_metrics_show_the_consoles_health_figures(
        processes: list[AgentkitProcess], tmp_path: Path) -> None:
    """/metrics carries the figures the console's health panel shows, read from the store."""
    agentkit = await start(processes, tmp_path)
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{agentkit.url}/metrics")).text
    for name in ("agentkit_jobs_per_minute", "agentkit_dead_letters_waiting",
                 "agentkit_llm_spend_today_usd", "agentkit_outbound_calls_last_day",
                 "agentkit_call_budget_used_ratio"):
        assert f"\n{name} " in text, name
