"""Tests of uplink62676.tokens: reference tokens, remote tokens, token context.

Spec: tokens.md sections 1-3 (TOK-1 .. TOK-16, TOK-R1 .. TOK-R4), OQ-22, OQ-34.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplink62676 import (
    DeviceId,
    InvalidTokenError,
    LocalProtocolError,
    ReferenceToken,
    RemoteToken,
    TokenContext,
)
from uplink62676.tokens import (
    MAX_PREFIX_LENGTH,
    has_prefix,
    split_token,
    validate_reference_token,
)

GENERATED = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
    min_size=1,
)


# -- ReferenceToken (section 1) ------------------------------------------------


def test_tok1_length_limit_is_64_characters() -> None:
    """TOK-1: at most 64 characters; 65 is refused with the value and rule named."""
    assert ReferenceToken.parse("a" * 64).value == "a" * 64
    with pytest.raises(InvalidTokenError, match=r"65 characters.*at most 64 \(TOK-1\)"):
        ReferenceToken.parse("a" * 65)


def test_tok1_limit_counts_characters_not_octets() -> None:
    """TOK-1: 64 four-octet characters (256 octets of UTF-8) are still a valid token."""
    token = "\U0001d11e" * 64
    assert len(token.encode()) == 256
    assert ReferenceToken.parse(token).value == token


def test_tok1_non_string_is_refused() -> None:
    """TOK-1: a token is an xs:string."""
    with pytest.raises(InvalidTokenError, match="must be a str, got int"):
        ReferenceToken.parse(42)


def test_tok5_no_character_restriction_beyond_xml() -> None:
    """TOK-5: any character XML can carry is allowed, including spaces and markup chars."""
    for token in ("Profile 1", "<&>\"'", "caméra/1", " A:1", "\t"):
        assert validate_reference_token(token) == token
    with pytest.raises(InvalidTokenError, match=r"U\+0000 at index 1.*\(TOK-5\)"):
        ReferenceToken.parse("a\x00b")
    with pytest.raises(InvalidTokenError, match="U\\+FFFE"):
        ReferenceToken.parse("\ufffe")
    with pytest.raises(InvalidTokenError, match="U\\+D800"):
        ReferenceToken.parse("x\ud800")


def test_tok5_whitespace_is_significant_and_refused_only_in_lists() -> None:
    """TOK-5, section 1: " A:1" differs from "A:1"; inside list types whitespace is refused."""
    assert ReferenceToken.parse(" A:1") != ReferenceToken.parse("A:1")
    with pytest.raises(InvalidTokenError, match=r"whitespace.*list type"):
        ReferenceToken.parse("A 1", in_list=True)
    assert ReferenceToken.parse("A:1", in_list=True).value == "A:1"


def test_tokr1_generation_rules_and_empty_token() -> None:
    """TOK-R1: generated tokens are non-empty [A-Za-z0-9._-]; parsing accepts the empty token."""
    assert ReferenceToken.parse("").value == ""
    assert ReferenceToken.new("prof_1.main-2").value == "prof_1.main-2"
    with pytest.raises(InvalidTokenError, match=r"must not be empty \(TOK-R1\)"):
        ReferenceToken.new("")
    with pytest.raises(InvalidTokenError, match=r"outside \[A-Za-z0-9._-\].*TOK-R1"):
        ReferenceToken.new("Profile 1")


def test_tok4_local_tokens_at_most_36() -> None:
    """TOK-4: a token a device generates has at most 36 characters (room for a prefix)."""
    assert ReferenceToken.new("a" * 36, local=True).fits_local
    with pytest.raises(InvalidTokenError, match=r"37 characters; at most 36.*TOK-4"):
        ReferenceToken.new("a" * 37, local=True)
    assert not ReferenceToken.parse("a" * 37).fits_local
    assert not ReferenceToken.parse("a:b").fits_local  # TOK-10


@given(st.text(max_size=80))
def test_tok1_tok5_reference_parse_is_total(text: str) -> None:
    """TOK-1, TOK-5: every string parses or raises InvalidTokenError, nothing else."""
    try:
        token = ReferenceToken.parse(text)
    except InvalidTokenError as exc:
        assert str(exc)
    else:
        assert token.value == text and len(text) <= 64


# -- RemoteToken (section 2) -----------------------------------------------------


def test_tok7_remote_token_is_prefix_colon_local() -> None:
    """TOK-7: Prefix ':' LocalToken; format and str give the wire form back."""
    token = RemoteToken.parse("A:1")
    assert (token.prefix, token.local) == ("A", "1")
    assert token.format() == str(token) == "A:1"
    assert RemoteToken.build("A", "1") == token


def test_tokr2_split_at_last_colon_for_nested_prefixes() -> None:
    """TOK-R2, OQ-22: X:A:1 has prefix X:A and local 1 (nested VSSs)."""
    token = RemoteToken.parse("X:A:1")
    assert (token.prefix, token.local) == ("X:A", "1")
    assert RemoteToken.parse("A:1").nested("X") == token
    assert split_token("X:A:1") == ("X:A", "1")
    assert split_token("plain") == (None, "plain")  # no colon -> no prefix


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plain", r"no ':' and so no prefix.*\(TOK-7\)"),
        (":abc", r"empty prefix.*\(TOK-7\)"),
        ("abc:", r"empty local token.*\(TOK-7\)"),
        ("P:" + "a" * 37, r"local token of 37 characters.*at most 36 allowed \(TOK-9\)"),
        ("p" * 30 + ":" + "a" * 34, r"65 characters; at most 64 allowed \(TOK-8\)"),
        ("P:a\x01", r"U\+0001 at index 3.*\(TOK-5\)"),
    ],
)
def test_tok7_tok8_tok9_parse_errors_name_value_and_rule(text: str, message: str) -> None:
    """TOK-7, TOK-8, TOK-9, TOK-5: each broken rule gives a precise InvalidTokenError."""
    with pytest.raises(InvalidTokenError, match=message) as info:
        RemoteToken.parse(text)
    assert repr(text)[:20] in str(info.value)


def test_tok8_tok9_composition_limits() -> None:
    """TOK-8, TOK-9, TOK-R2: 27 + 1 + 36 = 64 fits; one more character is refused."""
    uuid_local = str(uuid.UUID(int=7))
    assert len(str(RemoteToken.build("p" * MAX_PREFIX_LENGTH, uuid_local))) == 64
    with pytest.raises(InvalidTokenError, match=r"65 characters.*\(TOK-8"):
        RemoteToken.build("p" * (MAX_PREFIX_LENGTH + 1), uuid_local)
    with pytest.raises(InvalidTokenError, match=r"37 characters.*\(TOK-9"):
        RemoteToken.build("P", "a" * 37)
    assert str(RemoteToken.build("p" * 62, "a")) == "p" * 62 + ":a"  # short local, long prefix


def test_tok10_local_token_with_colon_cannot_be_composed() -> None:
    """TOK-10, TOK-R2: composing a local token with ':' would move the prefix boundary."""
    with pytest.raises(InvalidTokenError, match=r"contains ':'.*\(TOK-10"):
        RemoteToken.build("A", "x:1")
    assert ":" not in RemoteToken.parse("A:x:1").local


def test_tok14_device_id_prefix_and_tokr3_digit_prefixes() -> None:
    """TOK-14, TOK-R3, OQ-34: a 20-digit device ID is a valid prefix (no NCName check)."""
    device = DeviceId.parse("32010001071321008015")
    token = RemoteToken.build(device, "prof_1")
    assert str(token) == "32010001071321008015:prof_1" and len(str(token)) == 27
    assert RemoteToken.parse("32010001071321008015:prof_1") == token
    assert RemoteToken.parse("1abc:x").prefix == "1abc"


def test_tok4_uuid_local_tokens() -> None:
    """TOK-4: a UUID's 36-character text form fits as LocalToken."""
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    token = RemoteToken.from_uuid("dev", value)
    assert token.local == str(value) and token.local_uuid == value
    assert RemoteToken.parse(str(token)).local_uuid == value
    assert RemoteToken.parse("dev:prof_1").local_uuid is None
    with pytest.raises(InvalidTokenError, match=r"expected a uuid\.UUID"):
        RemoteToken.from_uuid("dev", "not-a-uuid")  # type: ignore[arg-type]


def test_tok7_parse_cache_returns_equal_immutable_values() -> None:
    """TOK-7: repeated parses give equal, hashable, frozen values."""
    first = RemoteToken.parse("cam:prof_9")
    second = RemoteToken.parse("cam:prof_9")
    assert first == second and hash(first) == hash(second)
    with pytest.raises(AttributeError):
        first.local = "other"  # type: ignore[misc]


@given(prefix=st.lists(GENERATED, min_size=1, max_size=3).map(":".join), local=GENERATED)
def test_tok7_tokr2_format_parse_round_trip(prefix: str, local: str) -> None:
    """TOK-7, TOK-8, TOK-9, TOK-R2: build/format/parse round-trips whenever the limits hold."""
    try:
        token = RemoteToken.build(prefix, local)
    except InvalidTokenError:
        assert len(local) > 36 or len(prefix) + 1 + len(local) > 64
        return
    assert RemoteToken.parse(token.format()) == token
    assert (token.prefix, token.local) == (prefix, local)


@given(st.text(max_size=90))
def test_tok7_remote_parse_is_total(text: str) -> None:
    """TOK-7 .. TOK-9: every string gives a RemoteToken or an InvalidTokenError."""
    try:
        token = RemoteToken.parse(text)
    except InvalidTokenError:
        return
    assert str(token) == text
    assert len(text) <= 64 and 0 < len(token.local) <= 36 and token.prefix


@given(st.text(max_size=30), st.text(max_size=10))
def test_oq22_has_prefix_means_prefix_plus_colon(token: str, prefix: str) -> None:
    """OQ-22, TOK-R2: a token belongs to prefix P when it starts with P + ':'."""
    assert has_prefix(token, prefix) == (bool(prefix) and token.startswith(prefix + ":"))


def test_oq22_has_prefix_examples() -> None:
    """OQ-22: AB:1 is not under A; X:A:1 is under X and under X:A."""
    assert not has_prefix("AB:1", "A")
    assert has_prefix("X:A:1", "X") and has_prefix("X:A:1", "X:A")


# -- TokenContext (section 3) ----------------------------------------------------


def test_tok15_tokr4_token_only_sent_to_issuing_server() -> None:
    """TOK-15, TOK-16, TOK-R4: a token of one server is refused for another."""
    ctx = TokenContext()
    ctx.record("vss-a", ["cam1:prof_1", "cam1:prof_2"])
    ctx.record("vss-b", "cam1:prof_1")  # same text issued by another server
    assert ctx.check("vss-a", "cam1:prof_2") == "cam1:prof_2"
    assert ctx.check("vss-b", "cam1:prof_1") == "cam1:prof_1"
    with pytest.raises(LocalProtocolError, match=r"issued by 'vss-a', not by 'vss-b'.*TOK-15"):
        ctx.check("vss-b", "cam1:prof_2")
    with pytest.raises(LocalProtocolError, match=r"never issued by server 'vss-a'.*TOK-15"):
        ctx.check("vss-a", "unknown:1")
    assert ctx.issuers("cam1:prof_1") == {"vss-a", "vss-b"}
    assert len(ctx) == 3


def test_tok15_forget_server_and_empty_token() -> None:
    """TOK-15, TOK-R1: forgetting a server revokes its tokens; the empty token never matches."""
    ctx = TokenContext()
    ctx.record("dev", ["", "1"])
    with pytest.raises(LocalProtocolError):
        ctx.check("dev", "")
    ctx.forget_server("dev")
    with pytest.raises(LocalProtocolError, match="never issued"):
        ctx.check("dev", "1")
    assert len(ctx) == 0
