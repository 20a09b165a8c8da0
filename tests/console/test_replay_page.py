"""The console's Replay page: saved replay reports listed newest first, each shown in full."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from quart import Quart

from agentkit.console.access import UsersFile
from agentkit.console.app import ConsoleConfig, console_blueprint
from agentkit.console.operations import ConsoleOperations
from agentkit.console.session import ConsoleAccess
from agentkit.replay.compare import ActionDifference, CallDifferences
from agentkit.replay.report import ReplayReport
from agentkit.replay.reports import ReportError, list_reports, load_report, save_report
from agentkit.testing.harness import BotHarness
from tests.console.support import SHARED_TOKEN, Console

STARTED = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def replay_console(h: BotHarness, folder: Path, *, users: UsersFile | None = None) -> Console:
    """The console over ``h``, its replay reports kept in ``folder``."""
    access = ConsoleAccess(secret_key="test-session-key", shared_token=SHARED_TOKEN,
                           users=users)
    config = ConsoleConfig(access=access, replay_dir=folder)
    app = Quart(__name__)
    app.register_blueprint(console_blueprint(
        config, h.store, ConsoleOperations(h.store, api=h.api), api=h.api,
        approvals=h.environment.approvals))
    return Console(app=app, client=app.test_client(), harness=h)


def replayed(candidate: str = "voicemail-v2", *, hours: int = 0,
             urgency: str = "urgent") -> ReplayReport:
    """A replay of ``candidate`` started ``hours`` after STARTED, one callback's urgency changed."""
    made = ReplayReport(started_at=STARTED + timedelta(hours=hours), candidate=[candidate],
                        against=["voicemail-callback"], model="gpt-4o-mini")
    made.add_call(CallDifferences(call_id="cal_123", actions=[ActionDifference(
        change="changed", kind="callback", event_id="evt_1",
        live={"to": "+442079460000", "urgency": "normal"},
        candidate={"to": "+442079460000", "urgency": urgency}, fields=["urgency"])]))
    made.add_call(CallDifferences(call_id="cal_124"))
    return made


# --- the folder -------------------------------------------------------------------------

def test_a_saved_report_is_named_by_start_source_and_candidate(tmp_path: Path) -> None:
    """save_report makes the folder and writes <UTC start>-<source>-<candidate>.json."""
    path = save_report(replayed(), tmp_path / "reports")
    assert path == tmp_path / "reports" / "20261202T100000Z-replay-voicemail-v2.json"
    assert load_report(tmp_path / "reports", path.name) == replayed()


def test_a_second_report_of_the_same_second_is_kept_beside_the_first(tmp_path: Path) -> None:
    """Two reports with the same start, source and candidate are both kept."""
    first = save_report(replayed(urgency="urgent"), tmp_path)
    second = save_report(replayed(urgency="low"), tmp_path)
    assert first != second and second.name.endswith("-2.json")
    assert load_report(tmp_path, first.name).differing[0].differences.actions[0].candidate \
        == {"to": "+442079460000", "urgency": "urgent"}


@pytest.mark.parametrize("name", ["../secret.json", "..", "sub/report.json", "a\\b.json",
                                  "report.txt", ".hidden.json", "", "x..json"])
def test_a_name_that_is_not_a_plain_json_file_is_refused(tmp_path: Path, name: str) -> None:
    """A name with a folder, .., or not ending in .json is a ReportError, nothing read."""
    with pytest.raises(ReportError, match="not a replay report's name"):
        load_report(tmp_path, name)


def test_the_list_skips_files_that_are_not_reports_and_stops_at_its_limit(
        tmp_path: Path) -> None:
    """Invalid JSON and other files are left out; only the newest `limit` are read."""
    for hours in range(4):
        save_report(replayed(hours=hours), tmp_path)
    (tmp_path / "20991231T000000Z-replay-broken.json").write_text("{not json")
    (tmp_path / "20991231T000000Z-replay-other.json").write_text(json.dumps({"a": 1}))
    listed = list_reports(tmp_path, limit=3)
    assert [r.started_at.hour for r in listed] == [13, 12, 11]
    assert list_reports(tmp_path / "missing") == []


# --- the pages --------------------------------------------------------------------------

async def test_the_list_shows_saved_reports_newest_first(tmp_path: Path) -> None:
    """Each saved report is a row, newest first, with its candidate, calls and differences."""
    folder = tmp_path / "reports"
    older = save_report(replayed("older-bot", hours=0), folder)
    newer = save_report(replayed("newer-bot", hours=5), folder)
    async with BotHarness([], tmp_path) as h:
        console = replay_console(h, folder)
        await console.login()
        status, page = await console.get("/console/replay")
    assert status == 200
    assert page.index(f"/console/replay/{newer.name}") < page.index(f"/console/replay/{older.name}")
    row = page.split(newer.name, 1)[0].rsplit("<tr>", 1)[1]
    assert "2026-12-02 15:00:00" in row and "newer-bot" in row and "voicemail-callback" in row
    assert "<td>2</td>" in row and "<td>1</td>" in row


async def test_a_report_page_shows_its_differences(tmp_path: Path) -> None:
    """A report's page shows its counts and the changed urgency, the call linked to its page."""
    saved = save_report(replayed(), tmp_path / "reports")
    async with BotHarness([], tmp_path) as h:
        console = replay_console(h, tmp_path / "reports")
        await console.login()
        status, page = await console.get(f"/console/replay/{saved.name}")
    assert status == 200
    assert "changed-callbacks" in page
    assert '<del class="value">normal</del> → <ins class="value">urgent</ins>' in page
    assert '<a href="/console/calls/cal_123">cal_123</a>' in page
    assert 'href="/console/replay/report.css"' in page


async def test_a_report_downloads_as_its_json(tmp_path: Path) -> None:
    """?download=1 gives the report's JSON as an attachment."""
    saved = save_report(replayed(), tmp_path / "reports")
    async with BotHarness([], tmp_path) as h:
        console = replay_console(h, tmp_path / "reports")
        await console.login()
        response = await console.client.get(f"/console/replay/{saved.name}?download=1")
        body = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert ReplayReport.model_validate_json(body) == replayed()


@pytest.mark.parametrize("path", ["/console/replay/missing.json",
                                  "/console/replay/..%2Fsecret.json",
                                  "/console/replay/..secret.json",
                                  "/console/replay/notes.txt"])
async def test_an_unknown_or_invalid_report_name_is_404(tmp_path: Path, path: str) -> None:
    """A report that does not exist, or a name reaching out of the folder, answers 404."""
    (tmp_path / "secret.json").write_text(replayed().model_dump_json())
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "notes.txt").write_text("not a report")
    async with BotHarness([], tmp_path) as h:
        console = replay_console(h, tmp_path / "reports")
        await console.login()
        status, page = await console.get(path)
    assert status == 404
    assert "voicemail-v2" not in page


async def test_signed_out_replay_pages_redirect_to_login(tmp_path: Path) -> None:
    """Without a session the list and a report answer 303 to the login page."""
    saved = save_report(replayed(), tmp_path / "reports")
    async with BotHarness([], tmp_path) as h:
        console = replay_console(h, tmp_path / "reports")
        for path in ("/console/replay", f"/console/replay/{saved.name}",
                     "/console/replay/report.css"):
            response = await console.client.get(path)
            assert response.status_code == 303, path
            assert response.headers["Location"].startswith("/console/login"), path


async def test_a_viewer_may_read_reports(tmp_path: Path) -> None:
    """A viewer sees the list, with the Replay link in the navigation, and a report."""
    users = UsersFile(tmp_path / "users.json")
    token = users.add("Vera", "viewer")
    saved = save_report(replayed(), tmp_path / "reports")
    async with BotHarness([], tmp_path) as h:
        console = replay_console(h, tmp_path / "reports", users=users)
        assert (await console.login(token=token)).status_code == 303
        listed, page = await console.get("/console/replay")
        shown, _ = await console.get(f"/console/replay/{saved.name}")
    assert (listed, shown) == (200, 200)
    assert '<a href="/console/replay" class="on">Replay</a>' in page
