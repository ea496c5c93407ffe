"""``ssl.SSLContext`` factories with the uplink's safe defaults (UPL-2, UPL-30..35, R2, R3, R29).

The device is the TLS client (UPL-2): it verifies the cloud's certificate
chain against a CA bundle and checks the host of ``RemoteAddress`` with
OpenSSL's RFC 6125 matcher (DNS-IDs from subjectAltName; a wildcard only as
the whole left-most label; the subject CN only when the certificate has no
DNS-ID; IP literals against iPAddress entries), offers ALPN ``http/1.1``
only and never ``h2`` (UPL-R3).  CPython sends SNI for DNS names and never
for IP literals (UPL-R2), so passing the host as ``server_hostname`` is all an
adapter does.  The cloud is the TLS server; it may require client
certificates (mTLS, UPL-33) and reads the device identity from them.

There is no "skip verification" switch here: plaintext exists only in the
adapters, behind the loudly named ``insecure_plaintext=True``.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from typing import Any

from ..errors import ConfigurationError, TransportError

__all__ = [
    "ALPN_PROTOCOLS",
    "FRONTDOOR_ALPN",
    "check_alpn",
    "cloud_tls_context",
    "describe_tls_error",
    "device_tls_context",
    "frontdoor_tls_context",
    "is_ip_literal",
    "peer_common_name",
]

#: The only ALPN protocol either end offers (UPL-R3).
ALPN_PROTOCOLS = ("http/1.1",)


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # UPL-R2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_file: str | os.PathLike[str] | None,
                key_file: str | os.PathLike[str] | None) -> None:
    if cert_file is None:
        if key_file is not None:
            raise ConfigurationError(f"a key file {os.fspath(key_file)!r} needs a certificate file")
        return
    cert, key = os.fspath(cert_file), os.fspath(key_file) if key_file else None
    for name, what in ((cert, "certificate"), (key, "private key")):
        if name is None:
            continue
        try:
            with open(name, "rb") as handle:
                head = handle.read(65536)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {what} file {name!r}: "
                                     f"{exc.strerror or exc}") from None
        if b"-----BEGIN" not in head:
            raise ConfigurationError(f"{what} file {name!r} holds no PEM data")
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        if "KEY_VALUES_MISMATCH" in str(exc) or reason == "KEY_VALUES_MISMATCH":
            raise ConfigurationError(f"private key {key!r} does not belong to certificate "
                                     f"{cert!r}") from None
        which = f"certificate {cert!r}" + (f" with key {key!r}" if key else "")
        raise ConfigurationError(f"cannot load {which}: {reason}") from None


def _load_ca(ctx: ssl.SSLContext, ca_file: str | os.PathLike[str] | None,
             ca_data: str | bytes | None) -> None:
    try:
        if ca_file is not None:
            ctx.load_verify_locations(cafile=os.fspath(ca_file))
        if ca_data is not None:
            ctx.load_verify_locations(
                cadata=ca_data.decode("ascii") if isinstance(ca_data, bytes) else ca_data
            )
    except (OSError, ssl.SSLError, ValueError) as exc:
        name = os.fspath(ca_file) if ca_file is not None else "<ca_data>"
        detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigurationError(f"cannot load CA bundle {name!r}: {detail}") from None


def device_tls_context(
    *,
    ca_file: str | os.PathLike[str] | None = None,
    ca_data: str | bytes | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """TLS client context of the device end.

    Trust anchors: ``ca_file``/``ca_data``, or the system store when neither
    is given.  ``cert_file``/``key_file``: the device certificate for mTLS
    (UPL-33, UPL-35); leave them out in access-token mode.
    """
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True  # UPL-31: RFC 6125 via OpenSSL X509_check_host / _ip
    # OpenSSL consults the CN only when no DNS-ID is present (RFC 6125 6.4.4)
    # and refuses partial wildcards such as "f*.example.com" (UPL-R29).
    ctx.hostname_checks_common_name = True
    if ca_file is None and ca_data is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        _load_ca(ctx, ca_file, ca_data)
    _load_chain(ctx, cert_file, key_file)
    return ctx


def cloud_tls_context(
    *,
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str] | None = None,
    client_ca_file: str | os.PathLike[str] | None = None,
    client_ca_data: str | bytes | None = None,
    require_client_cert: bool | None = None,
) -> ssl.SSLContext:
    """TLS server context of the cloud end (UPL-30).

    With a client CA the cloud asks for device certificates; they are
    required unless ``require_client_cert=False`` (then devices without one
    must authenticate with an access token).
    """
    has_ca = client_ca_file is not None or client_ca_data is not None
    if require_client_cert and not has_ca:
        raise ConfigurationError("require_client_cert=True needs client_ca_file or client_ca_data")
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    _load_chain(ctx, cert_file, key_file)
    if has_ca:
        _load_ca(ctx, client_ca_file, client_ca_data)
        ctx.verify_mode = ssl.CERT_OPTIONAL if require_client_cert is False else ssl.CERT_REQUIRED
    return ctx


#: ALPN of the front door, server preference first: h2 clients get HTTP/2 over TLS.
FRONTDOOR_ALPN = ("h2", "http/1.1")


def frontdoor_tls_context(
    *,
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str] | None = None,
    client_ca_file: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """TLS server context of the cloud's front door (ordinary HTTP clients, not uplinks).

    Unlike the uplink (UPL-R3) it offers ALPN ``h2`` then ``http/1.1``, so an
    HTTP/2 client negotiates h2 and just sends its preface (the front door
    sniffs it).  With ``client_ca_file`` a client certificate is asked for and
    verified when sent, but not required (API clients may present one; others
    authenticate otherwise).
    """
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    ctx.set_alpn_protocols(list(FRONTDOOR_ALPN))
    _load_chain(ctx, cert_file, key_file)
    if client_ca_file is not None:
        _load_ca(ctx, client_ca_file, None)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def is_ip_literal(host: str) -> bool:
    """True for IPv4/IPv6 literals (no SNI for them, UPL-R2)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_alpn(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
    """Abort when the cloud selected ``h2`` (UPL-R3): it would wait for our preface."""
    if ssl_object is None:
        return
    selected = ssl_object.selected_alpn_protocol()
    if selected is not None and selected not in ALPN_PROTOCOLS:
        raise TransportError(f"TLS: cloud selected ALPN {selected!r}; only http/1.1 is offered")


def peer_common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """Subject CN of the verified peer certificate (the mTLS device identity, UPL-34)."""
    if ssl_object is None:
        return None
    cert: Any = ssl_object.getpeercert()
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value:
                return str(value)
    return None


_VERIFY_REASONS = {
    10: "certificate has expired",
    9: "certificate is not yet valid",
    18: "unknown CA (self-signed certificate)",
    19: "unknown CA (self-signed certificate in chain)",
    20: "unknown CA (unable to get local issuer certificate)",
    21: "unknown CA (unable to verify the first certificate)",
    62: "certificate name mismatch",
    64: "certificate IP address mismatch",
}

_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "cloud requires a client certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake failure (no common cipher, or a certificate "
                                     "was required)",
    "TLSV1_ALERT_UNKNOWN_CA": "peer rejected our certificate (unknown CA)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "peer rejected our certificate (expired)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "peer rejected our certificate",
    "TLSV1_ALERT_DECRYPT_ERROR": "peer rejected our certificate (decrypt error)",
    "NO_APPLICATION_PROTOCOL": "no common ALPN protocol",
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": "no common ALPN protocol",
    "WRONG_VERSION_NUMBER": "peer does not speak TLS",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "peer did not present a certificate",
    "CERTIFICATE_VERIFY_FAILED": "certificate verify failed",
}


def describe_tls_error(exc: BaseException) -> str:
    """A short ``Error`` text for a TLS failure (UPL-R27), e.g. ``TLS: certificate has expired``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        text = _VERIFY_REASONS.get(code) if isinstance(code, int) else None
        message = getattr(exc, "verify_message", None)
        return f"TLS: {text or message or 'certificate verify failed'}"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        if reason in _ALERTS:
            return f"TLS: {_ALERTS[reason]}"
        return f"TLS: {reason.lower().replace('_', ' ') if reason else exc.__class__.__name__}"
    if isinstance(exc, TransportError):
        return exc.reason
    if isinstance(exc, ConnectionRefusedError):
        return "TCP: connection refused"
    if isinstance(exc, TimeoutError):
        return "TCP/TLS: timed out"
    if isinstance(exc, OSError):
        return f"TCP: {exc.strerror or exc.__class__.__name__}"
    return f"{exc.__class__.__name__}"
