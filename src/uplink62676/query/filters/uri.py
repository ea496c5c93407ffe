"""WS-Discovery scope matching on RFC 3986 normalised URIs (RQ-15, RQ-16, RQ-R10)."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MATCH_RFC2396", "MATCH_RFC3986", "MATCH_STRCMP0", "NormalizedScope",
           "normalize_scope", "scope_matches"]

MATCH_RFC3986: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986"
MATCH_RFC2396: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc2396"
MATCH_STRCMP0: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0"

_URI_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(?://([^/?#]*))?([^?#]*)(?:\?[^#]*)?(?:#.*)?")
_URI_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]%]*")
_PCT_RE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
NormalizedScope = tuple[str, str | None, tuple[str, ...]]
_SCOPE_CACHE: dict[str, NormalizedScope | None] = {}


def _pct_normalize(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    return _PCT_RE.sub(fix, text)


def normalize_scope(uri: str) -> NormalizedScope | None:
    """``(scheme, authority, path segments)`` normalised per RFC 3986 6.2.2; ``None`` if unparsable.

    Scheme and authority are lower-cased (compared case-insensitively);
    percent-escapes of unreserved characters are decoded and the others
    upper-cased.  An empty path has no segments; a trailing ``/`` gives a
    final empty segment (RQ-R10).
    """
    cached = _SCOPE_CACHE.get(uri)
    if cached is not None or uri in _SCOPE_CACHE:
        return cached
    result: NormalizedScope | None = None
    m = _URI_RE.fullmatch(uri)
    if m is not None and _URI_CHARS.fullmatch(uri) and "%" not in _PCT_RE.sub("", uri):
        scheme, authority, path = m.groups()
        if authority is not None:
            authority = _pct_normalize(authority).lower()
        path = _pct_normalize(path)
        if path == "":
            segments: tuple[str, ...] = ()
        else:
            segments = tuple((path[1:] if path.startswith("/") else path).split("/"))
        result = (scheme.lower(), authority, segments)
    if len(_SCOPE_CACHE) > 65536:
        _SCOPE_CACHE.clear()
    _SCOPE_CACHE[uri] = result
    return result


def _dot_free(segments: tuple[str, ...]) -> bool:
    return "." not in segments and ".." not in segments


def scope_matches(filter_scope: str, resource_scope: str, rule: str = MATCH_RFC3986) -> bool:
    """One WS-Discovery scope match (RQ-15, RQ-16, section 7.1)."""
    if rule == MATCH_STRCMP0:
        return filter_scope == resource_scope
    s = normalize_scope(filter_scope)
    t = normalize_scope(resource_scope)
    if s is None or t is None or s[0] != t[0] or s[1] != t[1]:
        return False
    ss, ts = s[2], t[2]
    return (_dot_free(ss) and _dot_free(ts) and len(ss) <= len(ts)
            and ts[: len(ss)] == ss)
