"""``uplink62676 certs``: a CA, a cloud certificate and device certificates (UPL-34)."""

from __future__ import annotations

import pathlib
import stat
import subprocess
import sys

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from uplink62676.app.cli import main

DEVICE = "32010001071321008015"


def _cert(path: pathlib.Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_first_run_makes_ca_cloud_and_devices(tmp_path: pathlib.Path, capsys) -> None:
    """UPL-34: the device certificate's CN is the device ID; keys are 0600."""
    d = tmp_path / "pki"
    assert main(["certs", str(d), "--cloud", "cloud.example,127.0.0.1",
                 "--device", DEVICE, "--device", "cam-2"]) == 0
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted(["ca.pem", "ca.key", "cloud.pem", "cloud.key", f"{DEVICE}.pem",
                            f"{DEVICE}.key", "cam-2.pem", "cam-2.key"])
    for key in d.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) & 0o077 == 0, key
    ca = _cert(d / "ca.pem")
    cloud = _cert(d / "cloud.pem")
    sans = cloud.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["cloud.example"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    device = _cert(d / f"{DEVICE}.pem")
    assert device.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == DEVICE
    eku = device.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    for leaf in (cloud, device):
        leaf.verify_directly_issued_by(ca)
    out = capsys.readouterr().out
    assert f"--client-ca {d}/ca.pem" in out and f"--cert {d}/{DEVICE}.pem" in out
    assert "https://cloud.example:8443/uplink" in out


def test_second_run_adds_devices_with_the_same_ca(tmp_path: pathlib.Path) -> None:
    d = tmp_path / "pki"
    assert main(["certs", str(d), "--cloud", "localhost", "--device", "a"]) == 0
    before = (d / "ca.pem").read_bytes()
    assert main(["certs", str(d), "--device", "b"]) == 0
    assert (d / "ca.pem").read_bytes() == before
    _cert(d / "b.pem").verify_directly_issued_by(_cert(d / "ca.pem"))


def test_refuses_to_overwrite(tmp_path: pathlib.Path, capsys) -> None:
    d = tmp_path / "pki"
    assert main(["certs", str(d), "--cloud", "localhost", "--device", "a"]) == 0
    key = (d / "a.key").read_bytes()
    assert main(["certs", str(d), "--device", "a", "--device", "c"]) == 3
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (d / "a.key").read_bytes() == key and not (d / "c.pem").exists()
    assert main(["certs", str(d), "--cloud", "localhost"]) == 3


def test_bad_input_is_one_line_and_exit_3(tmp_path: pathlib.Path) -> None:
    for argv in (["--device", "a"],  # no CA yet and no --cloud
                 ["--cloud", "localhost", "--device", "123", "--check-device-id"],
                 ["--cloud", "localhost", "--device", "../evil"],
                 ["--cloud", "not a name"],
                 ["--cloud", "localhost", "--device", "a", "--device", "a"]):
        run = subprocess.run([sys.executable, "-m", "uplink62676", "certs",
                              str(tmp_path / "x"), *argv], capture_output=True, text=True, check=False,
                             timeout=60)
        assert run.returncode == 3, (argv, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "x" / "ca.key").exists()


def test_check_device_id_accepts_an_annex_a_id(tmp_path: pathlib.Path) -> None:
    assert main(["certs", str(tmp_path / "p"), "--cloud", "::1", "--device", DEVICE,
                 "--check-device-id"]) == 0
