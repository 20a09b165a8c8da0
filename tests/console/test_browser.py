"""The console in a real browser: headless Chromium against ``agentkit run --sandbox``.

agentkit runs as a user starts it, from a folder of its own with ``--bots`` pointing
at a copy of the project's bots plus a probe bot (tests/fixtures/bots/_console_probe.py)
that fails while a marker file exists and changes the "Main IVR" flow on a voicemail
from one number. The browser signs in with the URL agentkit prints, drives README's
voicemail demo through ``agentkit sim voicemail``, and acts through the pages' own
forms and dialogs. Screenshots of the pages go to each test's tmp_path, and also to
$AGENTKIT_SCREENSHOTS when it is set (docs/img/console/ holds the ones the docs use).

Without Chromium and chromedriver the tests skip; with ``AGENTKIT_REQUIRE_BROWSER=1``
(as CI runs) they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from agentkit.sim import SANDBOX_API_KEY
from agentkit.testing import wait_until
from tests.process import AGENTKIT

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "fixtures" / "bots" / "_console_probe.py"
REQUIRE_BROWSER = "AGENTKIT_REQUIRE_BROWSER"
SCREENSHOTS = "AGENTKIT_SCREENSHOTS"
WINDOW = (1280, 800)
DEADLINE = 60.0  # seconds for anything the pipeline does; a live part refreshes every 5 s

# README's sandbox demo, word for word.
DEMO_CALLER = "+442079460000"
DEMO_TYPED = "+44 20 7946 0000"
DEMO_WORDS = ("Hi, this is Ana Popescu. My internet has been down since this morning, "
              "please call me back.")
# Each test's own caller: a caller has one open callback at a time.
DEAD_CALLER = "+442079460001"
FLOW_CALLER = "+442079460002"
FLOW = "Main IVR"
HOLIDAY_PROMPT = "We are closed for the holiday. Press 1 for sales, 2 for support."

T = TypeVar("T")


# finding the browser

def _found(*names: str) -> str | None:
    for name in names:
        path = Path("/usr/bin") / name
        if os.access(path, os.X_OK):
            return str(path)
        which = shutil.which(name)
        if which:
            return which
    return None


def browser_required() -> bool:
    """True when AGENTKIT_REQUIRE_BROWSER asks for the browser tests to fail, not skip."""
    return os.environ.get(REQUIRE_BROWSER, "").strip().lower() in {"1", "true", "yes", "on"}


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver; without them, skip (or fail, if they are required)."""
    chromium = _found("chromium", "chromium-browser", "google-chrome")
    driver = _found("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver))
               if path is None]
    if chromium is not None and driver is not None:
        return chromium, driver
    reason = (f"the browser tests need Chromium and chromedriver: no {' and no '.join(missing)}"
              " found (Debian: apt-get install chromium chromium-driver)")
    if browser_required():
        pytest.fail(f"{reason}; {REQUIRE_BROWSER} is set, so this fails instead of skipping",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(browser_paths: tuple[str, str]) -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module, its console messages kept."""
    chromium, driver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1",
                     "--hide-scrollbars", "--lang=en-GB"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        # The page itself is the window's size, so screenshots are exactly that.
        chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False})
        yield chrome
    finally:
        chrome.quit()


# agentkit, as a user runs it

def _clean_environment() -> dict[str, str]:
    """This process's environment without agentkit's, phone.systems', the model's or chat's."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AGENTKIT_", "ODYGY_", "OPENAI_", "SLACK_", "TEAMS_"))}


def _wait(condition: Callable[[], Any], *, message: str, timeout: float = DEADLINE) -> Any:
    return asyncio.run(wait_until(condition, timeout=timeout, interval=0.05, message=message))


@dataclass
class Sandbox:
    """``agentkit run --sandbox`` in another process: its log, its URLs, its simulator."""

    folder: Path
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    marker: Path

    def logged(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue  # a chat note printed to the console, or a line being written
            if isinstance(parsed, dict) and parsed.get("event") == event:
                found.append(parsed)
        return found

    def output(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    @property
    def url(self) -> str:
        return str(self.logged("agentkit.started")[0]["url"])

    @property
    def login_url(self) -> str:
        return str(self.logged("console.ready")[0]["url"])

    @property
    def sim_url(self) -> str:
        # The simulator took a free port: its API is logged.
        return str(self.logged("agentkit.started")[0]["api"]).removesuffix("/v1")

    def voicemail(self, caller: str, words: str) -> str:
        """README's demo command, run as a user runs it; the voicemail's call id."""
        done = subprocess.run(
            [AGENTKIT, "sim", "voicemail", "--from", caller, "--words", words,
             "--sim-url", self.sim_url],
            capture_output=True, text=True, env=self.env, cwd=self.folder / "elsewhere",
            timeout=DEADLINE, check=False,
        )
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout.splitlines()[-1])["call_id"])

    def flow(self, name: str) -> dict[str, Any]:
        """The call flow ``name`` as the simulator's API answers it: name, entry, blocks."""
        response = httpx.get(f"{self.sim_url}/v1/call_flows", params={"limit": 100},
                             headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"}, timeout=10)
        response.raise_for_status()
        (flow,) = [f for f in response.json()["data"] if f["name"].startswith(name)]
        return {"name": flow["name"], "entry": flow["entry"], "blocks": flow["blocks"]}


@pytest.fixture(scope="module")
def sandbox(browser_paths: tuple[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """agentkit in the sandbox, started from an empty folder with the bots elsewhere.

    Asks for ``browser_paths`` so that without a browser nothing is started.
    """
    folder = tmp_path_factory.mktemp("console-browser")
    app = folder / "srv" / "app"
    shutil.copytree(ROOT / "bots", app / "bots", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "prompts", app / "prompts")
    shutil.copy(PROBE, app / "bots" / "console_probe.py")
    (folder / "elsewhere").mkdir()
    marker = folder / "probe-fails"
    env = {**_clean_environment(),
           "AGENTKIT_DATABASE_URL": f"sqlite:///{folder / 'srv' / 'agentkit.db'}",
           "CONSOLE_PROBE_MARKER": str(marker), "CONSOLE_PROBE_FLOW_FROM": FLOW_CALLER}
    yield from run_sandbox(folder, env, [
        "--bots", str(app / "bots"), "--max-attempts", "2", "--retry-base-seconds", "0.1",
    ], marker=marker)


def run_sandbox(folder: Path, env: dict[str, str], options: list[str], *,
                marker: Path) -> Iterator[Sandbox]:
    """``agentkit run --sandbox`` with ``options``, from ``folder``/elsewhere, until SIGTERM."""
    log = folder / "agentkit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [AGENTKIT, "run", "--sandbox", "--port", "0", "--sim-port", "0",
             "--poll-seconds", "0.1", *options],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder / "elsewhere",
        )
    found = Sandbox(folder, process, log, env, marker)
    try:
        _wait(lambda: found.logged("console.ready") or process.poll() is not None,
              message="agentkit to start")
        assert process.poll() is None, f"agentkit exited at start:\n{found.output()}"
        yield found
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


# the console, through the browser

def _words(text: str | None) -> str:
    return " ".join((text or "").split())


class Console:
    """The browser on the sandbox's console, with waits that outlast a live part's refresh."""

    def __init__(self, driver: webdriver.Chrome, sandbox: Sandbox, shots: list[Path]) -> None:
        self.driver = driver
        self.sandbox = sandbox
        self.shots = shots

    def open(self, path: str) -> None:
        self.driver.get(self.sandbox.url + path)

    @property
    def path(self) -> str:
        return urlsplit(self.driver.current_url).path

    def until(self, condition: Callable[[], T], message: str,
              timeout: float = DEADLINE) -> T:
        """The first truthy value of ``condition``; a vanished element (the live part was
        swapped meanwhile) or one not there yet means: look again."""
        try:
            value: T = WebDriverWait(
                self.driver, timeout, poll_frequency=0.1,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(lambda _: condition())
        except TimeoutException:
            raise AssertionError(
                f"{message}: not within {timeout} s. The page ({self.driver.current_url}) "
                f"reads: {self.text('main')[:3000]}\nagentkit's log ends:\n"
                f"{self.sandbox.output()}") from None
        return value

    def text(self, css: str) -> str:
        try:
            found = self.driver.find_element(By.CSS_SELECTOR, css)
            return _words(found.get_attribute("textContent"))
        except (NoSuchElementException, StaleElementReferenceException):
            return ""

    def row(self, table: str, *cells: str) -> WebElement:
        """The first row of ``table`` with each of ``cells`` in one of its cells."""
        for row in self.driver.find_elements(By.CSS_SELECTOR, f"{table} tbody tr"):
            texts = [_words(td.get_attribute("textContent"))
                     for td in row.find_elements(By.TAG_NAME, "td")]
            if all(any(cell in text for text in texts) for cell in cells):
                return row
        raise NoSuchElementException(f"no row of {table} has {cells}")

    def item(self, heading: str) -> WebElement:
        """The first timeline item whose heading starts with ``heading``."""
        for item in self.driver.find_elements(By.CSS_SELECTOR, "li.item"):
            if self.heading(item).startswith(heading):
                return item
        raise NoSuchElementException(f"no timeline item {heading!r}")

    @staticmethod
    def heading(item: WebElement) -> str:
        return _words(item.find_element(By.TAG_NAME, "h3").get_attribute("textContent"))

    @staticmethod
    def fields(item: WebElement) -> dict[str, str]:
        names = item.find_elements(By.CSS_SELECTOR, "dl.fields dt")
        values = item.find_elements(By.CSS_SELECTOR, "dl.fields dd")
        return {_words(n.get_attribute("textContent")): _words(v.get_attribute("textContent"))
                for n, v in zip(names, values, strict=True)}

    def click(self, find: Callable[[], WebElement], message: str) -> None:
        """Click what ``find`` finds, finding it again if the live part was swapped."""
        def clicked() -> bool:
            find().click()
            return True
        self.until(clicked, message)

    def refreshed(self) -> None:
        """Wait until the page's live part has been swapped for a freshly fetched fragment
        (console.js marks it with data-shown); its forms are then the fragment's."""
        self.until(lambda: self.driver.find_elements(By.CSS_SELECTOR, "#live[data-shown]"),
                   "the page's live part to refresh")

    def on_page(self, path: str) -> bool:
        """On the whole page at ``path`` (not a bare live fragment of it)."""
        query = parse_qs(urlsplit(self.driver.current_url).query)
        return (self.path == path and "fragment" not in query
                and bool(self.driver.find_elements(By.CSS_SELECTOR, "header.bar nav")))

    def sign_in(self) -> None:
        """Open the URL agentkit printed: it signs in and lands on the calls page."""
        self.driver.get(self.sandbox.login_url)
        self.until(lambda: self.path == "/console/calls", "the printed URL to sign in")

    def sign_out(self) -> None:
        self.open("/console/login")
        self.driver.delete_all_cookies()

    def screenshot(self, name: str) -> None:
        for folder in self.shots:
            folder.mkdir(parents=True, exist_ok=True)
            assert self.driver.save_screenshot(str(folder / f"{name}.png"))


@pytest.fixture
def console(browser: webdriver.Chrome, sandbox: Sandbox, tmp_path: Path) -> Console:
    """The browser, signed in with the printed URL; screenshots to tmp_path (and
    $AGENTKIT_SCREENSHOTS)."""
    shots = [tmp_path / "screenshots"]
    if os.environ.get(SCREENSHOTS):
        shots.append(Path(os.environ[SCREENSHOTS]))
    found = Console(browser, sandbox, shots)
    found.sign_in()
    return found


# signing in

def test_the_url_printed_at_start_up_signs_in(console: Console) -> None:
    """Signed out, a page leads to the login form; the console.ready URL signs in as the
    sandbox's shared login and lands on the calls page."""
    console.sign_out()
    console.open("/console/calls")
    console.until(lambda: console.path == "/console/login", "the login form")
    assert console.driver.find_elements(By.NAME, "token")
    console.driver.get(console.sandbox.login_url)
    console.until(lambda: console.path == "/console/calls", "the calls page")
    assert "sandbox · operator (shared login)" in console.text("header")


def test_the_login_form_signs_in_and_returns_to_the_page_asked_for(console: Console) -> None:
    """Signed out, the health page leads to the form; the printed token and a name typed
    into it sign in as that name and go back to the health page."""
    token = parse_qs(urlsplit(console.sandbox.login_url).query)["token"][0]
    console.sign_out()
    console.open("/console/health")
    console.until(lambda: console.path == "/console/login", "the login form")
    console.driver.find_element(By.NAME, "name").send_keys("Dana")
    console.screenshot("login")
    console.driver.find_element(By.NAME, "token").send_keys(token)
    console.driver.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
    console.until(lambda: console.path == "/console/health", "the health page")
    assert "Dana · operator (shared login)" in console.text("header")


# README's demo, found and followed

def test_the_demo_voicemail_is_found_by_number_and_its_timeline_tells_the_story(
        console: Console) -> None:
    """The demo's caller typed with spaces finds the voicemail, whose row says the callback
    reached the caller and a note was posted; its timeline loads the transcript and shows
    the callback (reached) and the notes."""
    call_id = console.sandbox.voicemail(DEMO_CALLER, DEMO_WORDS)
    console.open("/console/calls")
    search = console.driver.find_element(By.NAME, "q")
    search.clear()
    search.send_keys(DEMO_TYPED, Keys.ENTER)
    console.until(lambda: f"calls from or to {DEMO_CALLER}" in console.text(".read-as"),
                  "the search to be read as the caller's number")
    assert parse_qs(urlsplit(console.driver.current_url).query)["q"] == [DEMO_TYPED]
    row = console.until(lambda: console.row("table.calls", call_id, "callback reached",
                                            "note posted"),
                        "the voicemail's row to say the callback reached and the note posted")
    caller = _words(row.find_elements(By.TAG_NAME, "td")[1].get_attribute("textContent"))
    assert caller == DEMO_CALLER
    console.screenshot("calls")
    console.click(lambda: console.row("table.calls", call_id).find_element(
        By.LINK_TEXT, call_id), "the call's link")
    console.until(lambda: console.path == f"/console/calls/{call_id}", "the call's timeline")
    console.until(lambda: "Ana Popescu" in console.text(".transcript .segments"),
                  "the transcript to load")
    console.until(lambda: console.item(f"action note: Callback to {DEMO_CALLER}: reached"),
                  "the note that the callback reached the caller")
    console.item(f"action note: Voicemail from {DEMO_CALLER}")
    console.screenshot("call")
    callback = console.item("action callback reached")
    console.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", callback)
    console.screenshot("call-callback")


# dead letters

def test_a_dead_letter_retried_from_the_console_runs_again_and_succeeds(
        console: Console) -> None:
    """While the probe bot fails, a voicemail's job is dead-lettered; with the fault gone,
    Show then Retry (after the live part refreshed) runs it again: the dead letters page
    empties and the call's timeline shows the bot's run of that job ok."""
    sandbox = console.sandbox
    sandbox.marker.touch()
    try:
        call_id = sandbox.voicemail(DEAD_CALLER, "Call me back about my invoice, please.")
        console.open("/console/dead")
        console.until(lambda: console.row("table.dead", "console-probe",
                                          "console probe told to fail"),
                      "the probe's dead letter")
        console.screenshot("dead")
    finally:
        sandbox.marker.unlink(missing_ok=True)
    console.click(lambda: console.row("table.dead", "console-probe").find_element(
        By.LINK_TEXT, "Show"), "Show")
    console.until(lambda: "Dead letters of console-probe" in console.text("h1"),
                  "the group's page")
    row = console.until(lambda: console.row("table.dead-jobs", "console probe told to fail"),
                        "the dead job")
    job_id = _words(row.find_element(By.TAG_NAME, "td").get_attribute("textContent")).split()[0]
    console.refreshed()  # its forms now come from the live fragment
    console.click(lambda: console.row("table.dead-jobs", job_id).find_element(
        By.XPATH, ".//button[normalize-space()='Retry']"), "Retry")
    console.until(lambda: "The job is queued again" in console.text(".note"),
                  "the retry to be confirmed")
    assert console.on_page("/console/dead/group")
    console.open("/console/dead")
    console.until(lambda: "No dead letters." in console.text("#live"),
                  "the dead letters page to empty")

    def ran_ok() -> bool:
        runs = [console.fields(item) for item in
                console.driver.find_elements(By.CSS_SELECTOR, "li.item.run.ok")
                if console.heading(item) == "run console-probe ran ok"]
        return any(run.get("job") == job_id for run in runs)

    console.open(f"/console/calls/{call_id}")
    console.until(ran_ok, f"the call's timeline to show job {job_id} run ok")


# flow changes

def test_a_flow_change_is_reverted_from_the_flow_changes_page(console: Console) -> None:
    """The probe bot's change to Main IVR shows as a diff; Revert, confirmed in the
    browser's dialog, puts the flow back as the simulator's API shows it, and the browser
    is back on the flow changes page (even with the live part refreshed meanwhile)."""
    sandbox = console.sandbox
    before = sandbox.flow(FLOW)
    sandbox.voicemail(FLOW_CALLER, "Are you open over the holiday?")
    console.open("/console/flows")
    change = console.until(lambda: console.item("update flow by console-probe"),
                           "the probe's flow change")
    assert HOLIDAY_PROMPT in _words(change.find_element(By.CSS_SELECTOR, "pre.diff")
                                    .get_attribute("textContent"))
    assert sandbox.flow(FLOW)["blocks"]["ivr_1"]["prompt_tts"] == HOLIDAY_PROMPT
    console.screenshot("flows")
    console.refreshed()  # its forms now come from the live fragment
    console.click(lambda: console.item("update flow by console-probe").find_element(
        By.XPATH, ".//button[normalize-space()='Revert']"), "Revert")
    dialog = WebDriverWait(console.driver, 10).until(expected_conditions.alert_is_present())
    assert dialog.text == "Revert this flow change?"
    dialog.accept()
    console.until(lambda: "The flow change was reverted." in console.text(".note"),
                  "the revert to be confirmed")
    assert console.on_page("/console/flows")
    assert sandbox.flow(FLOW) == before
    console.item("revert flow by console")
    assert "reverted" in console.heading(console.item("update flow by console-probe"))
    assert not console.item("update flow by console-probe").find_elements(
        By.XPATH, ".//button[normalize-space()='Revert']")


# health, and the pages themselves

def test_the_health_page_shows_the_stores_figures(console: Console) -> None:
    """Queue depth, jobs per minute, dead letters, model spend and the call budget show."""
    console.open("/console/health")
    console.until(lambda: console.text("h1") == "Health", "the health page")
    names = [_words(th.get_attribute("textContent"))
             for th in console.driver.find_elements(By.CSS_SELECTOR, "table.health th")]
    assert names == ["Queue depth", "Jobs per minute", "Dead letters", "Model spend today",
                     "API budget used"]
    assert re.search(r"\d+ of 500 outbound calls in 24 h", console.text("table.health"))
    console.screenshot("health")


def test_no_page_logs_an_error_in_the_browser(console: Console) -> None:
    """Each page gets its stylesheet and script under the CSP, the live part refreshes,
    and Chrome's console reports nothing at error level."""
    console.driver.get_log("browser")  # what earlier tests left
    for path in ("/console/login", "/console/callbacks", "/console/dead", "/console/flows",
                 "/console/health", "/console/calls"):
        console.open(path)
        background = console.driver.execute_script(
            "return getComputedStyle(document.querySelector('header.bar')).backgroundColor")
        assert background == "rgb(29, 35, 48)", path
    console.until(lambda: console.driver.find_elements(By.CSS_SELECTOR, "#live[data-shown]"),
                  "the calls page's live part to refresh")
    errors = [entry for entry in console.driver.get_log("browser")
              if entry["level"] == "SEVERE"]
    assert errors == []
