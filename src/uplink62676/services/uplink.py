"""The uplink configuration service ``tup`` (config-service.md; CFG-1..19, CFG-29, CFG-R1..R13).

:class:`UplinkService` is bytes in, bytes out: an adapter hands it the body,
``Content-Type`` and the requester's user level of one HTTP POST and sends
back the :class:`~uplink62676.soap.SoapResponse`.  It holds the list of
uplink configurations in memory (keyed by ``RemoteAddress``, in creation
order) and learns what it cannot know itself through small callables the
device provides:

* a :class:`SecurityLookup` — which certificate IDs, certification-path
  validation policies and authorization-server configurations exist;
* a :data:`StatusProvider` — the live ``Status`` and ``Error`` of an uplink;
* a :data:`ChangeListener` — called after every accepted SetUplink or
  DeleteUplink, *before* the response is produced, so the adapter can persist
  the new list and start, restart or stop uplinks (CFG-R9).  If it raises,
  the change is rolled back and the client gets ``env:Receiver / ter:Action``.

The service is not thread-safe: an adapter serving several connections calls
:meth:`UplinkService.handle` under one lock.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, Protocol

import attrs
from lxml import etree

from ..config import (
    XML_INVALID_CHARS,
    Capabilities,
    Status,
    UplinkConfiguration,
    capabilities_to_xml,
    configuration_from_xml,
    configuration_to_xml,
)
from ..errors import ConfigurationError, SoapFault
from ..handshake import uri_syntax_problem
from ..namespaces import TUP
from ..soap import Envelope, SoapResponse, generic_fault, handle_request
from .access import DEFAULT_POLICY, AccessClass, AccessPolicy, not_authorized

__all__ = [
    "ACTIONS",
    "DEFAULT_CAPABILITIES",
    "OPERATION_ACCESS",
    "ChangeKind",
    "ChangeListener",
    "ConfigurationChange",
    "Profile",
    "SecurityLookup",
    "StaticSecurityLookup",
    "StatusProvider",
    "UplinkService",
]

#: SOAP action of each operation (config-service.md section 1).
ACTIONS: Final[Mapping[str, str]] = {
    name: f"{TUP}/{name}"
    for name in ("GetServiceCapabilities", "GetUplinks", "SetUplink", "DeleteUplink")
}

#: Access class of each operation (CFG-29; GetServiceCapabilities: CFG-R3/OQ-37).
OPERATION_ACCESS: Final[Mapping[str, AccessClass]] = {
    "GetServiceCapabilities": AccessClass.PRE_AUTH,
    "GetUplinks": AccessClass.READ_SYSTEM,
    "SetUplink": AccessClass.WRITE_SYSTEM,
    "DeleteUplink": AccessClass.WRITE_SYSTEM,
}

#: What a device built on this library offers unless told otherwise.
DEFAULT_CAPABILITIES: Final = Capabilities(
    max_uplinks=4,
    protocols=("https", "wss"),
    authorization_modes=("mTLS", "AccessToken"),
    streaming_over_uplink=False,
)

_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_IEC_ALLOWED_LEVELS: Final = frozenset({"Administrator", "Operator", "User"})


class Profile(enum.Enum):
    """Which edition of the service to speak (CFG-R13, OQ-12)."""

    #: Current ONVIF (26.06): mTLS or access token, ``UserLevel`` a list.
    CURRENT = "current"
    #: IEC 62676-2-33:2022 as written: ``CertificateID`` required, one
    #: ``UserLevel``, no ONVIF-later elements, only ``MaxUplinks`` and ``https``.
    IEC_2022_STRICT = "iec-2022-strict"


class SecurityLookup(Protocol):
    """What the device's Security service knows (CFG-13, CFG-14, CFG-15)."""

    def has_certificate(self, certificate_id: str) -> bool:
        """Is there a certificate with key under this ID in the key store?"""
        ...

    def has_validation_policy(self, policy_id: str) -> bool:
        """Is there a certification-path validation policy with this ID?"""
        ...

    def has_authorization_server(self, token: str) -> bool:
        """Is there an AuthorizationServerConfiguration with this token?"""
        ...


@attrs.frozen(slots=True)
class StaticSecurityLookup:
    """A :class:`SecurityLookup` over fixed sets of IDs (tests, simple devices)."""

    certificates: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    validation_policies: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    authorization_servers: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)

    def has_certificate(self, certificate_id: str) -> bool:
        """True when the certificate ID is in the key store (CFG-13)."""
        return certificate_id in self.certificates

    def has_validation_policy(self, policy_id: str) -> bool:
        """True when the certificate path validation policy is known (CFG-14)."""
        return policy_id in self.validation_policies

    def has_authorization_server(self, token: str) -> bool:
        """True when the authorization server configuration is known (CFG-15)."""
        return token in self.authorization_servers


#: ``remote_address -> (Status, Error or None)`` of the running uplink (CFG-3, UPL-R27).
StatusProvider = Callable[[str], tuple[Status, str | None]]


class ChangeKind(enum.Enum):
    """What an accepted SetUplink or DeleteUplink did."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@attrs.frozen(slots=True)
class ConfigurationChange:
    """One accepted change, handed to the :data:`ChangeListener` (CFG-R9, CFG-R10).

    ``previous``/``current`` are the entry before and after (``None`` when it
    did not or no longer exists); ``configurations`` is the whole new list, in
    creation order, without ``Status``/``Error`` — what a store persists.
    """

    kind: ChangeKind
    remote_address: str
    previous: UplinkConfiguration | None
    current: UplinkConfiguration | None
    configurations: tuple[UplinkConfiguration, ...]


#: Called after each accepted change, before the response is produced.
ChangeListener = Callable[[ConfigurationChange], None]


def _offline(remote_address: str) -> tuple[Status, str | None]:
    return Status.OFFLINE, None


def _tup(name: str) -> str:
    return f"{{{TUP}}}{name}"


_OPERATION_BY_TAG: Final = {_tup(name): name for name in OPERATION_ACCESS}


class UplinkService:
    """Server side of GetServiceCapabilities, GetUplinks, SetUplink, DeleteUplink.

    ``configurations`` seeds the list (e.g. from
    :meth:`uplink62676.store.ConfigStore.load`).  ``security=None`` means the
    device has no way to check IDs, so they are not checked.
    """

    def __init__(
        self,
        capabilities: Capabilities = DEFAULT_CAPABILITIES,
        *,
        configurations: Iterable[UplinkConfiguration] = (),
        security: SecurityLookup | None = None,
        status_provider: StatusProvider | None = None,
        on_change: ChangeListener | None = None,
        policy: AccessPolicy = DEFAULT_POLICY,
        profile: Profile = Profile.CURRENT,
    ) -> None:
        if not isinstance(capabilities, Capabilities):
            raise ConfigurationError(f"capabilities must be Capabilities, got {capabilities!r}")
        self._capabilities = capabilities
        self._security = security
        self._status = status_provider or _offline
        self._on_change = on_change
        self._policy = policy
        self._profile = profile
        self._entries: dict[str, UplinkConfiguration] = {}
        self._fragments: dict[str, tuple[UplinkConfiguration, tuple[bytes, bytes, bytes]]] = {}
        self._allowed: dict[tuple[str, AccessClass], bool] = {}
        if profile is Profile.IEC_2022_STRICT:
            self._protocols = frozenset({"https"})
            self._modes = frozenset({"mTLS"})
        else:
            self._protocols = frozenset(p.lower() for p in capabilities.effective_protocols())
            self._modes = frozenset(capabilities.effective_authorization_modes())
        for config in configurations:
            if config.remote_address in self._entries:
                raise ConfigurationError(
                    f"two configurations share the RemoteAddress {config.remote_address!r}"
                )
            self._entries[config.remote_address] = config.without_runtime()

    # ----------------------------------------------------------------- state

    @property
    def configurations(self) -> tuple[UplinkConfiguration, ...]:
        """The stored configurations in creation order, without Status/Error."""
        return tuple(self._entries.values())

    @property
    def capabilities(self) -> Capabilities:
        """The capabilities as reported (only ``MaxUplinks`` in the strict profile)."""
        if self._profile is Profile.IEC_2022_STRICT:
            return Capabilities(max_uplinks=self._capabilities.max_uplinks)
        return self._capabilities

    @property
    def profile(self) -> Profile:
        """Which edition the service speaks (current ONVIF, or IEC 2022 strict)."""
        return self._profile

    # ----------------------------------------------------------------- HTTP face

    def handle(
        self,
        body: bytes,
        *,
        content_type: str | None = None,
        user_level: str | Sequence[str] = "Anonymous",
    ) -> SoapResponse:
        """Answer one POST to the service address.

        ``user_level`` is the requester's level or role list: for a request
        tunneled through an uplink, that uplink's ``UserLevel`` (UPL-41).
        Never raises for anything the peer sent; faults come back as
        responses (CFG-25).
        """
        return handle_request(
            body, content_type, lambda envelope: self._dispatch(envelope, user_level)
        )

    def _dispatch(
        self, envelope: Envelope, user_level: str | Sequence[str]
    ) -> etree._Element | bytes:
        # CFG-R1: dispatch on the body QName, never on the SOAP action.
        operation = _OPERATION_BY_TAG.get(envelope.operation)
        if operation is None:
            raise generic_fault("ter:ActionNotSupported")  # CFG-21
        self._check_access(user_level, OPERATION_ACCESS[operation])  # CFG-29, CFG-30
        request = envelope.body
        if operation == "GetServiceCapabilities":
            _expect_empty(request)
            response = etree.Element(_tup("GetServiceCapabilitiesResponse"), nsmap={"tup": TUP})
            response.append(capabilities_to_xml(self.capabilities))
            return response
        if operation == "GetUplinks":
            _expect_empty(request)
            return self._get_uplinks_body()
        if operation == "SetUplink":
            self.set_uplink(self._read_set_uplink(request))
            return _EMPTY_RESPONSE["SetUplink"]
        self.delete_uplink(_read_delete_uplink(request))
        return _EMPTY_RESPONSE["DeleteUplink"]

    def _check_access(self, user_level: str | Sequence[str], access: AccessClass) -> None:
        if not isinstance(user_level, str):
            self._policy.check(user_level, access)
            return
        key = (user_level, access)
        allowed = self._allowed.get(key)
        if allowed is None:  # the policy is immutable: remember its answers
            if len(self._allowed) >= 256:
                self._allowed.clear()
            allowed = self._allowed[key] = self._policy.allows(user_level, access)
        if not allowed:
            raise not_authorized()

    def _get_uplinks_body(self) -> bytes:
        """``tup:GetUplinksResponse`` as bytes from per-entry cached fragments.

        Serializing ten configurations element by element costs more than the
        rest of the exchange; the stored part of each entry only changes on
        SetUplink, so it is serialized once and only Status and Error are
        spliced in per request.
        """
        parts = [_GET_UPLINKS_OPEN]
        for address, config in self._entries.items():
            status, error = self._live_status(address)
            cached = self._fragments.get(address)
            if cached is None or cached[0] is not config:
                cached = (config, _fragments(config))
                self._fragments[address] = cached
            head, middle, tail = cached[1]
            parts += (head, _STATUS_XML[status], middle)
            if error:
                parts += (b"<tup:Error>", _escape(error), b"</tup:Error>")
            parts.append(tail)
        parts.append(_GET_UPLINKS_CLOSE)
        if len(self._fragments) > len(self._entries):  # forget deleted entries
            for stale in self._fragments.keys() - self._entries.keys():
                del self._fragments[stale]
        return b"".join(parts)

    def _live_status(self, address: str) -> tuple[Status, str | None]:
        try:
            status, error = self._status(address)
        except Exception:  # a device callback failed: report, do not leak (CFG-28)
            raise generic_fault("ter:Action") from None
        if not isinstance(status, Status) or not isinstance(error, str | None):
            raise generic_fault("ter:Action")
        if error:
            error = XML_INVALID_CHARS.sub("\ufffd", error)
        return status, error or None

    def _read_set_uplink(self, request: etree._Element) -> UplinkConfiguration:
        children = [c for c in request if isinstance(c.tag, str)]
        if len(children) != 1 or children[0].tag != _tup("Configuration"):
            raise generic_fault("ter:InvalidArgs")
        elem = children[0]
        if self._profile is Profile.IEC_2022_STRICT:
            _check_strict(elem)
        try:
            return configuration_from_xml(elem)
        except ConfigurationError:
            raise generic_fault("ter:InvalidArgs") from None

    # ----------------------------------------------------------------- operations

    def get_uplinks(self) -> list[UplinkConfiguration]:
        """Every configuration with its live ``Status`` and ``Error`` (CFG-2, CFG-3, CFG-R4)."""
        result = []
        for address, config in self._entries.items():
            status, error = self._live_status(address)
            result.append(attrs.evolve(config, status=status, error=error))
        return result

    def set_uplink(self, config: UplinkConfiguration) -> ConfigurationChange | None:
        """Create or replace the entry keyed by ``config.remote_address`` (CFG-4..8, CFG-R5..R8).

        Raises the :class:`SoapFault` of config-service.md section 4, checked
        in the order of CFG-R11.  Returns the change, or ``None`` when the
        stored entry already equals ``config`` (nothing to persist or restart).
        """
        config = config.without_runtime()  # CFG-5, CFG-R5: Status and Error are ignored
        self._check_new(config)
        key = config.remote_address
        previous = self._entries.get(key)
        if previous == config:
            return None
        kind = ChangeKind.CREATED if previous is None else ChangeKind.UPDATED
        self._entries[key] = config  # an update keeps its creation position
        change = ConfigurationChange(kind, key, previous, config, self.configurations)
        try:
            self._notify(change)
        except SoapFault:
            if previous is None:
                del self._entries[key]
            else:
                self._entries[key] = previous
            raise
        return change

    def delete_uplink(self, remote_address: str) -> ConfigurationChange:
        """Remove the entry keyed by ``remote_address`` (CFG-10) or raise CFG-19's fault."""
        previous = self._entries.get(remote_address)
        if previous is None:
            raise SoapFault(
                "env:Sender",
                ("ter:InvalidArgVal", "ter:Address"),
                "RemoteAddress matches no stored uplink configuration",
            )
        snapshot = dict(self._entries)
        del self._entries[remote_address]
        change = ConfigurationChange(
            ChangeKind.DELETED, remote_address, previous, None, self.configurations
        )
        try:
            self._notify(change)
        except SoapFault:
            self._entries = snapshot
            raise
        return change

    def _notify(self, change: ConfigurationChange) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(change)
        except SoapFault:  # the listener's own precise refusal (it chose what to disclose)
            raise
        except Exception:  # persisting failed: roll back, answer without details (CFG-28)
            raise generic_fault("ter:Action") from None

    def _check_new(self, config: UplinkConfiguration) -> None:
        # (2) scheme offered? (CFG-16, UPL-R1: case-insensitive; strict: https only)
        match = _SCHEME.match(config.remote_address)
        scheme = match.group(1).lower() if match else None
        if scheme is None or scheme not in self._protocols:
            raise SoapFault(
                "env:Sender",
                ("ter:InvalidArgs", "ter:ProtocolNotSupported"),
                f"RemoteAddress scheme {scheme!r} is not supported by this device"
                if scheme
                else "RemoteAddress has no URI scheme",
            )
        if not _has_host(config.remote_address):
            raise SoapFault(
                "env:Sender", ("ter:InvalidArgVal",), "RemoteAddress names no host"
            )
        problem = uri_syntax_problem(config.remote_address)
        if problem is not None:  # refused now, not failing on every attempt later
            raise SoapFault("env:Sender", ("ter:InvalidArgVal",), f"RemoteAddress: {problem}")
        # (3) exactly one authentication element (CFG-7, CFG-17, CFG-18)
        has_cert = config.certificate_id is not None
        has_as = config.authorization_server is not None
        if has_cert and has_as:
            raise SoapFault(
                "env:Sender",
                ("ter:InvalidArgs", "ter:AmbiguousAuthentication"),
                "CertificateID and AuthorizationServer must not both be given",
            )
        if not has_cert and not has_as:
            raise SoapFault(
                "env:Sender",
                ("ter:InvalidArgs", "ter:MissingAuthentication"),
                "either CertificateID or AuthorizationServer is required",
            )
        modes = self._modes
        # (4) certificate (CFG-13)
        if config.certificate_id is not None and (
            "mTLS" not in modes or not self._lookup("has_certificate", config.certificate_id)
        ):
            raise SoapFault(
                "env:Sender",
                ("ter:InvalidArgVal", "ter:CertificateID"),
                "CertificateID names no usable certificate",
            )
        # (5) authorization server (CFG-15)
        if config.authorization_server is not None and (
            "AccessToken" not in modes
            or not self._lookup("has_authorization_server", config.authorization_server)
        ):
            raise SoapFault(
                "env:Sender",
                ("ter:InvalidArgVal", "ter:AuthorizationServerConfigurationToken"),
                "AuthorizationServer names no usable authorization server configuration",
            )
        # (6) validation policy (CFG-14)
        policy_id = config.cert_path_validation_policy_id
        if policy_id is not None and not self._lookup("has_validation_policy", policy_id):
            raise SoapFault(
                "env:Sender",
                ("ter:InvalidArgVal", "ter:CertPathValidationPolicyID"),
                "CertPathValidationPolicyID names no stored policy",
            )
        # (7) user level (CFG-R8, CFG-32, CFG-35)
        levels = config.user_level
        if not levels or not all(self._valid_level(item) for item in levels):
            raise SoapFault(
                "env:Sender", ("ter:InvalidArgVal",), "UserLevel holds an unacceptable item"
            )
        # (8) capacity (CFG-11, CFG-R7)
        limit = self._capabilities.max_uplinks
        if (
            limit is not None
            and config.remote_address not in self._entries
            and len(self._entries) >= limit
        ):
            raise SoapFault(
                "env:Receiver", ("ter:Action",), "MaxUplinks configurations already exist"
            )

    def _valid_level(self, item: str) -> bool:
        if self._profile is Profile.IEC_2022_STRICT:
            return item in _IEC_ALLOWED_LEVELS
        return self._policy.valid_uplink_level(item)

    def _lookup(self, method: str, value: str) -> bool:
        if self._security is None:
            return True
        try:
            return bool(getattr(self._security, method)(value))
        except Exception:  # a device callback failed: report, do not leak (CFG-28)
            raise generic_fault("ter:Action") from None


_GET_UPLINKS_OPEN: Final = b'<tup:GetUplinksResponse xmlns:tup="' + TUP.encode() + b'">'
_GET_UPLINKS_CLOSE: Final = b"</tup:GetUplinksResponse>"
_STATUS_XML: Final = {
    status: b"<tup:Status>" + status.value.encode() + b"</tup:Status>" for status in Status
}
_EMPTY_RESPONSE: Final = {
    name: f'<tup:{name}Response xmlns:tup="{TUP}"/>'.encode()
    for name in ("SetUplink", "DeleteUplink")
}
_STATUS_MARK: Final = "uplink62676-status"
_ERROR_MARK: Final = "uplink62676-error"


def _fragments(config: UplinkConfiguration) -> tuple[bytes, bytes, bytes]:
    """Serialize ``config`` around the Status and Error positions (schema order).

    The element is built by :func:`configuration_to_xml` with placeholder
    processing instructions where Status and Error go; splitting the bytes
    there gives the three constant parts.  (Stored text cannot contain a
    processing instruction: it would be escaped.)
    """
    elem = configuration_to_xml(attrs.evolve(config, status=Status.OFFLINE, error=""))
    for child in list(elem):
        if child.tag == _tup("Status"):
            elem.replace(child, etree.ProcessingInstruction(_STATUS_MARK))
        elif child.tag == _tup("Error"):
            elem.replace(child, etree.ProcessingInstruction(_ERROR_MARK))
    data = etree.tostring(elem, encoding="UTF-8", xml_declaration=False)
    head, _, rest = data.partition(etree.tostring(etree.ProcessingInstruction(_STATUS_MARK)))
    middle, _, tail = rest.partition(etree.tostring(etree.ProcessingInstruction(_ERROR_MARK)))
    return head, middle, tail


def _escape(text: str) -> bytes:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\r", "&#13;").encode()
    )


def _has_host(address: str) -> bool:
    try:
        return bool(urllib.parse.urlsplit(address).hostname)
    except ValueError:
        return False


def _expect_empty(request: etree._Element) -> None:
    if any(isinstance(c.tag, str) for c in request):
        raise generic_fault("ter:InvalidArgs")


_STRICT_REFUSED: Final = frozenset(
    {_tup("CertPathValidationPolicyID"), _tup("AuthorizationServer"), _tup("Error")}
)


def _check_strict(elem: etree._Element) -> None:
    """CFG-R13: IEC-2022 schema: CertificateID required, one UserLevel, no later elements."""
    seen_cert = False
    for child in elem:
        if child.tag in _STRICT_REFUSED:
            raise generic_fault("ter:InvalidArgs")
        if child.tag == _tup("CertificateID"):
            seen_cert = True
        if child.tag == _tup("UserLevel") and len((child.text or "").split()) != 1:
            raise generic_fault("ter:InvalidArgs")
    if not seen_cert:
        raise generic_fault("ter:InvalidArgs")


def _read_delete_uplink(request: etree._Element) -> str:
    children = [c for c in request if isinstance(c.tag, str)]
    if len(children) != 1 or children[0].tag != _tup("RemoteAddress") or len(children[0]):
        raise generic_fault("ter:InvalidArgs")
    address = " ".join((children[0].text or "").split())  # CFG-R6: xs:anyURI collapsing
    if not address:
        raise generic_fault("ter:InvalidArgs")
    return address
