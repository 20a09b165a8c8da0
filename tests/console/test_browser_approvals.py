"""README's approvals demo in a real browser: ``agentkit run --sandbox --approvals``.

agentkit runs as a user starts it, from a folder of its own with ``--bots`` pointing at
a copy of the project's bots. The URL it prints signs in as ``sandbox``, an approver;
README's demo voicemail (``agentkit sim voicemail``) asks for a callback, which waits on
the Approvals page until the browser approves it there. The browser, the sandbox's log
and the console helpers are test_browser.py's; the approvals screenshot goes to tmp_path,
and to $AGENTKIT_SCREENSHOTS when set (docs/img/console/approvals.png is that one).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from agentkit.sim import SANDBOX_API_KEY
from tests.console import test_browser as shared
from tests.console.test_browser import DEMO_CALLER, DEMO_WORDS, ROOT, Console, Sandbox

# test_browser.py's fixtures: the browser (one Chromium for this module) and the console
# signed in with the printed URL, here on this module's sandbox.
browser_paths = shared.browser_paths
browser = shared.browser
console = shared.console


@pytest.fixture(scope="module")
def sandbox(browser_paths: tuple[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """``agentkit run --sandbox --approvals``, started from an empty folder with the bots
    elsewhere. Asks for ``browser_paths`` so that without a browser nothing is started."""
    folder = tmp_path_factory.mktemp("console-approvals")
    app = folder / "srv" / "app"
    shutil.copytree(ROOT / "bots", app / "bots", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "prompts", app / "prompts")
    (folder / "elsewhere").mkdir()
    env = {**shared._clean_environment(),
           "AGENTKIT_DATABASE_URL": f"sqlite:///{folder / 'srv' / 'agentkit.db'}"}
    yield from shared.run_sandbox(folder, env, ["--approvals", "--bots", str(app / "bots")],
                                  marker=folder / "unused")


def outbound_calls(sandbox: Sandbox, to: str) -> list[dict[str, Any]]:
    """The calls placed to ``to``, as the simulator's API lists them."""
    response = httpx.get(f"{sandbox.sim_url}/v1/calls",
                         params={"direction": "outbound", "to": to, "limit": 100},
                         headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"}, timeout=10)
    response.raise_for_status()
    return list(response.json()["data"])


def test_the_demo_callback_waits_in_the_console_until_approved_there(
        console: Console) -> None:
    """The printed URL signs in as sandbox, an approver; the demo voicemail's callback is
    listed (and counted) on the Approvals page and no call is placed until Approve,
    confirmed in the browser's dialog, after which the callback is placed once and the
    list empties."""
    sandbox = console.sandbox
    assert "sandbox · approver" in console.text("header")
    assert "shared login" not in console.text("header")
    call_id = sandbox.voicemail(DEMO_CALLER, DEMO_WORDS)
    console.open("/console/approvals")
    waiting = f"callback to {DEMO_CALLER}"
    console.until(lambda: console.item(waiting), "the callback's approval")
    console.open("/console/approvals")  # the navigation counts it only on a fresh page
    assert console.text("header nav .count") == "1"
    item = console.item(waiting)
    assert "asked by voicemail-callback" in console.heading(item)
    assert console.fields(item)["Call"] == call_id
    assert outbound_calls(sandbox, DEMO_CALLER) == []
    console.screenshot("approvals")
    console.refreshed()  # its forms now come from the live fragment
    console.click(lambda: console.item(waiting).find_element(
        By.XPATH, ".//button[normalize-space()='Approve']"), "Approve")
    dialog = WebDriverWait(console.driver, 10).until(expected_conditions.alert_is_present())
    assert dialog.text.startswith(f"Approve: {waiting}")
    dialog.accept()
    console.until(lambda: console.text(".note").startswith("Approved"),
                  "the approval to be confirmed")
    assert console.on_page("/console/approvals")
    console.until(lambda: "No approval is waiting." in console.text("#live"),
                  "the approval to leave the list")
    (placed,) = shared._wait(lambda: outbound_calls(sandbox, DEMO_CALLER),
                             message="the callback to be placed")
    assert placed["to"] == DEMO_CALLER
    console.open(f"/console/calls/{call_id}")
    console.until(lambda: placed["id"] in (console.item("action callback")
                                           .get_attribute("textContent") or ""),
                  f"the call's timeline to show the callback placed as {placed['id']}")
