"""Tests of uplink62676.users: the front door's users file, parsed from text.

Spec: issue 10 item 3 (``NAME PASSWORD DEVICE-PATTERN...``); the users are the
credentials of core-device.md DEV-19 (one set for Digest, UsernameToken, Basic).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplink62676.errors import ConfigurationError, UsersFileError
from uplink62676.users import parse_users

TOKEN = "Zm9vYmFyYmF6cXV4LXRva2VuLTE2"

GOOD = f"""\ufeff# the front door's users
alice   Gate-7#secret   00010002000300040005*

\tha      s3cret!pw   cam-*  door-?  token={TOKEN}
   # indented comment
ops     pw2         *
"""


def test_parse_good_file() -> None:
    users = parse_users(GOOD)
    assert len(users) == 3 and "alice" in users and [u.name for u in users] == [
        "alice", "ha", "ops"]
    assert users.password_of("alice") == "Gate-7#secret"
    assert users.password_of("nobody") is None
    ha = users.by_name["ha"]
    assert ha.patterns == ("cam-*", "door-?") and ha.token == TOKEN and ha.line == 4
    assert "s3cret" not in repr(ha) and TOKEN not in repr(ha) and TOKEN not in repr(users)


def test_device_patterns() -> None:
    """A user sees a device when a glob matches its ID; unknown users see nothing."""
    users = parse_users(GOOD)
    assert users.can_see("alice", "00010002000300040005")
    assert users.can_see("alice", "000100020003000400059")
    assert not users.can_see("alice", "00010002000300040006")
    assert users.can_see("ha", "cam-7") and users.can_see("ha", "door-1")
    assert not users.can_see("ha", "door-12") and not users.can_see("ha", "CAM-7")
    assert users.can_see("ops", "anything") and not users.can_see("mallory", "cam-7")


def test_tokens() -> None:
    users = parse_users(GOOD)
    found = users.user_for_token(TOKEN)
    assert found is not None and found.name == "ha"
    assert users.user_for_token(TOKEN[:-1]) is None and users.user_for_token("") is None


@pytest.mark.parametrize(("text", "line", "words"), [
    ("alice pw", 1, "found 2 field"),
    ("# c\n\nalice", 3, "found 1 field"),
    ("alice pw *\nbob pw *\nalice other *", 3, "already defined on line 1"),
    ("al:ice pw *", 1, "user name"),
    ("alice pw token=" + TOKEN, 1, "no DEVICE-PATTERN"),
    ("alice token=" + TOKEN + " *", 1, "password field"),
    ("alice pw * token=short", 1, "16 or more"),
    ("alice pw * token=" + TOKEN + " token=" + TOKEN, 1, "more than one"),
    (f"alice pw * token={TOKEN}\nbob pw * token={TOKEN}", 2, "already used on line 1"),
    ("alice p\x01w *", 1, "control character"),
    ("alice pw * token=" + "a" * 15 + "!", 1, "token"),
])
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(UsersFileError) as info:
        parse_users(text)
    assert info.value.line == line and words in str(info.value)
    assert str(info.value).startswith(f"line {line}: ")
    assert isinstance(info.value, ConfigurationError)
    assert TOKEN not in str(info.value) and "pw" not in str(info.value).replace("password", "")


def test_empty_file_and_wrong_type() -> None:
    assert len(parse_users("# nobody yet\n\n")) == 0
    with pytest.raises(UsersFileError):
        parse_users(b"alice pw *")  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_any_text_parses_or_names_a_line(text: str) -> None:
    """Hypothesis: any text gives users or a UsersFileError with a line number."""
    try:
        users = parse_users(text)
    except UsersFileError as exc:
        assert exc.line >= 1
        return
    for user in users:
        assert user.patterns and user.name in users
