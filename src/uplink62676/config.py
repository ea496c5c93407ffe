"""Uplink configuration values ``tup:Configuration`` / ``tup:Capabilities`` (config-service.md §2).

:class:`UplinkConfiguration` and :class:`Capabilities` mirror the schema types
field by field.  Extension elements (``xs:any``) and attributes
(``xs:anyAttribute``) are kept as serialized XML and written back untouched,
so a device never drops what a newer client stored (CFG-36).  Parsing is
tolerant where the schema history demands it: ``Online`` reads as
``Connected`` (OQ-7), the authorization mode ``JWT`` reads as ``AccessToken``
(OQ-10), and a single IEC-era ``UserLevel`` string is a one-item list.
:class:`Status` is the enum of :mod:`uplink62676.status`, shared with the
uplink state machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import attrs
from lxml import etree

from ._xml import parse_xml
from .errors import ConfigurationError, XmlRejectedError
from .namespaces import TUP
from .status import Status

__all__ = [
    "AUTHORIZATION_MODES",
    "PROTOCOLS",
    "Capabilities",
    "Status",
    "UplinkConfiguration",
    "capabilities_from_xml",
    "capabilities_to_xml",
    "configuration_from_xml",
    "configuration_to_xml",
]

#: Defined values of ``tup:Protocols`` and ``tup:AuthorizationModes`` (CFG-12).
PROTOCOLS: Final = ("https", "wss")
AUTHORIZATION_MODES: Final = ("mTLS", "AccessToken")
_MODE_ALIASES: Final = {"JWT": "AccessToken"}
_REFERENCE_TOKEN_MAX: Final = 64
_WS: Final = re.compile(r"[ \t\r\n]+")


def _parse_status(text: str) -> Status | None:
    """Read a status string; ``Online`` (IEC-era prose, OQ-7) means ``Connected``.

    An undefined value gives ``None``: a server ignores Status anyway (CFG-5).
    """
    value = _collapse(text)
    if value == "Online":
        return Status.CONNECTED
    for member in Status:
        if member.value == value:
            return member
    return None


def _collapse(text: str) -> str:
    """XML Schema whitespace collapsing (``xs:anyURI``, ``xs:boolean``, lists)."""
    return _WS.sub(" ", text).strip(" ")


def _string_list(value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    return tuple(value)


def _optional_string_list(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else _string_list(value)


def _check_list_items(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    assert isinstance(value, tuple)
    for item in value:
        if not isinstance(item, str) or not item or _WS.search(item) or XML_INVALID_CHARS.search(
            item
        ):
            raise ConfigurationError(
                f"{attribute.name}: list item {item!r} must be a non-empty string"
                " without whitespace"
            )


#: Characters XML 1.0 cannot carry at all (CFG-23 restricts nothing beyond this).
XML_INVALID_CHARS: Final = re.compile(
    "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _check_optional_str(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ConfigurationError(f"{attribute.name} must be a string or None, got {value!r}")
    if XML_INVALID_CHARS.search(value):
        raise ConfigurationError(f"{attribute.name} {value!r} holds characters XML cannot carry")


def _canonical_elements(value: Iterable[bytes]) -> tuple[bytes, ...]:
    """Each extension as canonical XML (C14N 1.0): stable bytes, all prefixes kept."""
    out = []
    for item in value:
        if not isinstance(item, bytes):
            raise ConfigurationError(f"extension {item!r} is not serialized XML bytes")
        try:
            elem = parse_xml(item, require_utf8=True)
        except XmlRejectedError as exc:
            raise ConfigurationError(
                f"extension {item[:80]!r} is not one XML element: {exc}"
            ) from None
        out.append(_serialize_extension(elem))
    return tuple(out)


def _check_attributes(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    assert isinstance(value, tuple)
    for item in value:
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise ConfigurationError(f"{attribute.name}: {item!r} is not a (name, value) pair")
        try:
            etree.QName(item[0])
        except ValueError:
            raise ConfigurationError(f"{attribute.name}: {item[0]!r} is not an XML name") from None


def _check_remote_address(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        not isinstance(value, str)
        or not value
        or _collapse(value) != value
        or XML_INVALID_CHARS.search(value)
    ):
        raise ConfigurationError(
            f"RemoteAddress {value!r} must be a non-empty URI without surrounding"
            " or repeated whitespace"
        )


def _check_token(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _check_optional_str(instance, attribute, value)
    if isinstance(value, str) and (not value or len(value) > _REFERENCE_TOKEN_MAX):
        raise ConfigurationError(
            f"{attribute.name} {value!r} is not a tt:ReferenceToken (1 to 64 characters)"
        )


def _to_tuple(value: Iterable[object]) -> tuple[object, ...]:
    return tuple(value)


@attrs.frozen(slots=True)
class UplinkConfiguration:
    """One ``tup:Configuration`` (config-service.md section 2.1).

    ``remote_address`` is the key (CFG-6, CFG-R6).  ``certificate_id`` selects
    mTLS, ``authorization_server`` access-token mode (CFG-8).  ``user_level``
    is the ``tt:StringList`` of levels and/or roles (a plain string is split
    on whitespace).  ``status`` and ``error`` are output-only (CFG-5, CFG-9).
    ``extensions`` are serialized extension elements, ``extension_attributes``
    ``(Clark name, value)`` pairs; both are written back unchanged.
    """

    remote_address: str = attrs.field(validator=_check_remote_address)
    user_level: tuple[str, ...] = attrs.field(
        default=("Administrator",), converter=_string_list, validator=_check_list_items
    )
    certificate_id: str | None = attrs.field(default=None, validator=_check_optional_str)
    status: Status | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Status))
    )
    cert_path_validation_policy_id: str | None = attrs.field(
        default=None, validator=_check_optional_str
    )
    authorization_server: str | None = attrs.field(default=None, validator=_check_token)
    error: str | None = attrs.field(default=None, validator=_check_optional_str)
    extensions: tuple[bytes, ...] = attrs.field(default=(), converter=_canonical_elements)
    extension_attributes: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=_to_tuple, validator=_check_attributes
    )

    @property
    def authorization_mode(self) -> str | None:
        """``'mTLS'`` if ``CertificateID`` is present, ``'AccessToken'`` if
        ``AuthorizationServer`` is (CFG-8); ``None`` when neither or both are."""
        if (self.certificate_id is None) == (self.authorization_server is None):
            return None
        return "mTLS" if self.certificate_id is not None else "AccessToken"

    def without_runtime(self) -> UplinkConfiguration:
        """This configuration with the output-only ``Status`` and ``Error`` removed."""
        if self.status is None and self.error is None:
            return self
        return attrs.evolve(self, status=None, error=None)


@attrs.frozen(slots=True)
class Capabilities:
    """``tup:Capabilities`` (config-service.md section 2.2, CFG-11, CFG-12).

    ``None`` means the attribute is absent; :meth:`effective_protocols` and
    :meth:`effective_authorization_modes` apply the defaults of CFG-R2.
    """

    max_uplinks: int | None = attrs.field(default=None)
    protocols: tuple[str, ...] | None = attrs.field(
        default=None, converter=_optional_string_list, validator=_check_list_items
    )
    authorization_modes: tuple[str, ...] | None = attrs.field(
        default=None, converter=_optional_string_list, validator=_check_list_items
    )
    streaming_over_uplink: bool | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(bool))
    )
    extensions: tuple[bytes, ...] = attrs.field(default=(), converter=_canonical_elements)
    extension_attributes: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=_to_tuple, validator=_check_attributes
    )

    @max_uplinks.validator
    def _check_max(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
            raise ConfigurationError(f"MaxUplinks {value!r} must be an xs:int >= 0")

    def effective_protocols(self) -> tuple[str, ...]:
        """Supported schemes; ``https`` alone when the attribute is absent (CFG-R2)."""
        return self.protocols if self.protocols is not None else ("https",)

    def effective_authorization_modes(self) -> tuple[str, ...]:
        """Supported modes; ``mTLS`` alone when absent; ``JWT`` reads as ``AccessToken``."""
        if self.authorization_modes is None:
            return ("mTLS",)
        return tuple(_MODE_ALIASES.get(m, m) for m in self.authorization_modes)


# --------------------------------------------------------------------------- XML

_FIELDS: Final = (
    ("RemoteAddress", "remote_address"),
    ("CertificateID", "certificate_id"),
    ("UserLevel", "user_level"),
    ("Status", "status"),
    ("CertPathValidationPolicyID", "cert_path_validation_policy_id"),
    ("AuthorizationServer", "authorization_server"),
    ("Error", "error"),
)
_BY_TAG: Final = {f"{{{TUP}}}{name}": field for name, field in _FIELDS}
_CONFIGURATION_TAG: Final = f"{{{TUP}}}Configuration"
_CAPABILITIES_TAG: Final = f"{{{TUP}}}Capabilities"


_PREFIX_USE: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*):")


def _serialize_extension(elem: etree._Element) -> bytes:
    """Exclusive C14N of one extension element: the same bytes in any context.

    Exclusive canonicalization declares only the namespaces the element uses,
    so moving it between envelopes, responses and the store does not change
    it.  Prefixes that appear in text or attribute values (QName-valued
    content such as ``q:name``) are kept declared as well.
    """
    in_scope = {p for p in elem.nsmap if p}
    used: set[str] = set()
    for node in elem.iter():
        values = [node.text or ""]
        if node is not elem:
            values.append(node.tail or "")
        values.extend(str(v) for v in node.attrib.values())
        for value in values:
            used.update(_PREFIX_USE.findall(value))
    keep = sorted(used & in_scope)
    return etree.tostring(
        elem, method="c14n", exclusive=True, with_tail=False,
        inclusive_ns_prefixes=keep or None,
    )


def _new_with_extensions(
    tag: str, extensions: tuple[bytes, ...], attributes: tuple[tuple[str, str], ...]
) -> tuple[etree._Element, list[etree._Element]]:
    """Create ``tag`` carrying the extension attributes, plus the parsed extension elements.

    Attribute namespaces are declared on the new element with the prefixes the
    extension elements use for them, so re-embedding keeps every prefix (and
    with it any QName-valued content) exactly as it was.
    """
    children = [parse_xml(raw, require_utf8=True) for raw in extensions]
    nsmap: dict[str, str] = {"tup": TUP}
    for name, _value in attributes:
        uri = etree.QName(name).namespace
        if not uri or uri in nsmap.values():
            continue
        for child in children:
            prefix = next((p for p, u in child.nsmap.items() if u == uri and p), None)
            if prefix and prefix not in nsmap:
                nsmap[prefix] = uri
                break
    elem = etree.Element(tag, nsmap=nsmap)
    for name, value in attributes:
        elem.set(name, value)
    return elem, children


def configuration_to_xml(
    config: UplinkConfiguration, tag: str = _CONFIGURATION_TAG
) -> etree._Element:
    """Build the ``tup:Configuration`` element (schema order, CFG-20)."""
    elem, extensions = _new_with_extensions(
        tag, config.extensions, config.extension_attributes
    )
    sub = etree.SubElement
    sub(elem, f"{{{TUP}}}RemoteAddress").text = config.remote_address
    if config.certificate_id is not None:
        sub(elem, f"{{{TUP}}}CertificateID").text = config.certificate_id
    sub(elem, f"{{{TUP}}}UserLevel").text = " ".join(config.user_level)
    if config.status is not None:
        sub(elem, f"{{{TUP}}}Status").text = config.status.value
    if config.cert_path_validation_policy_id is not None:
        sub(elem, f"{{{TUP}}}CertPathValidationPolicyID").text = (
            config.cert_path_validation_policy_id
        )
    if config.authorization_server is not None:
        sub(elem, f"{{{TUP}}}AuthorizationServer").text = config.authorization_server
    if config.error is not None:
        sub(elem, f"{{{TUP}}}Error").text = config.error
    elem.extend(extensions)
    return elem


def configuration_from_xml(elem: etree._Element) -> UplinkConfiguration:
    """Read a ``tup:Configuration`` element (of any tag name).

    Raises :class:`ConfigurationError` for a schema violation: a known element
    twice, a required one missing, child elements inside a string value, or a
    value breaking its type.  An unknown ``Status`` string is read as ``None``
    (a server ignores it anyway, CFG-5).  Elements in other namespaces, and
    ``tup`` elements this version does not know, are kept as extensions.
    """
    values: dict[str, str] = {}
    extensions: list[bytes] = []
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        field = _BY_TAG.get(child.tag)
        if field is None:
            extensions.append(etree.tostring(child, with_tail=False))
            continue
        if field in values:
            raise ConfigurationError(f"{etree.QName(child).localname} appears twice")
        if len(child):
            raise ConfigurationError(f"{etree.QName(child).localname} must hold text only")
        values[field] = child.text or ""
    if "remote_address" not in values:
        raise ConfigurationError("Configuration without RemoteAddress")
    if "user_level" not in values:
        raise ConfigurationError("Configuration without UserLevel")
    status = _parse_status(values["status"]) if "status" in values else None
    token = values.get("authorization_server")
    return UplinkConfiguration(
        remote_address=_collapse(values["remote_address"]),
        user_level=values["user_level"],
        certificate_id=values.get("certificate_id"),
        status=status,
        cert_path_validation_policy_id=values.get("cert_path_validation_policy_id"),
        authorization_server=None if token is None else token.strip(" \t\r\n"),
        error=values.get("error"),
        extensions=extensions,
        extension_attributes=tuple((str(k), str(v)) for k, v in elem.attrib.items()),
    )


def capabilities_to_xml(caps: Capabilities, tag: str = _CAPABILITIES_TAG) -> etree._Element:
    """Build the ``tup:Capabilities`` element; ``JWT`` is emitted as ``AccessToken`` (OQ-10)."""
    elem, extensions = _new_with_extensions(tag, caps.extensions, caps.extension_attributes)
    if caps.max_uplinks is not None:
        elem.set("MaxUplinks", str(caps.max_uplinks))
    if caps.protocols is not None:
        elem.set("Protocols", " ".join(caps.protocols))
    if caps.authorization_modes is not None:
        elem.set(
            "AuthorizationModes",
            " ".join(_MODE_ALIASES.get(m, m) for m in caps.authorization_modes),
        )
    if caps.streaming_over_uplink is not None:
        elem.set("StreamingOverUplink", "true" if caps.streaming_over_uplink else "false")
    elem.extend(extensions)
    return elem


_KNOWN_CAP_ATTRS: Final = frozenset(
    {"MaxUplinks", "Protocols", "AuthorizationModes", "StreamingOverUplink"}
)
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")


def capabilities_from_xml(elem: etree._Element) -> Capabilities:
    """Read a ``tup:Capabilities`` element; ``JWT`` becomes ``AccessToken`` (OQ-10, CFG-R2)."""
    attrib = elem.attrib
    max_uplinks: int | None = None
    raw = attrib.get("MaxUplinks")
    if raw is not None:
        text = _collapse(str(raw))
        if not _INT_RE.fullmatch(text) or not -(2**31) <= int(text) <= 2**31 - 1:
            raise ConfigurationError(f"MaxUplinks {raw!r} is not an xs:int")
        max_uplinks = max(int(text), 0)
    streaming: bool | None = None
    raw = attrib.get("StreamingOverUplink")
    if raw is not None:
        text = _collapse(str(raw))
        if text not in ("true", "false", "1", "0"):
            raise ConfigurationError(f"StreamingOverUplink {raw!r} is not an xs:boolean")
        streaming = text in ("true", "1")
    modes_raw = attrib.get("AuthorizationModes")
    modes = (
        None
        if modes_raw is None
        else tuple(_MODE_ALIASES.get(m, m) for m in str(modes_raw).split())
    )
    protocols_raw = attrib.get("Protocols")
    return Capabilities(
        max_uplinks=max_uplinks,
        protocols=None if protocols_raw is None else str(protocols_raw),
        authorization_modes=modes,
        streaming_over_uplink=streaming,
        extensions=[etree.tostring(c, with_tail=False) for c in elem if isinstance(c.tag, str)],
        extension_attributes=tuple(
            (str(k), str(v)) for k, v in attrib.items() if k not in _KNOWN_CAP_ATTRS
        ),
    )

