"""Signing in to the console: the form, the session cookie, the limit, CSRF and roles."""

from __future__ import annotations

import time
from pathlib import Path

import itsdangerous.timed
import pytest

from agentkit.console.access import LoginLimiter, UsersFile
from agentkit.console.session import SESSION_COOKIE
from agentkit.testing.harness import BotHarness
from tests.console.support import SHARED_TOKEN, make_console

PAGES = ["/console/calls", "/console/calls/cal_x", "/console/dead", "/console/callbacks",
         "/console/flows", "/console/health", "/console/dead/group?bot=x&error=y",
         "/console/calls/cal_x/transcript", "/console/approvals", "/console/"]


async def test_every_page_without_a_session_redirects_to_login(tmp_path: Path) -> None:
    """Each console page answers 303 to the login page, carrying where it was going."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        for page in PAGES:
            response = await console.client.get(page)
            assert response.status_code == 303, page
            assert response.headers["Location"].startswith("/console/login"), page
        response = await console.client.get("/console/calls?q=%2B44")
        expected = "/console/login?next=%2Fconsole%2Fcalls%3Fq%3D%252B44"
        assert response.headers["Location"] == expected


async def test_every_change_without_a_session_redirects_and_changes_nothing(
        tmp_path: Path) -> None:
    """A POST with no session is sent to the login page, not carried out."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        for path in ("/console/dead/1/retry", "/console/dead/1/discard",
                     "/console/dead/retry-group", "/console/callbacks/cancel",
                     "/console/flows/revert", "/console/approvals/apr_x/approve",
                     "/console/approvals/apr_x/reject", "/console/logout"):
            response = await console.client.post(path, form={"csrf": "x"})
            assert response.status_code == 303, path
            assert response.headers["Location"] == "/console/login", path


async def test_login_form_is_a_page_with_token_and_name(tmp_path: Path) -> None:
    """GET /console/login shows a form posting token and name to itself."""
    async with BotHarness([], tmp_path) as h:
        status, page = await make_console(h).get("/console/login")
    assert status == 200
    assert 'action="/console/login"' in page
    assert 'name="token"' in page and 'name="name"' in page


async def test_right_token_sets_a_strict_httponly_session_cookie(tmp_path: Path) -> None:
    """A right token answers 303 with a signed, HttpOnly, SameSite=Strict cookie for 12 h."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        response = await console.login()
        assert response.status_code == 303
        assert response.headers["Location"] == "/console/calls"
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Max-Age=43200" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
        status, _ = await console.get("/console/calls")
        assert status == 200


async def test_cookie_is_secure_when_the_request_came_over_https(tmp_path: Path) -> None:
    """Over HTTPS (directly, or as a trusted proxy said) the cookie is marked Secure."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        response = await console.client.post(
            "/console/login", form={"token": SHARED_TOKEN, "name": "Dana"}, scheme="https")
        assert response.status_code == 303
        assert "Secure" in response.headers["Set-Cookie"]


async def test_wrong_token_is_401_and_sets_no_cookie(tmp_path: Path) -> None:
    """A wrong token gets 401 with the form again, and no session."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        response = await console.login(token="not-the-token")
        assert response.status_code == 401
        assert "Set-Cookie" not in response.headers
        assert "That token is not right" in await response.get_data(as_text=True)
        assert (await console.client.get("/console/calls")).status_code == 303


async def test_sixth_attempt_in_a_minute_is_refused_even_with_the_right_token(
        tmp_path: Path) -> None:
    """Five attempts a minute per address; the sixth gets 429 before the token is looked at,
    and one more is allowed once the oldest attempt leaves the 60-second window."""
    now = [1000.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    async with BotHarness([], tmp_path) as h:
        console = make_console(h, limiter=limiter)
        for _ in range(5):
            assert (await console.login(token="wrong")).status_code == 401
        refused = await console.login()
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "60"
        assert "Set-Cookie" not in refused.headers
        assert (await console.login(address="10.0.0.9")).status_code == 303
        now[0] += 60.5
        assert (await console.login()).status_code == 303


async def test_logout_ends_the_session(tmp_path: Path) -> None:
    """After signing out, pages redirect to the login page again."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        await console.login()
        response = await console.post("/console/logout")
        assert response.status_code == 303
        assert response.headers["Location"] == "/console/login"
        assert (await console.client.get("/console/calls")).status_code == 303


async def test_a_post_without_the_sessions_csrf_token_is_refused(tmp_path: Path) -> None:
    """No token, or another session's token, gets 403 and changes nothing."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        await console.login()
        other = make_console(h)
        await other.login(name="Other")
        assert other.csrf != console.csrf
        for form in ({}, {"csrf": other.csrf}, {"csrf": ""}):
            response = await console.client.post("/console/logout", form=form)
            assert response.status_code == 403
        assert (await console.client.get("/console/calls")).status_code == 200


async def test_the_csrf_token_lasts_the_whole_session(tmp_path: Path) -> None:
    """One token serves every form of the session, not one form only."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        await console.login()
        first = (await console.post("/console/dead/999/retry")).status_code
        second = (await console.post("/console/dead/999/retry")).status_code
        assert first == second == 404  # past the CSRF check both times: no such dead letter


async def test_a_viewer_sees_pages_but_changes_nothing(tmp_path: Path) -> None:
    """A viewer's pages show no change buttons, and a change posted anyway gets 403."""
    users = UsersFile(tmp_path / "users.json")
    token = users.add("Vera", "viewer")
    async with BotHarness([], tmp_path) as h:
        console = make_console(h, shared_token="", users_file=users)
        assert (await console.login(token=token)).status_code == 303
        status, page = await console.get("/console/flows")
        assert status == 200 and "Vera" in page and "viewer" in page
        response = await console.post("/console/dead/1/retry")
        assert response.status_code == 403
        assert "viewer" in await response.get_data(as_text=True)


async def test_a_users_file_login_records_the_files_name_not_the_forms(tmp_path: Path) -> None:
    """With a personal token, the name comes from the users file."""
    users = UsersFile(tmp_path / "users.json")
    token = users.add("Olga", "operator")
    async with BotHarness([], tmp_path) as h:
        console = make_console(h, shared_token="", users_file=users)
        await console.login(token=token, name="Somebody Else")
        _, page = await console.get("/console/health")
    assert "Olga · operator" in page
    assert "Somebody Else" not in page


async def test_the_shared_login_is_marked_as_shared(tmp_path: Path) -> None:
    """The shared token gives an operator whose name is shown as unproven."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        await console.login(name="Dana")
        _, page = await console.get("/console/health")
    assert "Dana · operator (shared login)" in page


async def test_a_session_ends_when_its_user_is_removed(tmp_path: Path) -> None:
    """Taking someone out of the users file ends their sessions at once."""
    users = UsersFile(tmp_path / "users.json")
    token = users.add("Olga", "operator")
    users.add("Ivan", "operator")
    async with BotHarness([], tmp_path) as h:
        console = make_console(h, shared_token="", users_file=users)
        await console.login(token=token)
        assert (await console.client.get("/console/calls")).status_code == 200
        users._write([u for u in users.users() if u.name != "Olga"])
        assert (await console.client.get("/console/calls")).status_code == 303


async def test_a_session_expires_after_twelve_hours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cookie signed more than 12 hours ago no longer signs anyone in."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        real = time.time
        monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() - 12 * 3600 - 5)
        assert (await console.login()).status_code == 303
        monkeypatch.setattr(itsdangerous.timed.time, "time", real)
        assert (await console.client.get("/console/calls")).status_code == 303


async def test_a_forged_or_altered_cookie_signs_nobody_in(tmp_path: Path) -> None:
    """A cookie not signed with the console's key is ignored."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        response = await console.login()
        value = response.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
        fresh = make_console(h)
        fresh.client.set_cookie("localhost", SESSION_COOKIE, value[:-3] + "abc",
                                path="/console")
        assert (await fresh.client.get("/console/calls")).status_code == 303


async def test_after_login_only_a_console_page_is_a_destination(tmp_path: Path) -> None:
    """``next`` never sends the browser to another site."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        for target, expected in (("/console/dead", "/console/dead"),
                                 ("https://evil.example/", "/console/calls"),
                                 ("//evil.example/console/", "/console/calls"),
                                 ("/console/../x", "/console/calls")):
            response = await console.client.post(
                "/console/login", form={"token": SHARED_TOKEN, "name": "D", "next": target})
            assert response.headers["Location"] == expected, target


async def test_a_sign_in_posted_from_another_site_is_refused(tmp_path: Path) -> None:
    """A browser's Origin naming another site makes the sign-in fail (login CSRF)."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        response = await console.client.post(
            "/console/login", form={"token": SHARED_TOKEN, "name": "D"},
            headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        assert "Set-Cookie" not in response.headers


async def test_the_sandbox_url_token_signs_in_only_where_given(tmp_path: Path) -> None:
    """With a URL token (the sandbox), GET /console/login?token=... signs in; without, the
    same URL only shows the form."""
    async with BotHarness([], tmp_path) as h:
        sandbox = make_console(h, url_token=SHARED_TOKEN)
        response = await sandbox.client.get(f"/console/login?token={SHARED_TOKEN}")
        assert response.status_code == 303
        assert (await sandbox.client.get("/console/calls")).status_code == 200
        plain = make_console(h)
        response = await plain.client.get(f"/console/login?token={SHARED_TOKEN}")
        assert response.status_code == 200
        assert (await plain.client.get("/console/calls")).status_code == 303


async def test_pages_forbid_inline_scripts_and_framing(tmp_path: Path) -> None:
    """Every console answer carries a CSP with no inline scripts, and is not cached."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        for response in (await console.client.get("/console/login"),
                         await console.client.get("/console/calls")):
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["Cache-Control"] == "no-store"
