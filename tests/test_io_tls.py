"""TLS helpers and throw-away certificates (UPL-2, UPL-30, UPL-31, UPL-33, UPL-34, UPL-R2, R3, R29)."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest

from _adapters_util import Pki, make_pki, memory_handshake
from uplink62676 import ConfigurationError, TransportError
from uplink62676.io.certs import CertificateAuthority
from uplink62676.io.tls import (
    check_alpn,
    cloud_tls_context,
    describe_tls_error,
    device_tls_context,
    is_ip_literal,
    peer_common_name,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _server(ca: CertificateAuthority, *hosts: str, tmp: Path, name: str = "s") -> ssl.SSLContext:
    cert, key = ca.issue_cloud(*hosts).write(tmp, name)
    return cloud_tls_context(cert_file=cert, key_file=key)


def _client(ca: CertificateAuthority, tmp: Path) -> ssl.SSLContext:
    return device_tls_context(ca_data=ca.cert_pem)


def test_device_context_defaults() -> None:
    """UPL-2, UPL-R2, UPL-32, UPL-R15: the device is a verifying TLS client (TLS 1.2 minimum); with
    no validation policy configured it still validates the path and the name (device default)."""
    ctx = device_tls_context(ca_data=CertificateAuthority().cert_pem)
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2


def test_good_handshake_and_device_identity(pki: Pki) -> None:
    """UPL-30, UPL-33, UPL-34: the cloud presents a valid certificate; the device's CN is its identity."""
    cli, srv = memory_handshake(pki.device_ctx("cam-2"), pki.cloud_ctx(), "localhost")
    assert peer_common_name(srv) == "cam-2"
    assert peer_common_name(cli) == "localhost"


def test_alpn_offers_only_http11(tmp_path: Path) -> None:
    """UPL-R3: the device never offers h2; a cloud preferring h2 ends up with http/1.1."""
    ca = CertificateAuthority()
    server = _server(ca, "localhost", tmp=tmp_path)
    server.set_alpn_protocols(["h2", "http/1.1"])
    cli, srv = memory_handshake(_client(ca, tmp_path), server, "localhost")
    assert srv.selected_alpn_protocol() == "http/1.1"
    assert cli.selected_alpn_protocol() == "http/1.1"


def test_alpn_h2_selected_aborts() -> None:
    """UPL-R3: a device that sees h2 selected aborts the attempt with a clear Error."""

    class _Fake:
        def selected_alpn_protocol(self) -> str:
            return "h2"

    with pytest.raises(TransportError, match="ALPN 'h2'"):
        check_alpn(_Fake())  # type: ignore[arg-type]
    check_alpn(None)


@pytest.mark.parametrize(("host", "sni"), [("localhost", "localhost"), ("127.0.0.1", None)])
def test_sni_only_for_dns_names(tmp_path: Path, host: str, sni: str | None) -> None:
    """UPL-R2: SNI = host for DNS names, none for IP literals (matched against iPAddress SANs)."""
    ca = CertificateAuthority()
    server = _server(ca, "localhost", "127.0.0.1", tmp=tmp_path)
    seen: list[str | None] = []
    server.sni_callback = lambda obj, name, ctx: seen.append(name)  # type: ignore[assignment,misc,func-returns-value]
    memory_handshake(_client(ca, tmp_path), server, host)
    assert seen == [sni]
    assert is_ip_literal(host) is (sni is None)


@pytest.mark.parametrize(
    ("cert_names", "host", "ok"),
    [
        (("*.example.test",), "cam.example.test", True),
        (("*.example.test",), "a.b.example.test", False),   # wildcard covers one label only
        (("*.example.test",), "example.test", False),
        (("c*.example.test",), "cam.example.test", False),  # partial wildcard refused (UPL-R29)
        (("other.example.test",), "cam.example.test", False),
        (("127.0.0.1",), "127.0.0.1", True),
        (("127.0.0.2",), "127.0.0.1", False),
    ],
)
def test_rfc6125_names(tmp_path: Path, cert_names: tuple[str, ...], host: str, ok: bool) -> None:
    """UPL-31, UPL-R29: DNS-ID matching with left-most-label wildcards only; IP SANs for literals."""
    ca = CertificateAuthority()
    server = _server(ca, *cert_names, tmp=tmp_path)
    if ok:
        memory_handshake(_client(ca, tmp_path), server, host)
    else:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            memory_handshake(_client(ca, tmp_path), server, host)
        assert describe_tls_error(info.value) in ("TLS: certificate name mismatch",
                                                  "TLS: certificate IP address mismatch")


def test_cn_only_when_no_dns_id(tmp_path: Path) -> None:
    """UPL-31 (RFC 6125 6.4.4): the CN counts only when the certificate has no DNS-ID."""
    ca = CertificateAuthority()
    no_san = ca.issue("cam.example.test", server=True).write(tmp_path, "nosan")
    memory_handshake(_client(ca, tmp_path),
                     cloud_tls_context(cert_file=no_san[0], key_file=no_san[1]), "cam.example.test")
    with_san = ca.issue("cam.example.test", dns_names=["other.example.test"]).write(tmp_path, "san")
    with pytest.raises(ssl.SSLCertVerificationError):
        memory_handshake(_client(ca, tmp_path),
                         cloud_tls_context(cert_file=with_san[0], key_file=with_san[1]),
                         "cam.example.test")


def test_wrong_ca_expired_and_errors(pki: Pki) -> None:
    """UPL-31: untrusted anchor and expired certificate are refused with precise reasons."""
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        memory_handshake(pki.device_ctx("cam-1"), pki.cloud_ctx(which="cloud_other_ca"), "localhost")
    assert describe_tls_error(info.value).startswith("TLS: unknown CA")
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        memory_handshake(pki.device_ctx("cam-1"), pki.cloud_ctx(which="cloud_expired"), "localhost")
    assert describe_tls_error(info.value) == "TLS: certificate has expired"


def test_client_certificate_required(pki: Pki) -> None:
    """UPL-33: a cloud requiring mTLS refuses a device without a certificate."""
    with pytest.raises(ssl.SSLError) as info:
        memory_handshake(pki.device_ctx(None), pki.cloud_ctx(), "localhost")
    assert describe_tls_error(info.value) in (
        "TLS: cloud requires a client certificate", "TLS: peer did not present a certificate")


def test_optional_client_certificate(pki: Pki) -> None:
    """UPL-35, UPL-37: with require_client_cert=False a device may come without one (token mode)."""
    _cli, srv = memory_handshake(pki.device_ctx(None), pki.cloud_ctx(require=False), "localhost")
    assert peer_common_name(srv) is None


def test_configuration_errors(tmp_path: Path) -> None:
    """Bad files and contradictory options are ConfigurationErrors naming the value."""
    with pytest.raises(ConfigurationError, match=r"missing\.pem"):
        cloud_tls_context(cert_file=tmp_path / "missing.pem", key_file=tmp_path / "missing.key")
    with pytest.raises(ConfigurationError, match="client_ca"):
        cloud_tls_context(cert_file=tmp_path / "x.pem", require_client_cert=True)
    with pytest.raises(ConfigurationError, match="needs a certificate"):
        device_tls_context(ca_data=CertificateAuthority().cert_pem, key_file=tmp_path / "k")


def test_describe_plain_errors() -> None:
    assert describe_tls_error(ConnectionRefusedError()) == "TCP: connection refused"
    assert describe_tls_error(TimeoutError()) == "TCP/TLS: timed out"
    assert describe_tls_error(TransportError("x")) == "x"


def test_issued_files(tmp_path: Path) -> None:
    """certs: keys are written 0600, certificates carry the requested validity."""
    ca = CertificateAuthority()
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    issued = ca.issue_device("dev-9", not_after=past)
    cert, key = issued.write(tmp_path, "dev")
    assert (Path(key).stat().st_mode & 0o777) == 0o600
    assert "key_pem" not in repr(issued) and "dev-9" in repr(issued)
    from cryptography import x509

    loaded = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    assert loaded.not_valid_after_utc <= datetime.datetime.now(datetime.UTC)
