"""Throw-away certificates for the demo and the tests, made with ``cryptography``.

A :class:`CertificateAuthority` issues cloud (server) certificates with DNS
and IP subjectAltNames and device (client) certificates whose subject CN is
the device identity (UPL-34).  Keys are EC P-256 (fast to make), written
with mode 0600.  Nothing here is meant for production, and no key made
here is ever committed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "IssuedCertificate"]

_DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@attrs.frozen(slots=True)
class IssuedCertificate:
    """A certificate (PEM) and its private key (PEM, never shown in a repr)."""

    cert_pem: bytes = attrs.field(repr=False)
    key_pem: bytes = attrs.field(repr=False)
    common_name: str

    def write(self, directory: str | os.PathLike[str], name: str) -> tuple[str, str]:
        """Write ``<name>.pem`` and ``<name>.key`` (0600) into ``directory``."""
        base = os.path.join(os.fspath(directory), name)
        _write(base + ".pem", self.cert_pem, 0o644)
        _write(base + ".key", self.key_pem, 0o600)
        return base + ".pem", base + ".key"


class CertificateAuthority:
    """A self-signed CA that issues server and device certificates.

    ``days``: how long the CA certificate is valid.  :meth:`load` reopens a CA
    written with :meth:`write_ca` and :meth:`write_key`.
    """

    def __init__(self, common_name: str = "uplink62676 throw-away CA", *, days: int = 365) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        self._name = name
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + days * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    @classmethod
    def load(cls, cert_path: str | os.PathLike[str],
             key_path: str | os.PathLike[str]) -> CertificateAuthority:
        """Reopen a CA from its certificate and (unencrypted PEM) key files."""
        with open(cert_path, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
        with open(key_path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{os.fspath(key_path)}: not an EC private key")
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
            raise ValueError(f"{os.fspath(key_path)} is not the key of {os.fspath(cert_path)}")
        ca = cls.__new__(cls)
        ca._key = key
        ca._name = certificate.subject
        ca.certificate = certificate
        return ca

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_key(self, path: str | os.PathLike[str]) -> str:
        """Write the CA's private key (PEM, mode 0600) to ``path``; keep it offline."""
        _write(os.fspath(path), _key_pem(self._key), 0o600)
        return os.fspath(path)

    def write_ca(self, path: str | os.PathLike[str]) -> str:
        """Write the CA certificate (the trust anchor, no key) to ``path``."""
        _write(os.fspath(path), self.cert_pem, 0o644)
        return os.fspath(path)

    def issue(
        self,
        common_name: str,
        *,
        dns_names: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
        server: bool = True,
        client: bool = False,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> IssuedCertificate:
        """Issue a leaf certificate.

        ``server`` adds the serverAuth usage (a cloud), ``client`` clientAuth
        (a device, UPL-33).  Pass ``not_after`` in the past for an expired one.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        if not_after is not None and not_before is None:
            not_before = min(now, not_after) - 30 * _DAY
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - _DAY)
            .not_valid_after(not_after or now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return IssuedCertificate(
            cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), common_name
        )

    def issue_cloud(self, *hosts: str, **kwargs: datetime.datetime | None) -> IssuedCertificate:
        """A cloud (TLS server) certificate for DNS names and/or IP literals."""
        dns = [h for h in hosts if not _is_ip(h)]
        ips = [h for h in hosts if _is_ip(h)]
        return self.issue(hosts[0] if hosts else "cloud", dns_names=dns, ip_addresses=ips,
                          server=True, **kwargs)  # type: ignore[arg-type]

    def issue_device(self, device_id: str, **kwargs: datetime.datetime | None) -> IssuedCertificate:
        """A device (TLS client) certificate whose subject CN is ``device_id`` (UPL-34)."""
        return self.issue(device_id, server=False, client=True, **kwargs)  # type: ignore[arg-type]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
