"""Who may sign in to the console: the users file, token hashes and the login limit."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agentkit.console import AccessError, LoginLimiter, UsersFile, hash_token, verify_token


def test_a_token_verifies_against_its_hash_only() -> None:
    """The token a hash was made from verifies; another token, or a mangled hash, does not."""
    stored = hash_token("right-token")
    assert stored.startswith("scrypt$")
    assert verify_token("right-token", stored)
    assert not verify_token("wrong-token", stored)
    assert not verify_token("right-token", stored[:-4])
    assert not verify_token("right-token", "plain:right-token")


def test_two_hashes_of_one_token_differ() -> None:
    """Each hash has its own salt, so equal tokens do not show in the file."""
    assert hash_token("same") != hash_token("same")


def test_add_user_keeps_no_token_and_authenticates(tmp_path: Path) -> None:
    """An added user's token is returned once, not written, and signs them in with their
    role; the file is readable by its owner only."""
    users = UsersFile(tmp_path / "users.json")
    token = users.add("Ana Pop", "operator")
    text = (tmp_path / "users.json").read_text()
    assert token not in text
    assert json.loads(text)["users"][0]["name"] == "Ana Pop"
    assert stat.S_IMODE((tmp_path / "users.json").stat().st_mode) == 0o600
    user = users.authenticate(token)
    assert user is not None and (user.name, user.role) == ("Ana Pop", "operator")
    assert users.authenticate(token + "x") is None


def test_each_user_signs_in_with_their_own_token(tmp_path: Path) -> None:
    """Two people's tokens each find their own person."""
    users = UsersFile(tmp_path / "users.json")
    ana, ion = users.add("ana", "viewer"), users.add("ion", "approver")
    assert [u.name for u in users.users()] == ["ana", "ion"]
    assert users.authenticate(ana).name == "ana"  # type: ignore[union-attr]
    assert users.authenticate(ion).role == "approver"  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "role", "message"), [
    ("ana", "admin", "not one of viewer, operator, approver"),
    ("", "viewer", "1 to 64 printable"),
    ("a\nb", "viewer", "printable"),
])
def test_bad_users_are_refused(tmp_path: Path, name: str, role: str, message: str) -> None:
    """An unknown role or an unprintable name is refused with how to fix it."""
    with pytest.raises(AccessError, match=message):
        UsersFile(tmp_path / "users.json").add(name, role)


def test_a_name_is_added_once(tmp_path: Path) -> None:
    """A second user with a taken name is refused; the first keeps their token."""
    users = UsersFile(tmp_path / "users.json")
    token = users.add("ana", "viewer")
    with pytest.raises(AccessError, match="already has a user named 'ana'"):
        users.add("ana", "operator")
    assert users.authenticate(token) is not None


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    """A users file that is not what agentkit wrote says so, and how to recover."""
    (tmp_path / "users.json").write_text("{not json")
    with pytest.raises(AccessError, match="cannot be read"):
        UsersFile(tmp_path / "users.json").users()


def test_login_limit_counts_every_attempt_over_a_sliding_window() -> None:
    """Five attempts a minute per address pass, the sixth is refused, and one passes again
    once the oldest is a minute old; other addresses are not affected."""
    now = [0.0]
    limiter = LoginLimiter(limit=5, window=60, clock=lambda: now[0])
    assert all(limiter.attempt("10.0.0.1") for _ in range(5))
    assert not limiter.attempt("10.0.0.1")
    assert limiter.attempt("10.0.0.2")
    now[0] = 60.5
    assert limiter.attempt("10.0.0.1")
