"""Rewrite the origin of the URIs in SOAP bodies, splicing bytes (DEV-29, DEV-R16, DEV-R17).

Through a broker the URIs a device returns (XAddrs, subscription references,
media URIs; DEV-29) name the origin the broker used to reach the device, not
the one the client sees.  :class:`UriRewriter` replaces that origin (and an
optional path prefix) by the public one, and back again for ``wsa:To`` in
requests.  The hardened parser (:func:`uplink62676._xml.parse_xml`) decides
*which* elements carry such URIs -- by namespace and parent, never by prefix --
and a scan of the original octets finds *where* they are: the k-th start tag
with a given local name outside comments, CDATA and PIs is the k-th element
of that name in document order.  Only the URI octets change; the rest of the
answer (namespaces, whitespace, signatures over other parts) stays
octet-identical, and the cost is one parse and no serialisation.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final, Literal

import attrs

from ._xml import DEFAULT_MAX_BYTES, parse_xml
from .errors import ConfigurationError, XmlRejectedError
from .namespaces import ENV, SOAP11_ENV, TDS, TEV, TR2, TT, WSA, WSNT
from .origins import DEFAULT_PORTS, Origin, check_prefix

__all__ = [
    "REQUEST_FIELDS",
    "RESPONSE_FIELDS",
    "SOAP_MEDIA_TYPES",
    "TRT",
    "RewriteResult",
    "UriRewriter",
    "UriRule",
    "rewrite_soap_uris",
]

#: ONVIF Media (ver10) service namespace: ``trt:MediaUri`` of GetStreamUri/GetSnapshotUri.
TRT: Final = "http://www.onvif.org/ver10/media/wsdl"

SOAP_MEDIA_TYPES: Final = frozenset({"application/soap+xml", "text/xml", "application/xml"})


@attrs.frozen(slots=True)
class UriRule:
    """Replace ``source`` + ``source_prefix`` by ``target`` + ``target_prefix``; keep the rest.

    The prefix matches whole path segments (``/devices/cam7`` matches
    ``/devices/cam7/x`` and ``/devices/cam7?q``, not ``/devices/cam77``).  An
    ``rtsp``/``rtsps`` URI is only touched by a rule whose source has that scheme.
    """

    source: Origin
    target: Origin
    source_prefix: str = attrs.field(default="", converter=check_prefix)
    target_prefix: str = attrs.field(default="", converter=check_prefix)

    @classmethod
    def of(cls, source: str, target: str) -> UriRule:
        """Rule from two ``scheme://host[:port][/prefix]`` strings."""
        (so, sp), (to, tp) = _origin_and_prefix(source), _origin_and_prefix(target)
        return cls(so, to, sp, tp)

    def reversed(self) -> UriRule:
        """The inverse rule (public back to device-side, e.g. for ``wsa:To``, DEV-R17)."""
        return UriRule(self.target, self.source, self.target_prefix, self.source_prefix)


def _origin_and_prefix(text: str) -> tuple[Origin, str]:
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ConfigurationError(f"rule side needs scheme://host: {text!r}")
    authority, slash, path = rest.partition("/")
    return Origin.parse(f"{scheme}://{authority}"), check_prefix(slash + path)


@attrs.frozen(slots=True)
class RewriteResult:
    """The (possibly) rewritten body, how many URIs changed, and why the body was skipped.

    ``skipped`` is ``None`` when the body was examined, else ``"not-soap"``,
    ``"too-large"``, ``"encoding"`` (UTF-16 or UTF-32: only ASCII-based
    encodings are rewritten), ``"unaligned"`` (octets and tree disagreed;
    nothing changed) or the :class:`XmlRejectedError` reason (``"malformed"``,
    ``"doctype"``, ...).  A skipped body is returned unchanged.
    """

    body: bytes
    count: int = 0
    skipped: str | None = None


# --------------------------------------------------------------------------- the fields

def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


@attrs.frozen(slots=True)
class _Field:
    local: bytes  # the local name, to check octets and tree agree
    parents: frozenset[str] | None  # required parent tags, None = anywhere
    attribute: str | None = None  # the URI is this attribute, not the text


@attrs.frozen(slots=True)
class _Compiled:
    """A rule as octets: the source prefix to match, the target head to splice in."""

    source_prefix: bytes
    scheme: bytes  # b"https://"
    rest: bytes  # authority + target prefix
    head: bytes  # both


#: DEV-29: the URI-bearing elements of answers, by Clark name.
RESPONSE_FIELDS: Final[dict[str, _Field]] = {
    _q(TDS, "XAddr"): _Field(b"XAddr", frozenset({_q(TDS, "Service")})),
    _q(TT, "XAddr"): _Field(b"XAddr", None),
    _q(WSA, "Address"): _Field(
        b"Address",
        frozenset({_q(TEV, "SubscriptionReference"), _q(WSNT, "SubscriptionReference")})
    ),
    _q(TT, "Uri"): _Field(b"Uri", frozenset({_q(TRT, "MediaUri"), _q(TT, "SystemLog")})),
    _q(TR2, "Uri"): _Field(b"Uri", None),
    _q(TDS, "SupportInfoUri"): _Field(b"SupportInfoUri", None),
    _q(TDS, "SystemBackupUri"): _Field(b"SystemBackupUri", None),
    _q(TR2, "StreamingCapabilities"): _Field(b"StreamingCapabilities", None, "RTSPWebSocketUri"),
}

#: DEV-R17: the URI-bearing headers of requests.
REQUEST_FIELDS: Final[dict[str, _Field]] = {
    _q(WSA, "To"): _Field(b"To", frozenset({_q(ENV, "Header"), _q(SOAP11_ENV, "Header")})),
}

_WS: Final = b" \t\r\n"
# scheme "://" [userinfo "@"] host [":" port], followed by the path, query,
# fragment or the end of the URI.
_HEAD_PATTERN: Final = (
    r"([A-Za-z][A-Za-z0-9+.\-]*)://(?:([^/?#@\[\]\s<&]*)@)?"
    r"(\[[^\]/?#\s<]*\]|[^:/?#\[\]@\s<]*)(?::([0-9]*))?(?=[/?#]|\Z)"
)
_HEAD_S: Final = re.compile(_HEAD_PATTERN)
# The same on raw octets: leading XML whitespace skipped, trailing allowed.
_HEAD_B: Final = re.compile(
    b"[ \t\r\n]*+" + _HEAD_PATTERN.replace(r"(?=[/?#]|\Z)", r"(?=[/?#\s]|\Z)").encode()
)
# What may follow an origin or a prefix in character data ('<' starts the end tag).
_END: Final = b"/?#< \t\r\n"
_HOSTLESS_S: Final = re.compile(r"(wss?):(/(?!/)[^?#]*)?(.*)\Z", re.S | re.I)
_TAG_END: Final = re.compile(rb"""(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""")
_ATTRIBUTE: Final = re.compile(
    rb"""[ \t\r\n]+([^\s=/>]+)[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')"""
)


def _escape(text: str, attribute: bool) -> bytes:
    """XML-escape ``text``; non-ASCII as character references (safe in any ASCII-based encoding)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attribute:
        text = text.replace('"', "&quot;").replace("'", "&apos;")
    return text.encode("ascii", "xmlcharrefreplace")


def _is_soap(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.partition(";")[0].strip().lower() in SOAP_MEDIA_TYPES


Fields = Literal["response", "request", "both"]


class UriRewriter:
    """Rewrites DEV-29 URIs (``fields="response"``) or ``wsa:To`` (``"request"``) by ``rules``.

    Compiled once per set of rules; :meth:`rewrite` is then called per body.
    The first rule whose source origin and prefix match a URI wins (longer
    source prefixes are tried first).
    """

    __slots__ = ("_by_origin", "_cache", "_fields", "_literals", "_locals", "_names", "_scan",
                 "_scan_all", "fields", "max_bytes", "rules")

    def __init__(
        self,
        rules: UriRule | Iterable[UriRule],
        *,
        fields: Fields = "response",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.rules: tuple[UriRule, ...] = (rules,) if isinstance(rules, UriRule) else tuple(rules)
        if not all(isinstance(r, UriRule) for r in self.rules):
            raise ConfigurationError("UriRewriter rules must be UriRule values")
        if fields not in ("response", "request", "both"):
            raise ConfigurationError(f"fields must be response, request or both: {fields!r}")
        if max_bytes < 0:
            raise ConfigurationError(f"max_bytes must not be negative: {max_bytes!r}")
        self.fields: Fields = fields
        self.max_bytes = max_bytes
        table: dict[str, _Field] = {}
        if fields in ("response", "both"):
            table.update(RESPONSE_FIELDS)
        if fields in ("request", "both"):
            table.update(REQUEST_FIELDS)
        self._fields = table
        by_origin: dict[tuple[str, str, int], list[UriRule]] = {}
        for rule in self.rules:
            s = rule.source
            by_origin.setdefault((s.scheme, s.host, s.port), []).append(rule)
        self._by_origin = {
            k: tuple(sorted(v, key=lambda r: -len(r.source_prefix))) for k, v in by_origin.items()
        }
        names = sorted({tag.rpartition("}")[2] for tag in table})
        self._locals = tuple(n.encode("ascii") for n in names)
        self._names = tuple(f"{{*}}{n}" for n in names)
        # Comments, CDATA sections and PIs are matched whole so that no tag
        # inside them counts; group 1 is the local name of a candidate start tag.
        start_tag = rb"<(?:[^\s<>/!?:=]++:)?+(" + b"|".join(self._locals) + rb")(?=[\s/>])"
        self._scan = re.compile(start_tag)
        self._scan_all = re.compile(
            rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|" + start_tag, re.S
        )
        self._cache: dict[tuple[bytes, bytes, bytes | None], tuple[_Compiled, ...]] = {}
        literals: list[tuple[bytes, _Compiled]] = []
        for (scheme, host, port), _ in self._by_origin.items():
            spelled = f"{scheme}://{host}".encode("ascii")
            for c in self._compiled((scheme.encode(), host.encode(), str(port).encode())):
                literals.append((spelled + b":" + str(port).encode(), c))
                if DEFAULT_PORTS.get(scheme) == port:
                    literals.append((spelled, c))
        self._literals = tuple(literals)

    def reversed(self) -> UriRewriter:
        """The rewriter with every rule reversed (same fields and limit)."""
        return UriRewriter([r.reversed() for r in self.rules], fields=self.fields,
                           max_bytes=self.max_bytes)

    # ------------------------------------------------------------------ one URI

    def _rules_for(self, scheme: str, host: str, port: str) -> tuple[UriRule, ...]:
        scheme = scheme.lower()
        host = host.lower()
        if host.startswith("["):
            try:
                host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
            except ValueError:
                return ()
        default = DEFAULT_PORTS.get(scheme)
        number = int(port) if port else default
        if number is None:
            return ()
        return self._by_origin.get((scheme, host, number), ())

    @staticmethod
    def _prefix_ok(rest: str, prefix: str) -> bool:
        n = len(prefix)
        return rest.startswith(prefix) and (len(rest) == n or rest[n] in "/?#")

    def rewrite_uri(self, uri: str) -> str | None:
        """The rewritten form of one (unescaped) URI, or ``None`` when no rule applies."""
        uri = uri.strip(" \t\r\n")
        m = _HEAD_S.match(uri)
        if m is None:
            return self._rewrite_hostless(uri)
        scheme, userinfo, host, port = m.groups()
        rest = uri[m.end() :]
        for rule in self._rules_for(scheme, host, port or ""):
            if self._prefix_ok(rest, rule.source_prefix):
                user = f"{userinfo}@" if userinfo is not None else ""
                t = rule.target
                return (f"{t.scheme}://{user}{t.authority}{rule.target_prefix}"
                        f"{rest[len(rule.source_prefix):]}")
        return None

    def _rewrite_hostless(self, uri: str) -> str | None:
        """``ws:/path`` (no host, media.md MED-8) -> ``ws:/<prefix>/path`` (DEV-R16)."""
        m = _HOSTLESS_S.match(uri)
        if m is None or m.group(2) is None:
            return None
        scheme, path, tail = m.groups()
        for rule in self.rules:
            if rule.source.scheme not in ("http", "https", "ws", "wss"):
                continue
            if rule.source_prefix == rule.target_prefix:
                continue
            if self._prefix_ok(path, rule.source_prefix):
                new_path = rule.target_prefix + path[len(rule.source_prefix) :]
                return f"{scheme}:{new_path or '/'}{tail}"
        return None

    def _compiled(self, key: tuple[bytes, bytes, bytes | None]) -> tuple[_Compiled, ...]:
        """Rules for a raw ``(scheme, host, port)`` of a URI, as octets to splice (memoized)."""
        found = self._cache.get(key)
        if found is None:
            scheme, host, port = key
            try:
                rules = self._rules_for(scheme.decode("ascii"), host.decode("ascii"),
                                        (port or b"").decode("ascii"))
            except UnicodeDecodeError:
                rules = ()
            found = tuple(
                _Compiled(r.source_prefix.encode("ascii"), f"{r.target.scheme}://".encode("ascii"),
                          f"{r.target.authority}{r.target_prefix}".encode("ascii"),
                          str(r.target).encode("ascii") + r.target_prefix.encode("ascii"))
                for r in rules
            )
            if len(self._cache) >= 256:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _splice(
        self, m: re.Match[bytes], data: bytes, lt: int, amp: int
    ) -> tuple[int, int, bytes] | None:
        """Edit for a URI head matched by ``_HEAD_B`` (any case, userinfo, odd ports)."""
        head_end = m.end()
        for c in self._compiled((m[1], m[3], m[4])):
            sp = c.source_prefix
            after = head_end + len(sp)
            if sp and not (data.startswith(sp, head_end) and data[after] in _END):
                continue
            if 0 <= amp <= after:
                return None  # an escape inside what we match: the caller decodes
            user = m[2]
            head = (c.scheme + user + b"@" + c.rest) if user is not None else c.head
            return (m.start(1), after, head)
        return None

    # ------------------------------------------------------------------ bodies

    def rewrite(self, body: bytes, content_type: str | None) -> RewriteResult:
        """Rewrite the URIs of one SOAP body; see :class:`RewriteResult` for the outcome."""
        if not _is_soap(content_type):
            return RewriteResult(body, 0, "not-soap")
        if len(body) > self.max_bytes:
            return RewriteResult(body, 0, "too-large")
        data = bytes(body)
        if b"\x00" in data[:4] or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return RewriteResult(body, 0, "encoding")  # UTF-16/32: our octet scan is ASCII
        if self._scan.search(data) is None:  # no candidate start tag: nothing to parse
            return RewriteResult(body, 0, None)
        try:
            root = parse_xml(data, max_bytes=self.max_bytes)
        except XmlRejectedError as exc:
            return RewriteResult(body, 0, exc.reason)
        elements = list(root.iter(*self._names))
        # Every real start tag is a hit, so the counts agree unless a comment,
        # CDATA section or PI holds a look-alike; then scan again, skipping those.
        hits = list(self._scan.finditer(data))
        if len(hits) != len(elements):
            hits = [m for m in self._scan_all.finditer(data) if m.lastindex]
        if len(hits) != len(elements):
            return RewriteResult(body, 0, "unaligned")
        edits: list[tuple[int, int, bytes]] = []
        fields = self._fields
        for hit, el in zip(hits, elements, strict=True):
            tag = el.tag
            field = fields.get(tag)
            if field is None:
                if not isinstance(tag, str) or tag.rpartition("}")[2].encode() != hit[1]:
                    return RewriteResult(body, 0, "unaligned")
                continue
            if field.local != hit[1]:
                return RewriteResult(body, 0, "unaligned")
            if field.parents is not None:
                parent = el.getparent()
                if parent is None or parent.tag not in field.parents:
                    continue
            pos = hit.end()
            if data[pos] == 0x3E:  # '>'
                start = pos + 1
            else:
                tag_end = _TAG_END.match(data, pos)
                if tag_end is None:  # cannot happen in a well-formed document
                    return RewriteResult(body, 0, "unaligned")
                start = tag_end.end()
                if field.attribute is not None:
                    edit = self._attribute(data, pos, start, field.attribute,
                                           el.get(field.attribute))
                    if edit is not None:
                        edits.append(edit)
                    continue
                if data[start - 2] == 0x2F:  # '/>': empty
                    continue
            if field.attribute is not None:
                continue
            lt = data.find(b"<", start)
            if data[lt + 1] != 0x2F:  # CDATA, a comment, a PI or a child inside
                if not len(el) and el.text:
                    edit = self._decoded(data, start, el.text)
                    if edit is not None:
                        edits.append(edit)
                continue
            # The fast path: character data up to the end tag, matched as octets.
            while data[start] in _WS:
                start += 1
            amp = data.find(b"&", start, lt)
            decode = amp >= 0
            for literal, c in self._literals:  # the usual spellings first, no regex
                if data.startswith(literal, start):
                    after = start + len(literal)
                    if data[after] not in _END or not (
                        not c.source_prefix or (data.startswith(c.source_prefix, after)
                                                and data[after + len(c.source_prefix)] in _END)):
                        continue
                    after += len(c.source_prefix)
                    if not 0 <= amp <= after:
                        edits.append((start, after, c.head))
                        decode = False
                    break
            else:
                m = _HEAD_B.match(data, start, lt)
                if m is not None:
                    edit = self._splice(m, data, lt, amp)
                    if edit is not None:
                        edits.append(edit)
                        decode = False
            if decode and el.text:
                edit = self._decoded(data, start, el.text)
                if edit is not None:
                    edits.append(edit)
        if not edits:
            return RewriteResult(body, 0, None)
        out = []
        pos = 0
        for start, end, new in edits:
            out.append(data[pos:start])
            out.append(new)
            pos = end
        out.append(data[pos:])
        return RewriteResult(b"".join(out), len(edits), None)

    def _decoded(self, data: bytes, start: int, decoded: str) -> tuple[int, int, bytes] | None:
        """Edit of a leaf's content from its decoded text: escapes, CDATA, comments inside."""
        new = self.rewrite_uri(decoded)
        if new is None:
            return None
        end = _content_end(data, start)
        while start < end and data[start] in _WS:
            start += 1
        while end > start and data[end - 1] in _WS:
            end -= 1
        if (data.startswith(b"<![CDATA[", start) and data.find(b"]]>", start) == end - 3
                and new.isascii() and "]]>" not in new):
            return (start, end, b"<![CDATA[" + new.encode("ascii") + b"]]>")
        return (start, end, _escape(new, False))

    def _attribute(
        self, data: bytes, start: int, end: int, name: str, decoded: str | None
    ) -> tuple[int, int, bytes] | None:
        """Edit of the URI in attribute ``name`` of the start tag ``data[start:end]``."""
        if decoded is None:
            return None
        new = self.rewrite_uri(decoded)
        if new is None:
            return None
        wanted = name.encode("ascii")
        for m in _ATTRIBUTE.finditer(data, start, end):
            if m[1] == wanted:
                group = 2 if m[2] is not None else 3
                a, b = m.start(group), m.end(group)
                while a < b and data[a] in _WS:
                    a += 1
                while b > a and data[b - 1] in _WS:
                    b -= 1
                return (a, b, _escape(new, True))
        return None


def _content_end(data: bytes, pos: int) -> int:
    """Offset of the end tag closing a leaf element whose content starts at ``pos``."""
    while True:
        lt = data.find(b"<", pos)
        if data.startswith(b"<![CDATA[", lt):
            pos = data.index(b"]]>", lt) + 3
        elif data.startswith(b"<!--", lt):
            pos = data.index(b"-->", lt) + 3
        elif data.startswith(b"<?", lt):
            pos = data.index(b"?>", lt) + 2
        else:
            return lt


def rewrite_soap_uris(
    body: bytes,
    content_type: str | None,
    rule: UriRule | Iterable[UriRule],
    *,
    fields: Fields = "response",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> RewriteResult:
    """One-off :meth:`UriRewriter.rewrite`; build a :class:`UriRewriter` to reuse the rules."""
    return UriRewriter(rule, fields=fields, max_bytes=max_bytes).rewrite(body, content_type)

