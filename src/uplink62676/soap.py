"""SOAP 1.2 envelope and fault codec (config-service.md section 5; CFG-20, CFG-22, CFG-25..28).

Every ONVIF service of this library is document/literal SOAP 1.2 over HTTP.  This
module turns request bytes into an :class:`Envelope` (or a :class:`SoapFault`
saying exactly why not), turns response elements into bytes, and turns faults
into responses and back.  Parsing goes through the one hardened parser
(:func:`uplink62676._xml.parse_xml`): UTF-8 only, no DOCTYPE, a byte limit
before parsing and depth/element limits after.

The server-side entry point for a service is :func:`handle_request`; the
client side uses :func:`build_request` and :func:`parse_response`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final, NamedTuple

from lxml import etree

from ._xml import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, parse_xml
from .errors import ConfigurationError, RemoteProtocolError, SoapFault, XmlRejectedError
from .namespaces import ENV, PREFIXES, SOAP11_ENV, TER

__all__ = [
    "GENERIC_FAULTS",
    "MAX_ENVELOPE_BYTES",
    "SOAP_CONTENT_TYPE",
    "Body",
    "Envelope",
    "SoapRequest",
    "SoapResponse",
    "build_envelope",
    "build_request",
    "fault_envelope",
    "fault_response",
    "generic_fault",
    "handle_request",
    "http_error_response",
    "parse_envelope",
    "parse_fault",
    "parse_response",
    "soap_action",
]

#: Largest SOAP message accepted, in octets (design.md "Security shape").
MAX_ENVELOPE_BYTES: Final = 1024 * 1024

#: Content type of every SOAP 1.2 message we send (CFG-22: UTF-8).
SOAP_CONTENT_TYPE: Final = "application/soap+xml; charset=utf-8"

_XML_DECL: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_ENVELOPE: Final = f"{{{ENV}}}Envelope"
_HEADER: Final = f"{{{ENV}}}Header"
_BODY: Final = f"{{{ENV}}}Body"
_FAULT: Final = f"{{{ENV}}}Fault"
_MUST_UNDERSTAND: Final = f"{{{ENV}}}mustUnderstand"
_ROLE: Final = f"{{{ENV}}}role"
_ENCODING_STYLE: Final = f"{{{ENV}}}encodingStyle"
_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_ROLE_NONE: Final = "http://www.w3.org/2003/05/soap-envelope/role/none"
_NO_ENCODING: Final = "http://www.w3.org/2003/05/soap-envelope/encoding/none"
_WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSA_OLD: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
_URI_TO_PREFIX: Final = {uri: prefix for prefix, uri in PREFIXES.items()}

#: Header namespaces whose ``mustUnderstand`` blocks are accepted by default:
#: WS-Addressing is optional for the uplink service (CFG-R1) and WS-Security
#: credentials are ignored on the uplink, which cannot raise the level (UPL-R19).
DEFAULT_UNDERSTOOD: Final = frozenset({PREFIXES["wsa"], _WSA_OLD, _WSSE})

#: The generic faults of IEC 60839-11-31 Table 5 (CFG-26): subcode (or code for
#: the three SOAP-level ones) -> (code, subcodes, normative reason text).
GENERIC_FAULTS: Final[Mapping[str, tuple[str, tuple[str, ...], str]]] = {
    "env:VersionMismatch": ("env:VersionMismatch", (), "SOAP version mismatch"),
    "env:MustUnderstand": ("env:MustUnderstand", (), "SOAP header blocks not understood"),
    "env:DataEncodingUnknown": ("env:DataEncodingUnknown", (), "Unsupported SOAP data encoding"),
    "ter:WellFormed": ("env:Sender", ("ter:WellFormed",), "Well-formed Error"),
    "ter:TagMismatch": ("env:Sender", ("ter:TagMismatch",), "Tag Mismatch"),
    "ter:Tag": ("env:Sender", ("ter:Tag",), "No Tag"),
    "ter:Namespace": ("env:Sender", ("ter:Namespace",), "Namespace Error"),
    "ter:MissingAttr": ("env:Sender", ("ter:MissingAttr",), "Required Attribute not present"),
    "ter:ProhibAttr": ("env:Sender", ("ter:ProhibAttr",), "Prohibited Attribute"),
    "ter:InvalidArgs": ("env:Sender", ("ter:InvalidArgs",), "Invalid Args"),
    "ter:InvalidArgVal": ("env:Sender", ("ter:InvalidArgVal",), "Argument Value Invalid"),
    "ter:UnknownAction": ("env:Sender", ("ter:UnknownAction",), "Unknown Action"),
    "ter:OperationProhibited": (
        "env:Sender", ("ter:OperationProhibited",), "Operation not Permitted"),
    "ter:NotAuthorized": ("env:Sender", ("ter:NotAuthorized",), "Sender not Authorized"),
    "ter:ActionNotSupported": (
        "env:Receiver", ("ter:ActionNotSupported",), "Optional Action Not Implemented"),
    "ter:Action": ("env:Receiver", ("ter:Action",), "Action Failed"),
    "ter:OutofMemory": ("env:Receiver", ("ter:OutofMemory",), "Out of Memory"),
    "ter:CriticalError": ("env:Receiver", ("ter:CriticalError",), "Critical Error"),
}


def generic_fault(name: str, *, detail: bytes | None = None) -> SoapFault:
    """Return the generic fault ``name`` (``'ter:InvalidArgs'``, ``'env:VersionMismatch'``...).

    The reason is the normative text of IEC 60839-11-31 Table 5 (CFG-26), which
    also keeps internal details out of the answer (CFG-28).
    """
    try:
        code, subcodes, reason = GENERIC_FAULTS[name]
    except KeyError:
        raise ConfigurationError(f"no generic fault named {name!r}") from None
    return SoapFault(code, subcodes, reason, detail=detail)


class Envelope(NamedTuple):
    """A parsed SOAP 1.2 envelope.

    ``body`` is the single child of ``env:Body`` and ``operation`` its QName in
    Clark notation (``'{uri}SetUplink'``); services dispatch on it (CFG-R1).
    ``headers`` holds the children of ``env:Header`` (possibly empty).
    """

    body: etree._Element
    headers: tuple[etree._Element, ...]
    version: str = "1.2"

    @property
    def operation(self) -> str:
        """Clark name of the body's first element: the operation called."""
        return str(self.body.tag)


class SoapResponse(NamedTuple):
    """What a service hands to the HTTP layer: ``(status, headers, body)``.

    ``headers`` are lower-case ``(name, value)`` pairs, ready for h2 or h11.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class SoapRequest(NamedTuple):
    """A request to send: the body, its content type (with ``action``) and the action."""

    body: bytes
    content_type: str
    action: str


# --------------------------------------------------------------------------- parsing


def parse_envelope(
    data: bytes,
    *,
    max_bytes: int = MAX_ENVELOPE_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    understood: frozenset[str] = DEFAULT_UNDERSTOOD,
    allow_empty_body: bool = False,
) -> Envelope:
    """Parse a SOAP 1.2 request envelope or raise the :class:`SoapFault` to answer with.

    Faults (CFG-25, CFG-26): XML that is malformed, not UTF-8 or carries a
    DOCTYPE -> ``env:Sender/ter:WellFormed``; over a size, depth or element
    limit -> ``env:Sender/ter:InvalidArgs``; root other than the SOAP 1.2
    ``Envelope`` (SOAP 1.1 included) -> ``env:VersionMismatch``; ``Header`` or
    ``Body`` in another namespace -> ``env:Sender/ter:Namespace``; no ``Body``
    or an empty one -> ``env:Sender/ter:Tag``; unexpected children ->
    ``env:Sender/ter:TagMismatch``; more than one body child ->
    ``env:Sender/ter:InvalidArgs``; a ``mustUnderstand`` header outside
    ``understood`` (a set of namespace URIs or Clark names) ->
    ``env:MustUnderstand``; an ``encodingStyle`` -> ``env:DataEncodingUnknown``.
    """
    try:
        root = parse_xml(
            data,
            max_bytes=max_bytes,
            max_depth=max_depth,
            max_elements=max_elements,
            require_utf8=True,
        )
    except XmlRejectedError as exc:
        if exc.reason in ("too-large", "too-deep", "too-many-elements"):
            raise generic_fault("ter:InvalidArgs") from None
        raise generic_fault("ter:WellFormed") from None
    return _envelope_from_root(root, understood, allow_empty_body)


def _envelope_from_root(
    root: etree._Element, understood: frozenset[str] | None, allow_empty_body: bool
) -> Envelope:
    if root.tag != _ENVELOPE:
        raise generic_fault("env:VersionMismatch")
    _refuse_encoding_style(root)
    header: etree._Element | None = None
    body: etree._Element | None = None
    for child in root:
        tag = child.tag
        if tag == _HEADER and header is None and body is None:
            header = child
        elif tag == _BODY and body is None:
            body = child
            if (child.text or "").strip():
                raise generic_fault("ter:InvalidArgs")
        elif isinstance(tag, str):
            qn = etree.QName(child)
            if qn.localname in ("Header", "Body") and qn.namespace != ENV:
                raise generic_fault("ter:Namespace")
            raise generic_fault("ter:TagMismatch")
    if (root.text or "").strip():
        raise generic_fault("ter:TagMismatch")
    if body is None:
        raise generic_fault("ter:Tag")
    headers: tuple[etree._Element, ...] = ()
    if header is not None:
        _refuse_encoding_style(header)
        headers = tuple(h for h in header if isinstance(h.tag, str))
        if understood is not None:
            for block in headers:
                _check_header_block(block, understood)
    _refuse_encoding_style(body)
    children = [c for c in body if isinstance(c.tag, str)]
    if not children:
        if allow_empty_body:
            return Envelope(body, headers)
        raise generic_fault("ter:Tag")
    if len(children) > 1:
        raise generic_fault("ter:InvalidArgs")
    _refuse_encoding_style(children[0])
    return Envelope(children[0], headers)


def _refuse_encoding_style(elem: etree._Element) -> None:
    style = elem.get(_ENCODING_STYLE)
    if style is not None and style.strip() != _NO_ENCODING:
        raise generic_fault("env:DataEncodingUnknown")


def _check_header_block(block: etree._Element, understood: frozenset[str]) -> None:
    flag = (block.get(_MUST_UNDERSTAND) or "").strip()
    if flag not in ("1", "true"):
        return
    if (block.get(_ROLE) or "").strip() == _ROLE_NONE:
        return
    qn = etree.QName(block)
    if qn.namespace in understood or block.tag in understood:
        return
    raise generic_fault("env:MustUnderstand")


def soap_action(content_type: str | None) -> str | None:
    """Return the ``action`` parameter of a ``Content-Type`` header value, or ``None``.

    SOAP 1.2 carries the SOAP action there (config-service.md section 1).  The
    service never dispatches on it (CFG-R1); it is exposed for logging and for
    services that want to cross-check it.
    """
    if not content_type:
        return None
    for param in _split_params(content_type)[1:]:
        name, sep, value = param.partition("=")
        if sep and name.strip().lower() == "action":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            return value or None
    return None


_PARAM_TOKEN: Final = re.compile(r'"(?:[^"\\]|\\.)*"?|[^;"]+|;')


def _split_params(content_type: str) -> list[str]:
    """Split a header value on ``;`` outside double quotes (linear time)."""
    if '"' not in content_type:
        return content_type.split(";")
    parts: list[str] = []
    current: list[str] = []
    for match in _PARAM_TOKEN.finditer(content_type):
        piece = match.group()
        if piece == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(piece)
    parts.append("".join(current))
    return parts


_MEDIA_CACHE: dict[str, tuple[str, str | None]] = {}


def _media_type(content_type: str) -> tuple[str, str | None]:
    """``(media type, charset)`` of a header value; memoized (peers repeat theirs)."""
    cached = _MEDIA_CACHE.get(content_type)
    if cached is None:
        if len(_MEDIA_CACHE) >= 64:
            _MEDIA_CACHE.clear()
        cached = _MEDIA_CACHE[content_type] = _parse_media_type(content_type)
    return cached


def _parse_media_type(content_type: str) -> tuple[str, str | None]:
    media, sep, params = content_type.partition(";")
    charset = None
    if sep and "charset" in params.lower():
        for param in _split_params(params):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


# --------------------------------------------------------------------------- building


def _element_list(
    items: etree._Element | Iterable[etree._Element] | None,
) -> list[etree._Element]:
    if items is None:
        return []
    if isinstance(items, etree._Element):
        return [items]
    return list(items)


#: A response body: element(s), or content already serialized as UTF-8 XML.
Body = etree._Element | Iterable[etree._Element] | bytes | None

_PLAIN_OPEN: Final = b'<env:Envelope xmlns:env="' + ENV.encode() + b'"><env:Body>'
_PLAIN_CLOSE: Final = b"</env:Body></env:Envelope>"


def build_envelope(
    body: Body,
    header: etree._Element | Iterable[etree._Element] | None = None,
    *,
    nsmap: Mapping[str, str] | None = None,
) -> bytes:
    """Wrap ``body`` (and optional header blocks) into SOAP 1.2 envelope bytes.

    The result is UTF-8 with an XML declaration (CFG-22).  ``body`` is one or
    more elements, or ``bytes`` holding already serialized, namespace
    self-contained UTF-8 element content (the fast path services use for
    cached answers).  Parentless elements are adopted into the envelope;
    elements that belong to another tree are copied, so that tree is left as
    it was.  ``nsmap`` adds namespace declarations to the ``Envelope`` element.
    """
    if isinstance(body, bytes):
        if header is None and not nsmap:
            return _XML_DECL + _PLAIN_OPEN + body + _PLAIN_CLOSE
        shell = build_envelope(None, header, nsmap=nsmap)
        before, _, after = shell.rpartition(b"<env:Body/>")
        return before + b"<env:Body>" + body + b"</env:Body>" + after
    root = _new_envelope(nsmap)
    header_elems = _element_list(header)
    if header_elems:
        head = etree.SubElement(root, _HEADER)
        head.extend(_copy(e) for e in header_elems)
    body_elem = etree.SubElement(root, _BODY)
    body_elem.extend(_copy(e) for e in _element_list(body))
    return _XML_DECL + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def _copy(elem: etree._Element) -> etree._Element:
    # A parentless element is adopted as is (the cheap, common case); one that
    # still sits in another tree is copied so that tree stays untouched.
    if elem.getparent() is None:
        return elem
    return copy.deepcopy(elem)


def _new_envelope(nsmap: Mapping[str, str] | None) -> etree._Element:
    ns: dict[str, str] = {"env": ENV}
    if nsmap:
        ns.update(nsmap)
    return etree.Element(_ENVELOPE, nsmap=ns)


def build_request(
    body: etree._Element, action: str, header: Iterable[etree._Element] | None = None
) -> SoapRequest:
    """Build a request envelope and the ``Content-Type`` carrying ``action`` (CFG-R1)."""
    content_type = f'{SOAP_CONTENT_TYPE}; action="{action}"'
    return SoapRequest(build_envelope(body, header), content_type, action)


def _qname_text(name: str, nsmap: dict[str, str]) -> str:
    """Turn a prefixed or Clark name into ``prefix:local``, declaring the prefix in ``nsmap``."""
    if name.startswith("{"):
        uri, _, local = name[1:].partition("}")
        prefix = _URI_TO_PREFIX.get(uri)
        if prefix is None:
            prefix = next(
                (p for p, u in nsmap.items() if u == uri),
                f"ns{len(nsmap)}",
            )
        nsmap[prefix] = uri
        return f"{prefix}:{local}"
    prefix, sep, local = name.partition(":")
    if not sep or prefix not in PREFIXES or not local:
        raise ConfigurationError(
            f"fault code {name!r} is neither a known prefixed name nor Clark notation")
    nsmap[prefix] = PREFIXES[prefix]
    return name


def fault_envelope(fault: SoapFault, header: Iterable[etree._Element] | None = None) -> bytes:
    """Serialize ``fault`` as a SOAP 1.2 fault envelope (SOAP 1.2 Part 1 section 5.4).

    Code, nested Subcodes, Reason (``xml:lang="en"``) and the optional Detail
    appear in that order; every prefix used inside ``env:Value`` is declared
    on the ``Envelope`` element so the QNames resolve.
    """
    nsmap: dict[str, str] = {"env": ENV, "ter": TER}
    values = [_qname_text(fault.code, nsmap)]
    values.extend(_qname_text(s, nsmap) for s in fault.subcodes)
    root = _new_envelope(nsmap)
    header_elems = _element_list(header)
    if header_elems:
        etree.SubElement(root, _HEADER).extend(_copy(e) for e in header_elems)
    body = etree.SubElement(root, _BODY)
    felem = etree.SubElement(body, _FAULT)
    parent = etree.SubElement(felem, f"{{{ENV}}}Code")
    etree.SubElement(parent, f"{{{ENV}}}Value").text = values[0]
    for value in values[1:]:
        parent = etree.SubElement(parent, f"{{{ENV}}}Subcode")
        etree.SubElement(parent, f"{{{ENV}}}Value").text = value
    reason = etree.SubElement(felem, f"{{{ENV}}}Reason")
    text = etree.SubElement(reason, f"{{{ENV}}}Text")
    text.set(_XML_LANG, "en")
    text.text = fault.reason
    if fault.detail is not None:
        detail = _parse_detail(fault.detail)
        felem.append(detail)
    return _XML_DECL + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def _parse_detail(detail: bytes) -> etree._Element:
    wrapped = b'<env:Detail xmlns:env="' + ENV.encode() + b'">' + detail + b"</env:Detail>"
    try:
        return parse_xml(wrapped, require_utf8=True)
    except XmlRejectedError as exc:
        raise ConfigurationError(f"fault detail is not well-formed XML content: {exc}") from None


def fault_response(
    fault: SoapFault, header: Iterable[etree._Element] | None = None
) -> SoapResponse:
    """Turn ``fault`` into ``(status, headers, body)``.

    The status is ``fault.http_status``: 400 for ``env:Sender``, 500 otherwise,
    unless the fault was built with an explicit status (CFG-R12, OQ-19).  A
    ``VersionMismatch`` fault gets the SOAP 1.2 ``Upgrade`` header block naming
    the envelope version we support.
    """
    if header is None and fault.code == "env:VersionMismatch":
        header = [_upgrade_header()]
    return SoapResponse(
        fault.http_status,
        (("content-type", SOAP_CONTENT_TYPE),),
        fault_envelope(fault, header),
    )


def _upgrade_header() -> etree._Element:
    upgrade = etree.Element(f"{{{ENV}}}Upgrade", nsmap={"env": ENV})
    supported = etree.SubElement(upgrade, f"{{{ENV}}}SupportedEnvelope")
    supported.set("qname", "env:Envelope")
    return upgrade


def http_error_response(status: int) -> SoapResponse:
    """A plain HTTP error without a SOAP body (CFG-27, CFG-37, IEC 60839-11-31 Table 6)."""
    phrase = _HTTP_PHRASES.get(status, "Error")
    return SoapResponse(
        status, (("content-type", "text/plain; charset=utf-8"),), f"{phrase}\n".encode()
    )


_HTTP_PHRASES: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}

_SOAP_MEDIA_TYPES: Final = frozenset({"application/soap+xml", "text/xml", "application/xml"})


def handle_request(
    body: bytes,
    content_type: str | None,
    dispatch: Callable[[Envelope], Body],
    *,
    max_bytes: int = MAX_ENVELOPE_BYTES,
    understood: frozenset[str] = DEFAULT_UNDERSTOOD,
) -> SoapResponse:
    """Run one SOAP request through ``dispatch`` and produce the HTTP response.

    An empty body or a media type that is not SOAP/XML gets a plain HTTP error
    (400 / 415, CFG-27); a charset other than UTF-8 gets 415 (CFG-22).  A
    :class:`SoapFault` raised by parsing or by ``dispatch`` becomes a fault
    response (CFG-25); ``dispatch`` returns the response body (element(s) or
    serialized bytes, see :func:`build_envelope`).
    """
    if content_type is not None:
        media, charset = _media_type(content_type)
        if media not in _SOAP_MEDIA_TYPES or charset not in (None, "utf-8", "utf8"):
            return http_error_response(415)
    if not body:
        return http_error_response(400)
    try:
        if len(body) > max_bytes:
            raise generic_fault("ter:InvalidArgs")
        body = bytes(body)
        if not body.strip():
            return http_error_response(400)
        envelope = parse_envelope(body, max_bytes=max_bytes, understood=understood)
        result = dispatch(envelope)
    except SoapFault as fault:
        return fault_response(fault)
    return SoapResponse(200, (("content-type", SOAP_CONTENT_TYPE),), build_envelope(result))


# --------------------------------------------------------------------------- client side


def parse_response(
    data: bytes,
    *,
    status: int = 200,
    max_bytes: int = 16 * MAX_ENVELOPE_BYTES,
) -> Envelope:
    """Parse a response envelope (client side).

    Raises the server's :class:`SoapFault` when the body is a fault, whatever
    the HTTP status (clients accept 400 and 500, CFG-R12), and
    :class:`RemoteProtocolError` (with ``http_status``) when the answer is not
    a usable SOAP 1.2 envelope.  An empty body (``<env:Body/>``) is allowed:
    then ``body`` is the ``env:Body`` element itself.
    """
    try:
        env = _parse_lenient(data, max_bytes)
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(
            f"HTTP {status} response is not a usable SOAP 1.2 envelope ({exc})", http_status=status
        ) from None
    if env.body.tag == _FAULT:
        raise _fault_from_element(env.body, status)
    if not 200 <= status < 300:
        raise RemoteProtocolError(f"HTTP {status} without a SOAP fault", http_status=status)
    return env


def _parse_lenient(data: bytes, max_bytes: int) -> Envelope:
    try:
        root = parse_xml(data, max_bytes=max_bytes, require_utf8=True)
    except XmlRejectedError as exc:
        raise RemoteProtocolError(f"not acceptable XML: {exc}") from None
    try:
        return _envelope_from_root(root, None, True)
    except SoapFault as exc:
        raise RemoteProtocolError(f"not a SOAP 1.2 envelope ({exc})") from None


def parse_fault(data: bytes, *, status: int | None = None) -> SoapFault:
    """Parse fault envelope bytes back into a :class:`SoapFault` (client side, CFG-26).

    Raises :class:`RemoteProtocolError` when ``data`` is not a SOAP 1.2 fault.
    """
    env = _parse_lenient(data, 16 * MAX_ENVELOPE_BYTES)
    if env.body.tag != _FAULT:
        raise RemoteProtocolError("the SOAP body holds no env:Fault")
    return _fault_from_element(env.body, status)


def _fault_from_element(elem: etree._Element, status: int | None) -> SoapFault:
    code_elem = elem.find(f"{{{ENV}}}Code")
    if code_elem is None:
        raise RemoteProtocolError("env:Fault without env:Code", http_status=status)
    names: list[str] = []
    level: etree._Element | None = code_elem
    while level is not None:
        value = level.find(f"{{{ENV}}}Value")
        if value is None:
            raise RemoteProtocolError("fault code level without env:Value", http_status=status)
        names.append(_resolve_qname(value))
        level = level.find(f"{{{ENV}}}Subcode")
        if len(names) > 32:
            raise RemoteProtocolError("fault subcode chain too long", http_status=status)
    reason = ""
    texts = elem.findall(f"{{{ENV}}}Reason/{{{ENV}}}Text")
    if texts:
        chosen = next((t for t in texts if (t.get(_XML_LANG) or "").lower().startswith("en")),
                      texts[0])
        reason = chosen.text or ""
    detail: bytes | None = None
    detail_elem = elem.find(f"{{{ENV}}}Detail")
    if detail_elem is not None:
        parts = [_detached(c) for c in detail_elem if isinstance(c.tag, str)]
        if parts:
            detail = b"".join(parts)
        elif (detail_elem.text or "").strip():
            detail = _escape_text(detail_elem.text or "")
        else:
            detail = b""
    return SoapFault(names[0], names[1:], reason, detail=detail, http_status=status)


def _detached(elem: etree._Element) -> bytes:
    """Serialize a detail element without the envelope's unused namespace declarations."""
    clone = copy.deepcopy(elem)
    etree.cleanup_namespaces(clone)
    return etree.tostring(clone, with_tail=False)


def _escape_text(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()


def _resolve_qname(value: etree._Element) -> str:
    """Resolve an ``env:Value`` QName through the in-scope namespaces (never by prefix)."""
    text = (value.text or "").strip()
    prefix, sep, local = text.rpartition(":")
    if not sep:
        prefix, local = "", text
    if not local:
        raise RemoteProtocolError(f"fault code {text!r} is not a QName")
    uri = value.nsmap.get(prefix or None)
    if uri is None:
        raise RemoteProtocolError(f"fault code {text!r} uses an undeclared prefix")
    if uri == SOAP11_ENV:
        uri = ENV
    known = _URI_TO_PREFIX.get(uri)
    return f"{known}:{local}" if known else f"{{{uri}}}{local}"
