"""Tests of the crash-safe configuration store (CFG-36, CFG-R9)."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from lxml import etree

from uplink62676.config import Status, UplinkConfiguration
from uplink62676.errors import ConfigStoreError, CorruptStoreError
from uplink62676.io.store import FORMAT_VERSION, ConfigStore
from uplink62676.namespaces import TUP
from uplink62676.services.uplink import StaticSecurityLookup, UplinkService
from uplink62676.soap import SOAP_CONTENT_TYPE, parse_fault, parse_response

MTLS = UplinkConfiguration(
    remote_address="https://cloud.example.com/uplink",
    certificate_id="devcert-01",
    user_level=("Operator",),
    extensions=(
        b'<v:Proxy xmlns:v="urn:vendor" v:mode="socks"><v:Host>10.0.0.1</v:Host></v:Proxy>',
    ),
    extension_attributes=(("{urn:vendor}flag", "1"),),
)
TOKEN = UplinkConfiguration(
    remote_address="wss://vms.example.net/uplink/ws",
    authorization_server="as-1",
    cert_path_validation_policy_id="cloud-ca-policy",
    user_level=("onvif:User", "PTZControl"),
)
OTHER = UplinkConfiguration("https://other.example/u", certificate_id="devcert-02")


def test_missing_file_is_empty(tmp_path: pathlib.Path) -> None:
    """CFG-36: a device without a store starts with no uplinks."""
    assert ConfigStore(tmp_path / "uplinks.xml").load() == []


def test_round_trip_keeps_everything_but_runtime_values(tmp_path: pathlib.Path) -> None:
    """CFG-36: every element including extensions survives; Status/Error are recomputed."""
    store = ConfigStore(tmp_path / "uplinks.xml")
    store.save([MTLS, attrs.evolve(TOKEN, status=Status.CONNECTED, error="x")])
    assert store.load() == [MTLS, TOKEN]
    root = etree.fromstring((tmp_path / "uplinks.xml").read_bytes())
    assert root.get("format") == str(FORMAT_VERSION)
    assert b"Status" not in (tmp_path / "uplinks.xml").read_bytes()


def _get_uplinks_without_runtime(service: UplinkService) -> list[list[bytes]]:
    body = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>' \
           b'<t:GetUplinks xmlns:t="' + TUP.encode() + b'"/></e:Body></e:Envelope>'
    resp = service.handle(body, content_type=SOAP_CONTENT_TYPE, user_level="Administrator")
    out = []
    for config in parse_response(resp.body).body:
        out.append([etree.tostring(e, method="c14n") for e in config
                    if etree.QName(e).localname not in ("Status", "Error")])
    return out


def test_firmware_upgrade_restores_uplinks_element_by_element(tmp_path: pathlib.Path) -> None:
    """CFG-36, CFG-R9: persist two configurations (mTLS; access token + policy) through
    the service's change listener, restore into a fresh service, compare GetUplinks
    element by element."""
    security = StaticSecurityLookup({"devcert-01"}, {"cloud-ca-policy"}, {"as-1"})
    from uplink62676.services.access import AccessClass, AccessPolicy

    policy = AccessPolicy(roles={"PTZControl": {AccessClass.ACTUATE}}, roles_supported=True)
    store = ConfigStore(tmp_path / "uplinks.xml")
    before = UplinkService(security=security, policy=policy, on_change=store.on_change)
    before.set_uplink(MTLS)
    before.set_uplink(TOKEN)
    after = UplinkService(security=security, policy=policy,
                          configurations=ConfigStore(tmp_path / "uplinks.xml").load())
    expected = _get_uplinks_without_runtime(before)
    assert len(expected) == 2
    assert _get_uplinks_without_runtime(after) == expected


def test_every_earlier_format_is_readable(tmp_path: pathlib.Path) -> None:
    """CFG-36: a store written by an earlier release (format 1, hand-written here) restores."""
    path = tmp_path / "uplinks.xml"
    path.write_bytes(textwrap.dedent("""\
        <?xml version="1.0" encoding="UTF-8"?>
        <s:UplinkStore xmlns:s="urn:uplink62676:config-store" format="1"
                       xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl">
          <tup:Configuration>
            <tup:RemoteAddress>https://cloud.example.com/uplink</tup:RemoteAddress>
            <tup:CertificateID>devcert-01</tup:CertificateID>
            <tup:UserLevel>Operator</tup:UserLevel>
          </tup:Configuration>
        </s:UplinkStore>
        """).encode())
    (config,) = ConfigStore(path).load()
    assert config == UplinkConfiguration("https://cloud.example.com/uplink",
                                         certificate_id="devcert-01", user_level="Operator")


def test_newer_format_is_refused_and_left_in_place(tmp_path: pathlib.Path) -> None:
    """CFG-36: a store from a newer release is not misread nor moved."""
    path = tmp_path / "uplinks.xml"
    path.write_bytes(b'<s:UplinkStore xmlns:s="urn:uplink62676:config-store" format="99"/>')
    with pytest.raises(ConfigStoreError, match="newer") as info:
        ConfigStore(path).load()
    assert not isinstance(info.value, CorruptStoreError)
    assert path.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01garbage", b"<s:UplinkStore xmlns:s='urn:uplink62676:config-store' format='1'>",
     b"<other/>", b"<s:UplinkStore xmlns:s='urn:uplink62676:config-store' format='1'>"
     b"<tup:Configuration xmlns:tup='" + TUP.encode() + b"'/></s:UplinkStore>",
     b'<!DOCTYPE x [<!ENTITY e "e">]><x/>'],
)
def test_corrupt_store_is_moved_aside_with_clear_error(tmp_path: pathlib.Path,
                                                       content: bytes) -> None:
    """CFG-36: a corrupt file raises our error and is kept as <name>.corrupt-<n>, never
    overwritten.
    """
    path = tmp_path / "uplinks.xml"
    path.write_bytes(content)
    with pytest.raises(CorruptStoreError) as info:
        ConfigStore(path).load()
    assert info.value.moved_to == str(path) + ".corrupt-1"
    assert (tmp_path / "uplinks.xml.corrupt-1").read_bytes() == content
    assert not path.exists()
    assert str(path) in str(info.value)
    # a second corrupt file gets the next number; the first is not overwritten
    path.write_bytes(b"again")
    with pytest.raises(CorruptStoreError):
        ConfigStore(path).load()
    assert (tmp_path / "uplinks.xml.corrupt-1").read_bytes() == content
    assert (tmp_path / "uplinks.xml.corrupt-2").read_bytes() == b"again"
    # after moving aside, the device starts empty and can save again
    store = ConfigStore(path)
    assert store.load() == []
    store.save([OTHER])
    assert store.load() == [OTHER]


def test_unreadable_store_is_moved_aside(tmp_path: pathlib.Path) -> None:
    """CFG-36: an unreadable path (here: a directory) is reported and moved aside."""
    path = tmp_path / "uplinks.xml"
    path.mkdir()
    with pytest.raises(CorruptStoreError, match="cannot read"):
        ConfigStore(path).load()
    assert (tmp_path / "uplinks.xml.corrupt-1").is_dir()


def test_stale_temporaries_are_removed(tmp_path: pathlib.Path) -> None:
    """CFG-R9: leftovers of an interrupted save do not accumulate."""
    store = ConfigStore(tmp_path / "uplinks.xml")
    (tmp_path / ".uplinks.xml.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "unrelated.tmp").write_bytes(b"keep")
    store.load()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unrelated.tmp"]


# --------------------------------------------------------------------------- fault injection

_STEP_FUNCS = ("open", "write", "fsync", "close", "replace")


class _Injector:
    """Counts calls of the os functions a save uses; fails call number ``fail_at``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int | None) -> None:
        self.count = 0
        self.fail_at = fail_at
        for name in _STEP_FUNCS:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            if self.count == self.fail_at:
                if name == "close":
                    real(*args, **kwargs)  # the descriptor is gone, the call still fails
                raise OSError(5, f"injected failure in os.{name}")
            if name == "write" and self.count + 1 == self.fail_at:
                # a short write before the failure: half the buffer reaches the file
                data = args[1]
                return real(args[0], data[: max(1, len(data) // 2)])
            return real(*args, **kwargs)

        return step


def test_failure_at_every_step_leaves_old_or_new(tmp_path: pathlib.Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """CFG-36, CFG-R9: inject an OSError at each step of a save; the file always loads as
    the old or the new configuration set, and the error is ours."""
    path = tmp_path / "uplinks.xml"
    old, new = [MTLS], [MTLS, TOKEN, OTHER]
    with monkeypatch.context() as m:
        probe = _Injector(m, None)
        ConfigStore(path).save(old)
        steps = probe.count
    assert steps >= 8  # open, write(s), fsync, close, replace, open dir, fsync dir, close dir
    outcomes = set()
    for k in range(1, steps + 1):
        ConfigStore(path).save(old)
        with monkeypatch.context() as m:
            _Injector(m, k)
            with pytest.raises(ConfigStoreError):
                ConfigStore(path).save(new)
        loaded = ConfigStore(path).load()
        assert loaded in (old, new), k
        outcomes.add("new" if loaded == new else "old")
        # No temporary is left: only the file and the previous generation it keeps.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["uplinks.xml",
                                                              "uplinks.xml.prev"], k
    assert outcomes == {"old", "new"}


def test_service_rolls_back_when_the_store_fails(tmp_path: pathlib.Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """CFG-R9: persisted before the response; a failed save answers ter:Action and changes nothing.
    """
    store = ConfigStore(tmp_path / "uplinks.xml")
    service = UplinkService(on_change=store.on_change)
    service.set_uplink(MTLS)
    body = (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
            b'<t:DeleteUplink xmlns:t="' + TUP.encode() + b'"><t:RemoteAddress>'
            + MTLS.remote_address.encode() + b"</t:RemoteAddress></t:DeleteUplink>"
            b"</e:Body></e:Envelope>")
    with monkeypatch.context() as m:
        _Injector(m, 5)
        resp = service.handle(body, content_type=SOAP_CONTENT_TYPE, user_level="Administrator")
    fault = parse_fault(resp.body)
    assert (fault.code, fault.subcodes) == ("env:Receiver", ("ter:Action",))
    assert service.configurations == (MTLS,)
    assert store.load() == [MTLS]


# --------------------------------------------------------------------------- real crashes

_CHILD = textwrap.dedent("""
    import sys
    from uplink62676.config import UplinkConfiguration
    from uplink62676.io.store import ConfigStore

    store = ConfigStore(sys.argv[1])
    generation = 0
    while True:
        generation += 1
        configs = [
            UplinkConfiguration(f"https://c{n}.example/g{generation}", certificate_id=f"id{n}",
                                extensions=[b"<x:pad xmlns:x='urn:x'>" + b"p" * 2000 + b"</x:pad>"])
            for n in range(1 + generation % 7)
        ]
        store.save(configs)
        if generation == 1:
            print("ready", flush=True)
""")


def test_sigkill_during_saves_never_corrupts(tmp_path: pathlib.Path) -> None:
    """CFG-36, CFG-R9: a real writer process killed at random moments leaves a loadable store."""
    rng = random.Random(62676)
    path = tmp_path / "uplinks.xml"
    script = tmp_path / "writer.py"
    script.write_text(_CHILD)
    generations = set()
    for _round in range(6):
        proc = subprocess.Popen([sys.executable, str(script), str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        loaded = ConfigStore(path).load()
        assert loaded, "the first save had completed"
        gens = {c.remote_address.rsplit("/g", 1)[1] for c in loaded}
        assert len(gens) == 1  # one consistent generation, never a mix
        (gen,) = gens
        assert len(loaded) == 1 + int(gen) % 7
        generations.add(gen)
        assert not list(tmp_path.glob(".uplinks.xml.*.tmp"))  # load cleaned leftovers
    assert len(generations) >= 2


def test_save_creates_the_directory(tmp_path: pathlib.Path) -> None:
    """CFG-R9: a first save on a fresh device creates the store's directory."""
    store = ConfigStore(tmp_path / "state" / "uplinks.xml")
    store.save([OTHER])
    assert ConfigStore(tmp_path / "state" / "uplinks.xml").load() == [OTHER]


def test_damaged_store_starts_from_the_previous_generation(tmp_path: pathlib.Path) -> None:
    """CFG-36 (issue: a store that cannot be read must never start empty): the damaged file is
    moved aside, the previous good generation is restored and used, and ``recovered`` says so."""
    path = tmp_path / "uplinks.xml"
    store = ConfigStore(path)
    store.save([MTLS])
    store.save([MTLS, TOKEN])  # now .prev holds [MTLS]
    path.write_bytes(b"<not a store")
    again = ConfigStore(path)
    assert again.load() == [MTLS]
    assert isinstance(again.recovered, CorruptStoreError)
    assert again.recovered.moved_to is not None and "corrupt" in again.recovered.moved_to
    assert ConfigStore(path).load() == [MTLS]  # restored as the current file
    assert ConfigStore(path).recovered is None


def test_damaged_store_without_a_good_generation_still_raises(tmp_path: pathlib.Path) -> None:
    """Only when no good generation exists does loading fail (the device then exits non-zero)."""
    path = tmp_path / "uplinks.xml"
    path.write_bytes(b"<not a store")
    (tmp_path / "uplinks.xml.prev").write_bytes(b"also bad")
    with pytest.raises(CorruptStoreError):
        ConfigStore(path).load()


def test_duplicate_remote_address_is_damage_with_recovery(tmp_path: pathlib.Path) -> None:
    """A store holding one RemoteAddress twice is as unreadable as a broken file: recovered."""
    path = tmp_path / "uplinks.xml"
    store = ConfigStore(path)
    store.save([MTLS])
    store.save([TOKEN])
    data = path.read_bytes()
    head, _, tail = data.partition(b"</store:UplinkStore>")
    body = head[head.index(b"<tup:Configuration"):]
    path.write_bytes(head + body + b"</store:UplinkStore>" + tail)
    again = ConfigStore(path)
    assert again.load() == [MTLS]
    assert again.recovered is not None and "twice" in str(again.recovered)
