"""Tests of uplink62676.tokenmap: the persisted VSS token table (TokenMapper).

Spec: tokens.md sections 2 and 4 (TOK-2, TOK-3, TOK-5, TOK-6, TOK-11 .. TOK-13,
TOK-R1, TOK-R2, TOK-R5).
"""

from __future__ import annotations

import json

import pytest

from uplink62676 import ConfigurationError, DeviceId, InvalidTokenError, RemoteToken
from uplink62676.tokenmap import LocalRef, MappingStore, TokenMapper


class MemoryStore:
    """A real in-memory MappingStore, as an adapter would implement with a file."""

    def __init__(self) -> None:
        self.data: str | None = None
        self.saves = 0

    def load(self) -> str | None:
        return self.data

    def save(self, data: str) -> None:
        self.data = data
        self.saves += 1


# -- TokenMapper (sections 2 and 4) ----------------------------------------------


def test_tok6_tok11_one_prefix_per_device_unique_tokens() -> None:
    """TOK-6, TOK-11: every device keeps one prefix; equal local tokens stay distinct."""
    mapper = TokenMapper()
    a = mapper.to_remote("camA", "1")
    b = mapper.to_remote("camB", "1")
    assert (a, b) == ("camA:1", "camB:1")
    assert mapper.to_remote("camA", "2").startswith(mapper.prefix_of("camA") + ":")
    assert mapper.to_local(a) == LocalRef("camA", "1")
    assert mapper.to_local(b) == LocalRef("camB", "1")
    with pytest.raises(ConfigurationError, match=r"already has prefix 'camA'.*TOK-11"):
        mapper.add_device("camA", "other")
    with pytest.raises(ConfigurationError, match=r"already belongs to device 'camA'"):
        mapper.add_device("camC", "camA")


def test_tok2_tok3_class_does_not_enter_the_mapping() -> None:
    """TOK-2, TOK-3: tokens are unique only within a class, so the mapping is keyed by
    (device, token) alone and a profile '1' and a preset '1' both come back as '1'."""
    mapper = TokenMapper()
    remote = mapper.to_remote("cam", "1")
    assert mapper.to_remote("cam", "1") == remote
    assert mapper.to_local(remote) == LocalRef("cam", "1")


def test_tok12_device_tokens_used_when_they_fit_else_internal_mapping() -> None:
    """TOK-12, TOK-R2: short tokens are prefixed as is; long, colon or odd ones get a UUID."""
    mapper = TokenMapper()
    assert mapper.to_remote("cam", "prof_1") == "cam:prof_1"
    odd = ["x" * 37, "a:b", "Profile 1"]
    remotes = [mapper.to_remote("cam", t) for t in odd]
    for token, remote in zip(odd, remotes, strict=True):
        parsed = RemoteToken.parse(remote)
        assert parsed.prefix == "cam" and parsed.local_uuid is not None
        assert mapper.to_local(remote) == LocalRef("cam", token)
    again = TokenMapper()
    assert [again.to_remote("cam", t) for t in odd] == remotes  # stable without a store


def test_tok13_incoming_tokens_resolved_by_table_not_by_stripping() -> None:
    """TOK-13, TOK-R2: a well-formed token this VSS never issued resolves to nothing."""
    mapper = TokenMapper()
    mapper.add_device("cam")
    assert mapper.to_local("cam:prof_1") is None
    mapper.to_remote("cam", "prof_1")
    assert mapper.to_local("cam:prof_1") == LocalRef("cam", "prof_1")


def test_tokr1_empty_device_token_is_not_mapped() -> None:
    """TOK-R1: the empty token addresses nothing and is never given a remote token."""
    mapper = TokenMapper()
    assert mapper.to_remote("cam", "") == ""
    assert len(mapper) == 0


def test_tokr2_prefix_rules_on_registration() -> None:
    """TOK-R1, TOK-R2: prefixes are [A-Za-z0-9._-] segments and at most 27 characters."""
    mapper = TokenMapper(prefix_for=lambda device: f"vss:{device}")
    assert mapper.add_device("cam1") == "vss:cam1"
    assert mapper.to_remote("cam1", "1") == "vss:cam1:1"
    with pytest.raises(ConfigurationError, match="1-27 characters"):
        mapper.add_device("x" * 28)
    with pytest.raises(ConfigurationError, match="1-27 characters"):
        mapper.add_device("bad prefix")
    plain = TokenMapper()
    assert plain.add_device(DeviceId.parse("32010001071321008015")) == "32010001071321008015"


def test_tokr5_sessions_are_transient_and_bounded() -> None:
    """TOK-R5: search tokens map while the session lives, are never saved, and are bounded."""
    store = MemoryStore()
    mapper = TokenMapper(store=store, max_sessions=2)
    s1 = mapper.to_remote("nvr", "search1", session=True)
    s2 = mapper.to_remote("nvr", "search2", session=True)
    s3 = mapper.to_remote("nvr", "search3", session=True)
    assert mapper.to_local(s1) is None  # oldest dropped
    assert mapper.to_local(s3) == LocalRef("nvr", "search3")
    assert mapper.end_session(s2) == LocalRef("nvr", "search2")
    assert mapper.to_local(s2) is None and mapper.end_session(s2) is None
    mapper.flush()
    assert "search" not in (store.data or "")


def test_tok11_mapping_survives_restart_through_store() -> None:
    """TOK-11, TOK-12: with a store the table (prefixes, internal mappings) survives a restart."""
    store = MemoryStore()
    first = TokenMapper(store=store)
    remote_long = first.to_remote("cam", "y" * 40)
    remote_short = first.to_remote("cam", "prof_1")
    assert first.dirty and first.flush() and store.saves == 1
    assert not first.flush()  # nothing new: no second save
    second = TokenMapper(store=store)
    assert second.to_local(remote_long) == LocalRef("cam", "y" * 40)
    assert second.to_local(remote_short) == LocalRef("cam", "prof_1")
    assert second.prefix_of("cam") == "cam" and not second.dirty
    third = TokenMapper.loads(first.dumps())
    assert third.to_local(remote_short) == LocalRef("cam", "prof_1")


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[]",
        json.dumps({"version": 2, "devices": {}, "tokens": []}),
        json.dumps({"version": 1, "devices": [], "tokens": []}),
        json.dumps({"version": 1, "devices": {"cam": 5}, "tokens": []}),
        json.dumps({"version": 1, "devices": {"cam": "cam"}, "tokens": [["cam", "1"]]}),
        json.dumps({"version": 1, "devices": {"cam": "cam"}, "tokens": [["cam", "1", "x:1"]]}),
        json.dumps(
            {"version": 1, "devices": {"cam": "cam"},
             "tokens": [["cam", "1", "cam:1"], ["cam", "2", "cam:1"]]}
        ),
    ],
)
def test_tok11_corrupt_store_is_a_configuration_error(data: str) -> None:
    """TOK-11: a damaged stored table is refused with our error, never half-loaded silently."""
    with pytest.raises(ConfigurationError, match="token map"):
        TokenMapper.loads(data)


def test_tok6_remove_device_forgets_its_tokens() -> None:
    """TOK-6: removing a device frees its prefix and its tokens."""
    mapper = TokenMapper()
    remote = mapper.to_remote("cam", "1")
    session = mapper.to_remote("cam", "s", session=True)
    mapper.remove_device("cam")
    assert mapper.to_local(remote) is None and mapper.to_local(session) is None
    assert mapper.prefix_of("cam") is None
    mapper.remove_device("cam")  # idempotent
    with pytest.raises(ConfigurationError, match="max_sessions"):
        TokenMapper(max_sessions=0)


def test_tok5_mapper_refuses_tokens_xml_cannot_carry() -> None:
    """TOK-5: a device token with a character XML cannot carry is refused, in memory and
    when loading a stored table."""
    mapper = TokenMapper()
    with pytest.raises(InvalidTokenError, match=r"U\+0000|not text XML can carry"):
        mapper.to_remote("cam", "a\x00")
    data = json.dumps({"version": 1, "devices": {"cam": "cam"},
                       "tokens": [["cam", "a\u0000", "cam:x"]]})
    with pytest.raises(ConfigurationError, match="not XML text"):
        TokenMapper.loads(data)
    data = json.dumps({"version": 1, "devices": {"cam": "cam"},
                       "tokens": [["cam", "a", "cam:" + "x" * 70]]})
    with pytest.raises(ConfigurationError, match="TOK-1"):
        TokenMapper.loads(data)


def test_old_import_path_warns_and_gives_the_same_objects() -> None:
    """The names that moved keep working from uplink62676.tokens, with a DeprecationWarning."""
    from uplink62676 import tokenmap, tokens

    for name in ("TokenMapper", "LocalRef", "MappingStore"):
        with pytest.warns(DeprecationWarning, match=rf"uplink62676\.tokenmap\.{name}"):
            moved = getattr(tokens, name)
        assert moved is getattr(tokenmap, name)
    with pytest.warns(DeprecationWarning, match="moved to uplink62676.tokenmap"):
        from uplink62676.tokens import TokenMapper as Old
    assert Old is TokenMapper
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        tokens.Nothing  # noqa: B018


def test_memory_store_satisfies_the_protocol() -> None:
    """The store protocol is two methods; a plain class fits it (the adapter does the I/O)."""
    store: MappingStore = MemoryStore()
    mapper = TokenMapper(store=store)
    mapper.to_remote("cam", "1")
    assert mapper.flush() and store.load() is not None
