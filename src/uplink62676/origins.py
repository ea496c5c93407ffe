"""Client-visible origins and the forwarding headers that carry them (DEV-R14, DEV-R17).

A broker (the cloud front door, a reverse proxy, the device agent) reaches a
device under one origin and is reached by clients under another.  The device
builds its URIs from the origin it is told about; this module is the value
(:class:`Origin`: scheme, host, port, with default ports made explicit, so
``http://cam`` equals ``http://cam:80``) and its wire forms: the ``Forwarded``
header of RFC 7239 plus the de facto ``X-Forwarded-*`` family, built for the
broker end and parsed, bounded and strictly, for the device end.  Forwarding
headers can be forged (RFC 7239 section 8.1): only a device configured to
trust its peer should read them (DEV-R15).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Final

import attrs

from .errors import ConfigurationError, RemoteProtocolError

__all__ = [
    "DEFAULT_PORTS",
    "FORWARDING_HEADERS",
    "ForwardedElement",
    "Origin",
    "PublicOrigin",
    "forwarding_headers",
    "parse_forwarded",
    "public_origin",
    "without_forwarding_headers",
]

#: Default port of each scheme an ONVIF URI may carry (DEV-29, media.md section 3).
DEFAULT_PORTS: Final[dict[str, int]] = {
    "http": 80,
    "https": 443,
    "ws": 80,
    "wss": 443,
    "rtsp": 554,
    "rtsps": 322,
}

#: Lower-case names of every forwarding header; a broker drops them from
#: untrusted clients before adding its own (DEV-R17).
FORWARDING_HEADERS: Final = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
    }
)

_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*\Z")
# RFC 3986 reg-name (unreserved + sub-delims + pct-encoded), no ':' '@' '[' ']'.
_REG_NAME: Final = re.compile(r"(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})+\Z")
_PORT: Final = re.compile(r"[0-9]{1,5}\Z")
_PREFIX: Final = re.compile(r"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+)*\Z")


def _host(text: str, what: str) -> str:
    """Normalise a host: lower case, IPv6 in brackets, validated (our error on junk)."""
    host = text.lower()
    if host.startswith("["):
        if not host.endswith("]"):
            raise ConfigurationError(f"{what}: unterminated IPv6 literal {text!r}")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ConfigurationError(f"{what}: not an IPv6 address: {text!r}") from None
    if ":" in host:
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise ConfigurationError(f"{what}: not a host: {text!r}") from None
    if not _REG_NAME.match(host):
        raise ConfigurationError(f"{what}: not a host: {text!r}")
    return host


def _port(text: str, what: str) -> int:
    if not _PORT.match(text) or not 0 < int(text) < 65536:
        raise ConfigurationError(f"{what}: not a port: {text!r}")
    return int(text)


def check_prefix(prefix: str, what: str = "path prefix") -> str:
    """Validate a path prefix (``""`` or ``/a/b``, ASCII, no query) and drop a trailing ``/``."""
    prefix = prefix.rstrip("/")
    if not _PREFIX.match(prefix):
        raise ConfigurationError(f"{what} must be empty or an absolute ASCII path: {prefix!r}")
    return prefix


@attrs.frozen(slots=True)
class Origin:
    """``scheme://host:port`` of RFC 6454, normalised: lower case, IPv6 bracketed, port explicit."""

    scheme: str
    host: str
    port: int

    def __attrs_post_init__(self) -> None:
        if not _SCHEME.match(self.scheme):
            raise ConfigurationError(f"origin scheme must be lower case: {self.scheme!r}")
        if _host(self.host, "origin host") != self.host:
            raise ConfigurationError(f"origin host must be normalised: {self.host!r}")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"origin port out of range: {self.port!r}")

    @classmethod
    def parse(cls, text: str) -> Origin:
        """Parse ``scheme://host[:port]`` (a trailing ``/`` allowed); our error on anything else."""
        scheme, sep, rest = text.partition("://")
        scheme = scheme.lower()
        if not sep or not _SCHEME.match(scheme):
            raise ConfigurationError(f"origin needs scheme://host: {text!r}")
        authority = rest[:-1] if rest.endswith("/") else rest
        host, port = split_authority(authority, what="origin")
        if port is None:
            port = DEFAULT_PORTS.get(scheme)
            if port is None:
                raise ConfigurationError(f"origin {text!r}: no default port for {scheme!r}")
        return cls(scheme, host, port)

    @classmethod
    def of(cls, scheme: str, authority: str) -> Origin:
        """Origin of a request from its ``:scheme`` and ``:authority`` (or ``Host``), UPL-59."""
        return cls.parse(f"{scheme}://{authority}")

    @property
    def authority(self) -> str:
        """``host[:port]``, the port omitted when it is the scheme's default."""
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return self.host
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}"


def split_authority(authority: str, *, what: str = "authority") -> tuple[str, int | None]:
    """``host[:port]`` -> (normalised host, port or ``None``); no userinfo allowed."""
    if "@" in authority or not authority:
        raise ConfigurationError(f"{what}: not host[:port]: {authority!r}")
    if authority.startswith("["):
        end = authority.find("]")
        host_text, rest = authority[: end + 1], authority[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise ConfigurationError(f"{what}: bad IPv6 authority {authority!r}")
        port_text = rest[1:]
    else:
        host_text, _, port_text = authority.partition(":")
    host = _host(host_text, what)
    return host, (_port(port_text, what) if port_text else None)


# --------------------------------------------------------------------------- building

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def _value(text: str) -> str:
    """An RFC 7239 value: a token as it is, anything else (``:``, ``[``) as a quoted-string."""
    if _TOKEN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node(address: str, port: int | None) -> str:
    """A ``for``/``by`` node: IPv4, ``[IPv6]``, ``unknown`` or ``_obfuscated``, then ``:port``."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        if address != "unknown" and not re.fullmatch(r"_[A-Za-z0-9._-]+", address):
            raise ConfigurationError(
                f"forwarded node must be an IP, unknown or _name: {address!r}"
            ) from None
        node = address
    else:
        node = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    if port is not None:
        if not 0 < port < 65536:
            raise ConfigurationError(f"forwarded node port out of range: {port!r}")
        node = f"{node}:{port}"
    return node


def forwarding_headers(
    origin: Origin,
    *,
    client: str | None = None,
    client_port: int | None = None,
    prefix: str = "",
    by: str | None = None,
) -> tuple[tuple[bytes, bytes], ...]:
    """Headers telling a device the client-visible ``origin`` (DEV-R17), lower-case names.

    ``Forwarded`` (RFC 7239: ``for``, ``by``, ``proto``, ``host``; values with
    ``:`` or ``[`` quoted) plus ``X-Forwarded-Proto/-Host/-Port``, ``-For`` when
    ``client`` is known and ``-Prefix`` when the broker routes by path.
    """
    prefix = check_prefix(prefix)
    pairs = []
    if client is not None:
        pairs.append("for=" + _value(_node(client, client_port)))
    if by is not None:
        pairs.append("by=" + _value(_node(by, None)))
    pairs.append("proto=" + _value(origin.scheme))
    pairs.append("host=" + _value(origin.authority))
    headers = [(b"forwarded", ";".join(pairs).encode("ascii"))]
    if client is not None:
        headers.append((b"x-forwarded-for", _node(client, None).strip("[]").encode("ascii")))
    headers += [
        (b"x-forwarded-proto", origin.scheme.encode("ascii")),
        (b"x-forwarded-host", origin.authority.encode("ascii")),
        (b"x-forwarded-port", str(origin.port).encode("ascii")),
    ]
    if prefix:
        headers.append((b"x-forwarded-prefix", prefix.encode("ascii")))
    return tuple(headers)


def without_forwarding_headers(
    headers: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """``headers`` minus every forwarding header (names compared case-insensitively)."""
    return [(n, v) for n, v in headers if n.lower() not in FORWARDING_HEADERS]


# --------------------------------------------------------------------------- parsing

MAX_FORWARDED_OCTETS: Final = 4096
MAX_FORWARDED_ELEMENTS: Final = 16


@attrs.frozen(slots=True)
class ForwardedElement:
    """One hop of a ``Forwarded`` header; ``None`` where the pair is absent."""

    for_: str | None = None
    by: str | None = None
    host: str | None = None
    proto: str | None = None


# One pair: name '=' (token | quoted-string), with optional whitespace around
# the separators (RFC 7239 has none, proxies add it; we tolerate OWS only).
_PAIR: Final = re.compile(
    r"[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=(?:([!#$%&'*+\-.^_`|~0-9A-Za-z]+)"
    r'|"((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*)")[ \t]*'
)
_QUOTED_PAIR: Final = re.compile(r"\\(.)")


def _bad(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"malformed Forwarded header: {message}", http_status=400)


def parse_forwarded(
    value: bytes | str,
    *,
    max_octets: int = MAX_FORWARDED_OCTETS,
    max_elements: int = MAX_FORWARDED_ELEMENTS,
) -> tuple[ForwardedElement, ...]:
    """Parse a ``Forwarded`` value (RFC 7239) into its hops, first hop first.

    Bounded (``max_octets``, ``max_elements``) and strict: a repeated
    parameter, a bad token or an unterminated quote raises
    :class:`RemoteProtocolError` (HTTP 400).  Unknown parameters are ignored.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        if len(value) > max_octets:
            raise _bad(f"{len(value)} octets, more than {max_octets}")
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise _bad("non-ASCII octets") from None
    else:
        text = value
    if len(text) > max_octets:
        raise _bad(f"{len(text)} characters, more than {max_octets}")
    elements: list[ForwardedElement] = []
    pos, end = 0, len(text)
    while True:
        found: dict[str, str] = {}
        while True:
            m = _PAIR.match(text, pos)
            if m is None:
                raise _bad(f"no name=value at offset {pos}")
            name = m.group(1).lower()
            raw = m.group(2)
            val = raw if raw is not None else _QUOTED_PAIR.sub(r"\1", m.group(3))
            if name in found:
                raise _bad(f"parameter {name!r} twice in one element")
            found[name] = val
            pos = m.end()
            if pos < end and text[pos] == ";":
                pos += 1
                continue
            break
        elements.append(
            ForwardedElement(found.get("for"), found.get("by"), found.get("host"),
                             found.get("proto", "").lower() or None)
        )
        if pos == end:
            return tuple(elements)
        if text[pos] != ",":
            raise _bad(f"unexpected {text[pos]!r} at offset {pos}")
        if len(elements) >= max_elements:
            raise _bad(f"more than {max_elements} elements")
        pos += 1


@attrs.frozen(slots=True)
class PublicOrigin:
    """Where the client sees the device: the origin and the path prefix before the service path."""

    origin: Origin
    prefix: str = ""


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    values = [v for n, v in headers if n.lower() == name]
    if len(values) > 1 and name != b"forwarded":
        raise _bad(f"{name.decode()} repeated")
    return b",".join(values) if values else None


def public_origin(
    headers: Sequence[tuple[bytes, bytes]], *, default_scheme: str = "http"
) -> PublicOrigin | None:
    """The client-visible origin a trusted broker announced (DEV-R14 (2)), or ``None``.

    Reads the last ``Forwarded`` element (the one the nearest proxy added),
    falling back to ``X-Forwarded-Proto``/``-Host``; the prefix comes from
    ``X-Forwarded-Prefix``.  Call it only for a peer you trust (DEV-R15).
    Malformed values raise :class:`RemoteProtocolError` (HTTP 400).
    """
    scheme = host = None
    forwarded = _header(headers, b"forwarded")
    if forwarded is not None:
        last = parse_forwarded(forwarded)[-1]
        scheme, host = last.proto, last.host
    if host is None:
        raw = _header(headers, b"x-forwarded-host")
        if raw is not None:
            host = raw.decode("ascii", "replace").split(",")[0].strip()
    if scheme is None:
        raw = _header(headers, b"x-forwarded-proto")
        if raw is not None:
            scheme = raw.decode("ascii", "replace").split(",")[0].strip().lower()
    if host is None:
        return None
    raw_prefix = _header(headers, b"x-forwarded-prefix")
    try:
        origin = Origin.of(scheme or default_scheme, host)
        prefix = check_prefix(raw_prefix.decode("ascii") if raw_prefix else "")
    except (ConfigurationError, UnicodeDecodeError) as exc:
        raise _bad(str(exc)) from None
    return PublicOrigin(origin, prefix)
