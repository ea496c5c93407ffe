"""Header rules for HTTP messages that cross a hop: front door <-> uplink <-> local server.

Connection-specific (hop-by-hop) fields never cross from HTTP/1.1 to HTTP/2
or back (RFC 9110 section 7.6.1, RFC 9113 section 8.2.2).  The device-side
forwarder replaces whatever authentication a request carried by the
uplink's UserLevel in ``X-Uplink-User-Level`` (UPL-41), and drops an
incoming header of that name so the cloud cannot raise its own level
(UPL-R19).  Pure functions over ``(name, value)`` byte pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

__all__ = [
    "HOP_BY_HOP",
    "USER_LEVEL_HEADER",
    "LocalRequestHead",
    "local_request_head",
    "strip_hop_by_hop",
]

#: Header the forwarders add to tell a local web server the UserLevel of a
#: tunneled request (UPL-41); an incoming header of that name is dropped, so
#: the cloud cannot raise its own level (UPL-R19).
USER_LEVEL_HEADER = "x-uplink-user-level"

#: Connection-specific headers that never cross from HTTP/1.1 to HTTP/2 or back.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
    b"te", b"host", b"http2-settings", b"proxy-authorization", b"proxy-authenticate",
    b"trailer",
})

_LOCAL_DROP = HOP_BY_HOP | {b"authorization", USER_LEVEL_HEADER.encode(), b"content-length"}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Header = tuple[bytes, bytes]


def strip_hop_by_hop(headers: Iterable[tuple[bytes, bytes]]) -> list[Header]:
    """``headers`` without pseudo-headers and hop-by-hop fields (names compared lower-case)."""
    return [(k, v) for k, v in headers
            if k[:1] != b":" and (k if k.islower() else k.lower()) not in HOP_BY_HOP]


@attrs.frozen(slots=True)
class LocalRequestHead:
    """What the device sends its local HTTP/1.1 server for one tunneled request.

    ``headers`` already say how the body is framed; ``has_body`` tells the
    caller whether to stream body octets (then end the body) at all.
    """

    headers: tuple[Header, ...]
    has_body: bool


def local_request_head(
    headers: Sequence[tuple[bytes, bytes]],
    *,
    method: str,
    host: str,
    user_level: Sequence[str],
    content_length: int | None,
    body_complete: bool,
) -> LocalRequestHead:
    """Headers for replaying a tunneled request to a legacy camera's web server.

    Drops hop-by-hop fields, ``Authorization`` and any incoming
    ``X-Uplink-User-Level`` (UPL-R19); adds ``Host`` first and the uplink's
    UserLevel last (UPL-41).  Framing: a known ``content-length`` is kept; a
    body already known to be empty needs none, except ``content-length: 0``
    for POST/PUT/PATCH (servers may wait for a body otherwise); anything else
    streams ``chunked``.
    """
    out = [(b"host", host.encode("latin-1"))]
    out += [(k, v) for k, v in headers if k.lower() not in _LOCAL_DROP]
    out.append((USER_LEVEL_HEADER.encode(), " ".join(user_level).encode("latin-1")))
    if content_length is not None:
        out.append((b"content-length", str(content_length).encode()))
        return LocalRequestHead(tuple(out), content_length > 0)
    if body_complete:
        if method in _BODY_METHODS:
            out.append((b"content-length", b"0"))
        return LocalRequestHead(tuple(out), False)
    out.append((b"transfer-encoding", b"chunked"))
    return LocalRequestHead(tuple(out), True)
