"""`uplink62676 device --config` in the field: real cloud and device processes, real sockets.

* every ``--remote`` is seeded into the store and is then ordinary configuration;
* a damaged store starts from the previous good generation, loudly; with none the device
  exits non-zero with one clear line and no traceback;
* a SetUplink the device cannot store is logged with its cause and answered
  ``env:Receiver / ter:Action`` naming it; in ``--plaintext`` mode SetUplink takes the
  ``http://`` addresses the device can run.

(CFG-2, CFG-3, CFG-4, CFG-10, CFG-16, CFG-36, CFG-R9, UPL-R27.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _adapters_util import Pki, free_port, make_pki
from uplink62676.config import UplinkConfiguration
from uplink62676.errors import SoapFault
from uplink62676.io.store import ConfigStore
from uplink62676.services.uplink_client import UplinkServiceClient
from uplink62676.status import Status

CMD = [sys.executable, "-m", "uplink62676"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
CLIENT = UplinkServiceClient()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Cloud:
    def __init__(self, pki: Pki, *, plaintext: bool = False) -> None:
        self.listen, self.expose = free_port(), free_port()
        tls = ([] if plaintext else
               ["--cert", pki.cloud[0], "--key", pki.cloud[1], "--client-ca", pki.ca])
        self.proc = subprocess.Popen(
            [*CMD, "cloud", "--expose-open", "--listen", f"127.0.0.1:{self.listen}", "--expose",
             f"127.0.0.1:{self.expose}", *tls, *(["--plaintext"] if plaintext else []),
             "--expose-open"],
            stderr=subprocess.PIPE, text=True, env=ENV)
        self.wait_devices(0)

    def soap(self, device: str, request_body: bytes, content_type: str) -> tuple[int, bytes]:
        r = subprocess.run(["curl", "-sS", "-H", f"content-type: {content_type}",
                            "--data-binary", "@-", "-w", "\n%{http_code}",
                            f"http://127.0.0.1:{self.expose}/devices/{device}"
                            "/onvif/uplink_service"],
                           input=request_body, capture_output=True, timeout=30, check=False)
        body, _, code = r.stdout.rpartition(b"\n")
        return int(code or 0), body

    def uplinks(self, device: str) -> list[UplinkConfiguration]:
        request = CLIENT.get_uplinks()
        return CLIENT.read_uplinks(*reversed(self.soap(device, request.body,
                                                       request.content_type)))

    def wait_devices(self, want: int, timeout: float = 20) -> None:
        import json
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.expose}/devices",
                                            timeout=2) as r:
                    if len(json.loads(r.read())) == want:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the cloud did not reach {want} devices")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@pytest.fixture
def cloud(pki: Pki) -> Iterator[Cloud]:
    c = Cloud(pki)
    yield c
    _stop(c.proc)


def _device(pki: Pki, store: Path, *extra: str, name: str = "cam-3") -> subprocess.Popen[str]:
    return subprocess.Popen([*CMD, "device", "--config", str(store),
                             "--cert", pki.devices[name][0], "--key", pki.devices[name][1],
                             "--ca", pki.ca, "--forward", "http://127.0.0.1:9", *extra],
                            stderr=subprocess.PIPE, text=True, env=ENV)


def test_remote_is_seeded_into_the_store_and_deletable(pki: Pki, cloud: Cloud,
                                                       tmp_path: Path) -> None:
    """CFG-2, CFG-3, CFG-10: with --config, a --remote is stored configuration: GetUplinks lists
    it Connected, DeleteUplink removes it from the store and stops the uplink."""
    store = tmp_path / "uplinks.xml"
    remote = f"https://localhost:{cloud.listen}/uplink"
    device = _device(pki, store, "--remote", remote, "--user-level", "Administrator")
    try:
        cloud.wait_devices(1)
        [entry] = cloud.uplinks("cam-3")
        assert entry.remote_address == remote and entry.status is Status.CONNECTED
        assert [c.remote_address for c in ConfigStore(store).load()] == [remote]
        request = CLIENT.delete_uplink(remote)
        status, body = cloud.soap("cam-3", request.body, request.content_type)
        CLIENT.read_delete_uplink(body, status)
        cloud.wait_devices(0)  # the deleted uplink is stopped
        assert ConfigStore(store).load() == []
    finally:
        rc, err = _stop(device)
    assert rc == 0 and "Traceback" not in err, err


def test_damaged_store_runs_the_previous_generation(pki: Pki, cloud: Cloud,
                                                    tmp_path: Path) -> None:
    """CFG-36, UPL-R27: a store naming one RemoteAddress twice is moved aside; the device runs
    the last good generation, logs it as an error and shows it in every uplink's Error."""
    store = tmp_path / "uplinks.xml"
    remote = f"https://localhost:{cloud.listen}/uplink"
    good = UplinkConfiguration(remote, "Administrator", certificate_id="cli")
    ConfigStore(store).save([good])
    ConfigStore(store).save([good, UplinkConfiguration("https://other.example/u",
                                                       certificate_id="cli")])
    text = store.read_text()
    first = text.index("<tup:Configuration")
    last = text.rindex("</tup:Configuration>") + len("</tup:Configuration>")
    store.write_text(text[:last] + text[first:last] + text[last:])  # one entry twice
    device = _device(pki, store)
    try:
        cloud.wait_devices(1)
        [entry] = cloud.uplinks("cam-3")
        assert entry.remote_address == remote and entry.status is Status.CONNECTED
        assert entry.error is not None and "damaged" in entry.error
        assert list(tmp_path.glob("uplinks.xml.corrupt-*"))
    finally:
        rc, err = _stop(device)
    assert rc == 0
    assert "ERROR" in err and "previous generation" in err and "twice" in err
    assert "Traceback" not in err


def test_damaged_store_without_a_good_generation_exits_non_zero(pki: Pki,
                                                                tmp_path: Path) -> None:
    """With no good generation the device never starts empty: exit 1, one clear line."""
    store = tmp_path / "uplinks.xml"
    store.write_text("<not-a-store")
    r = subprocess.run([*CMD, "device", "--config", str(store), "--forward",
                        "http://127.0.0.1:9", "--ca", pki.ca], capture_output=True, text=True,
                       timeout=30, env=ENV, check=False)
    assert r.returncode == 1, r.stderr
    assert "not a valid uplink store" in r.stderr and "Traceback" not in r.stderr


def test_set_uplink_the_store_cannot_keep_is_refused_with_its_cause(pki: Pki, cloud: Cloud,
                                                                     tmp_path: Path) -> None:
    """CFG-R9: a SetUplink that cannot be persisted is answered env:Receiver / ter:Action with a
    reason naming the cause, logged with the file system's error, and changes nothing."""
    folder = tmp_path / "state"
    folder.mkdir()
    store = folder / "uplinks.xml"
    remote = f"https://localhost:{cloud.listen}/uplink"
    ConfigStore(store).save([UplinkConfiguration(remote, "Administrator", certificate_id="cli")])
    device = _device(pki, store)
    try:
        cloud.wait_devices(1)
        shutil.rmtree(folder)
        folder.write_text("a file where the store's folder was")  # every write now fails
        request = CLIENT.set_uplink(UplinkConfiguration("https://new.example/u",
                                                        certificate_id="cli"))
        status, body = cloud.soap("cam-3", request.body, request.content_type)
        with pytest.raises(SoapFault) as info:
            CLIENT.read_set_uplink(body, status)
        assert status == 500
        assert (info.value.code, info.value.subcodes) == ("env:Receiver", ("ter:Action",))
        assert "store" in info.value.reason and "not writable" in info.value.reason
        assert [c.remote_address for c in cloud.uplinks("cam-3")] == [remote]
    finally:
        rc, err = _stop(device)
    assert rc == 0
    assert "configuration change not stored" in err and "cannot save" in err, err


def test_plaintext_device_accepts_what_it_can_run(pki: Pki, tmp_path: Path) -> None:
    """CFG-4, CFG-16: with --plaintext SetUplink takes an http:// address (and connects it) and
    refuses https:// saying the scheme is not supported by this device."""
    cloud = Cloud(pki, plaintext=True)
    store = tmp_path / "uplinks.xml"
    remote = f"http://127.0.0.1:{cloud.listen}/uplink"
    device = subprocess.Popen([*CMD, "device", "--plaintext", "--id", "cam-p", "--config",
                               str(store), "--remote", remote, "--user-level", "Administrator",
                               "--forward", "http://127.0.0.1:9"],
                              stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        cloud.wait_devices(1)
        listing_id = "uplink"  # anonymous plaintext devices are named by their upgrade path
        second = f"http://127.0.0.1:{cloud.listen}/second"
        request = CLIENT.set_uplink(UplinkConfiguration(second, certificate_id="cli"))
        CLIENT.read_set_uplink(*reversed(cloud.soap(listing_id, request.body,
                                                    request.content_type)))
        cloud.wait_devices(2)
        request = CLIENT.set_uplink(UplinkConfiguration("https://cloud.example/u",
                                                        certificate_id="cli"))
        status, body = cloud.soap(listing_id, request.body, request.content_type)
        with pytest.raises(SoapFault) as info:
            CLIENT.read_set_uplink(body, status)
        assert info.value.subcodes == ("ter:InvalidArgs", "ter:ProtocolNotSupported")
        assert "not supported by this device" in info.value.reason
    finally:
        rc, err = _stop(device)
        _stop(cloud.proc)
    assert rc == 0, err
    assert "uplink service refused a request" in err
