"""The device-management service a stock ONVIF client calls first (core-device.md §2, DEV- IDs).

Sans-I/O: SOAP bytes, the request origin and ``now`` in, a
:class:`~uplink62676.soap.SoapResponse` out.  :class:`DeviceService` answers
GetSystemDateAndTime, GetCapabilities, GetServices, GetServiceCapabilities,
GetDeviceInformation, GetScopes, GetWsdlUrl, GetHostname and
GetNetworkInterfaces; anything else gets ``ter:ActionNotSupported``.

Every absolute URI is built from the origin the request came through
(``:scheme`` + ``:authority`` over an uplink), so a client that follows the
XAddrs comes back the same way (DEV-29, DEV-R14, UPL-59, UPL-R21).
:func:`access_class` exposes the access class of every device-service
operation (DEV-28) for a front door that lets ``PRE_AUTH`` calls through
without credentials (DEV-3).

:func:`handle_device_service` is the older GetServices-only entry point,
kept for hosts without a :class:`DeviceService`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

import attrs
from lxml import etree

from ..errors import ConfigurationError, LocalProtocolError, SoapFault
from ..namespaces import TDS, TEV, TRT, TT
from ..soap import Envelope, SoapResponse, generic_fault, handle_request
from .access import DEFAULT_POLICY, AccessClass, AccessPolicy

__all__ = [
    "DEVICE_SERVICE_PATH",
    "EVENTS_SERVICE_PATH",
    "MEDIA2_SERVICE_PATH",
    "MEDIA_SERVICE_PATH",
    "SPEC_VERSION",
    "UPLINK_SERVICE_PATH",
    "DeviceInformation",
    "DeviceService",
    "NetworkInterface",
    "Scope",
    "ServiceEntry",
    "access_class",
    "get_services_body",
    "handle_device_service",
    "origin_base",
    "origin_host",
]

#: Where the device service answers (DEV-1).
DEVICE_SERVICE_PATH: Final = "/onvif/device_service"
#: Conventional paths of the other services a device announces in GetServices.
EVENTS_SERVICE_PATH: Final = "/onvif/events_service"
MEDIA_SERVICE_PATH: Final = "/onvif/media_service"
MEDIA2_SERVICE_PATH: Final = "/onvif/media2_service"
UPLINK_SERVICE_PATH: Final = "/onvif/uplink_service"

#: Specification version announced by default (26.06: major 26, minor = month, DEV-7).
SPEC_VERSION: Final = (26, 6)

#: GetWsdlUrl's fixed answer (DEV-12, DEV-R4).
WSDL_URL: Final = "http://www.onvif.org/"

_PRE_AUTH_OPS: Final = ("GetWsdlUrl", "GetServices", "GetServiceCapabilities", "GetCapabilities",
                        "GetHostname", "GetSystemDateAndTime", "GetEndpointReference")
_READ_SYSTEM_OPS: Final = (
    "GetDeviceInformation", "GetScopes", "GetNetworkInterfaces", "GetDNS", "GetNTP",
    "GetDynamicDNS", "GetNetworkProtocols", "GetNetworkDefaultGateway", "GetZeroConfiguration",
    "GetIPAddressFilter", "GetDot11Capabilities", "GetDot11Status", "ScanAvailableDot11Networks",
    "GetSystemUris", "GetDiscoveryMode", "GetGeoLocation", "GetRemoteUser", "GetUserRoles",
    "GetPasswordComplexityOptions", "GetPasswordComplexityConfiguration",
    "GetPasswordHistoryConfiguration", "GetAuthFailureWarningOptions",
    "GetAuthFailureWarningConfiguration")
_SECRET_OPS: Final = ("GetSystemBackup", "GetSystemLog", "GetSystemSupportInformation",
                      "GetAccessPolicy", "GetUsers")
_WRITE_OPS: Final = (
    "SetHostname", "SetHostnameFromDHCP", "SetDNS", "SetNTP", "SetDynamicDNS",
    "SetNetworkInterfaces", "SetNetworkProtocols", "SetNetworkDefaultGateway",
    "SetZeroConfiguration", "SetIPAddressFilter", "AddIPAddressFilter", "RemoveIPAddressFilter",
    "SetSystemDateAndTime", "SetScopes", "AddScopes", "RemoveScopes", "SetDiscoveryMode",
    "SetGeoLocation", "DeleteGeoLocation", "SetAccessPolicy", "CreateUsers", "DeleteUsers",
    "SetUser", "SetRemoteUser", "SetUserRole", "DeleteUserRole",
    "SetPasswordComplexityConfiguration", "SetPasswordHistoryConfiguration",
    "SetAuthFailureWarningConfiguration", "SetHashingAlgorithm")
_UNRECOVERABLE_OPS: Final = ("RestoreSystem", "StartSystemRestore", "SetSystemFactoryDefault",
                             "StartFirmwareUpgrade", "UpgradeFirmware", "SystemReboot")
_READ_MEDIA_OPS: Final = ("GetRelayOutputs", "GetStorageConfigurations",
                          "GetStorageConfiguration")
_ACTUATE_OPS: Final = ("SetRelayOutputSettings", "SetRelayOutputState", "SendAuxiliaryCommand",
                       "CreateStorageConfiguration", "SetStorageConfiguration",
                       "DeleteStorageConfiguration")

#: Device-service operation (local name) -> access class (DEV-28, core-device.md §4).
ACCESS_CLASSES: Final[Mapping[str, AccessClass]] = MappingProxyType({
    **dict.fromkeys(_PRE_AUTH_OPS, AccessClass.PRE_AUTH),
    **dict.fromkeys(_READ_SYSTEM_OPS, AccessClass.READ_SYSTEM),
    **dict.fromkeys(_SECRET_OPS, AccessClass.READ_SYSTEM_SECRET),
    **dict.fromkeys(_WRITE_OPS, AccessClass.WRITE_SYSTEM),
    **dict.fromkeys(_UNRECOVERABLE_OPS, AccessClass.UNRECOVERABLE),
    **dict.fromkeys(_READ_MEDIA_OPS, AccessClass.READ_MEDIA),
    **dict.fromkeys(_ACTUATE_OPS, AccessClass.ACTUATE),
})


def access_class(operation: str) -> str:
    """The access class name (``'PRE_AUTH'``, ``'READ_SYSTEM'`` ...) of a device-service operation.

    ``operation`` is a local name (``'GetSystemDateAndTime'``) or a Clark name.
    Operations without a class in CORE get the strictest reading of DEV-R13:
    ``READ_SYSTEM_SECRET`` for ``Get…``, ``UNRECOVERABLE`` for everything else.
    """
    local = operation.rpartition("}")[2]
    cls = ACCESS_CLASSES.get(local)
    if cls is None:
        cls = AccessClass.READ_SYSTEM_SECRET if local.startswith("Get") else (
            AccessClass.UNRECOVERABLE)
    return cls.value


# --------------------------------------------------------------------------- origin


def origin_base(scheme: str | None, authority: str | None) -> str:
    """``scheme://authority`` of the request origin (DEV-R14, UPL-59); default https://localhost."""
    return f"{(scheme or 'https').lower()}://{authority or 'localhost'}"


def origin_host(authority: str | None) -> str:
    """The host of an authority without its port; IPv6 keeps its brackets (``[::1]:8443``)."""
    auth = (authority or "localhost").rpartition("@")[2]
    if auth.startswith("["):
        end = auth.find("]")
        return auth[: end + 1] if end > 0 else auth
    return auth.partition(":")[0] or "localhost"


# --------------------------------------------------------------------------- values


@attrs.frozen(slots=True)
class Scope:
    """One discovery scope (``tt:Scope``): the URI and whether it is fixed (DEV-11)."""

    item: str
    fixed: bool = True


@attrs.frozen(slots=True)
class NetworkInterface:
    """A minimal ``tt:NetworkInterface`` (DEV-14): name, MAC, MTU and one IPv4 address."""

    token: str = "eth0"  # noqa: S105 - a reference token, not a secret
    hw_address: str = "00:00:00:00:00:00"
    ipv4_address: str | None = None
    prefix_length: int = 24
    dhcp: bool = False
    mtu: int = 1500
    enabled: bool = True


def _scope_tuple(value: Iterable[Scope]) -> tuple[Scope, ...]:
    return tuple(value)


def _nic_tuple(value: Iterable[NetworkInterface]) -> tuple[NetworkInterface, ...]:
    return tuple(value)


def _default_scopes(info: DeviceInformation) -> tuple[Scope, ...]:
    name = (info.hostname or info.model).replace(" ", "_")
    return (Scope("onvif://www.onvif.org/Profile/Streaming"),
            Scope(f"onvif://www.onvif.org/hardware/{info.model.replace(' ', '_')}"),
            Scope(f"onvif://www.onvif.org/name/{name}"))


@attrs.frozen(slots=True)
class DeviceInformation:
    """What the device says about itself: GetDeviceInformation, GetScopes, GetHostname,
    GetNetworkInterfaces, GetSystemDateAndTime's time zone (DEV-10, DEV-11, DEV-13, DEV-14).

    ``scopes`` defaults to the three fixed entries DEV-11 requires (Profile,
    hardware = model, name = hostname or model); ``timezone`` is a POSIX TZ string.
    """

    manufacturer: str = attrs.field(default="uplink62676", converter=str)
    model: str = attrs.field(default="Simulated VSS", converter=str)
    firmware_version: str = attrs.field(default="1.0", converter=str)
    serial_number: str = attrs.field(default="0", converter=str)
    hardware_id: str = attrs.field(default="sim", converter=str)
    hostname: str = attrs.field(default="", converter=str)
    from_dhcp: bool = False
    scopes: tuple[Scope, ...] = attrs.field(converter=_scope_tuple)
    network_interfaces: tuple[NetworkInterface, ...] = attrs.field(
        default=(NetworkInterface(),), converter=_nic_tuple)
    timezone: str = "UTC0"
    ntp: bool = False

    @scopes.default
    def _scopes_default(self) -> tuple[Scope, ...]:
        return _default_scopes(self)

    def __attrs_post_init__(self) -> None:
        for scope in self.scopes:
            if not isinstance(scope, Scope):
                raise ConfigurationError(f"scopes must hold Scope values, got {scope!r}")
        for nic in self.network_interfaces:
            if not isinstance(nic, NetworkInterface):
                raise ConfigurationError(
                    f"network_interfaces must hold NetworkInterface values, got {nic!r}")
        if not self.scopes:
            raise ConfigurationError("GetScopes needs at least one scope (DEV-11)")


#: Builds a service's capabilities element for GetServices with IncludeCapability (DEV-7).
CapabilitiesProvider = Callable[[], etree._Element]


@attrs.frozen(slots=True)
class ServiceEntry:
    """A service announced by GetServices: namespace, path below the origin, version (DEV-7).

    ``capabilities`` returns the service's own ``Capabilities`` element
    (``tev:Capabilities``, ``tr2:Capabilities`` …) for ``IncludeCapability``;
    without one the entry carries none.
    """

    namespace: str = attrs.field(converter=str)
    path: str = attrs.field(converter=str)
    version: tuple[int, int] = SPEC_VERSION
    capabilities: CapabilitiesProvider | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ConfigurationError(f"service path {self.path!r} must start with '/'")


# --------------------------------------------------------------------------- XML helpers


def _sub(parent: etree._Element, tag: str, text: str | None = None,
         **attrib: str) -> etree._Element:
    e = etree.SubElement(parent, tag, attrib)
    if text is not None:
        e.text = text
    return e


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _parse_bool(text: str | None, default: bool) -> bool:
    """An ``xs:boolean`` value; ``ter:InvalidArgVal`` when it is none."""
    if text is None:
        return default
    value = text.strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise generic_fault("ter:InvalidArgVal")


_CATEGORIES: Final = ("All", "Analytics", "Device", "Events", "Imaging", "Media", "PTZ")

_T = "{" + TT + "}"
_D = "{" + TDS + "}"


def _no_such_service() -> SoapFault:
    return SoapFault("env:Receiver", ("ter:ActionNotSupported", "ter:NoSuchService"),
                     "The requested service category is not supported")


class DeviceService:
    """The device service of one device (core-device.md §2): ``handle`` one request at a time.

    ``services`` are announced after the device service's own entry, which
    is always first; the Events and Media categories of GetCapabilities are
    present when a ``tev`` / ``trt`` entry is (DEV-5, DEV-6).
    ``username_token``/``http_digest``/``hashing_algorithms`` fill the
    Security capabilities (DEV-9, DEV-R3); ``policy`` checks ``requester``.
    """

    def __init__(self, info: DeviceInformation | None = None,
                 services: Sequence[ServiceEntry] = (), *,
                 version: tuple[int, int] = SPEC_VERSION, username_token: bool = False,
                 http_digest: bool = False, hashing_algorithms: Sequence[str] = ("MD5",),
                 policy: AccessPolicy = DEFAULT_POLICY) -> None:
        self.info = info if info is not None else DeviceInformation()
        if not isinstance(self.info, DeviceInformation):
            raise ConfigurationError(f"info must be DeviceInformation, got {self.info!r}")
        own = ServiceEntry(TDS, DEVICE_SERVICE_PATH, version, self.service_capabilities)
        extra = tuple(services)
        for entry in extra:
            if not isinstance(entry, ServiceEntry):
                raise ConfigurationError(f"services must hold ServiceEntry values, got {entry!r}")
            if entry.namespace == TDS:
                raise ConfigurationError("the device service's own entry is added automatically")
        namespaces = [e.namespace for e in extra]
        if len(set(namespaces)) != len(namespaces):
            raise ConfigurationError("one GetServices entry per namespace (DEV-7)")
        self.services: tuple[ServiceEntry, ...] = (own, *extra)
        self.username_token = username_token
        self.http_digest = http_digest
        self.hashing_algorithms = tuple(hashing_algorithms)
        self.policy = policy
        self._handlers: Mapping[str, Callable[[etree._Element, str, float], etree._Element]] = {
            "GetSystemDateAndTime": self._date_and_time,
            "GetCapabilities": self._capabilities,
            "GetServices": self._services,
            "GetServiceCapabilities": lambda _b, _o, _n: self._wrap(
                "GetServiceCapabilitiesResponse", self.service_capabilities()),
            "GetDeviceInformation": self._device_information,
            "GetScopes": self._scopes,
            "GetWsdlUrl": self._wsdl_url,
            "GetHostname": self._hostname,
            "GetNetworkInterfaces": self._network_interfaces,
        }

    def entry(self, namespace: str) -> ServiceEntry | None:
        """The announced service of ``namespace``, if any."""
        return next((e for e in self.services if e.namespace == namespace), None)

    # ------------------------------------------------------------------ requests

    def handle(self, body: bytes, content_type: str | None, *, now: float,
               scheme: str | None, authority: str | None,
               requester: str | Sequence[str] | None = None) -> SoapResponse:
        """Answer one request; ``now`` is wall-clock epoch seconds (GetSystemDateAndTime).

        ``scheme``/``authority`` are the request origin every XAddr is built from
        (DEV-R14); ``requester`` the user level / roles for the access check
        (DEV-28; ``None``: the caller authorized the request already).  A ``now`` no
        calendar can show raises :class:`~uplink62676.errors.LocalProtocolError`.
        """
        base = origin_base(scheme, authority)

        def dispatch(envelope: Envelope) -> etree._Element:
            op = envelope.operation
            namespace, _, local = op[1:].partition("}")
            handler = self._handlers.get(local) if namespace == TDS else None
            if handler is None:
                raise generic_fault("ter:ActionNotSupported")
            if requester is not None:
                self.policy.check(requester, AccessClass(access_class(local)))
            return handler(envelope.body, base, now)

        return handle_request(body, content_type, dispatch)

    # ------------------------------------------------------------------ operations

    @staticmethod
    def _wrap(name: str, child: etree._Element) -> etree._Element:
        resp = etree.Element(_D + name, nsmap={"tds": TDS, "tt": TT})
        resp.append(child)
        return resp

    def _date_and_time(self, _body: etree._Element, _base: str, now: float) -> etree._Element:
        """DEV-4: ``tt:SystemDateTime`` with ``UTCDateTime`` (time before date, §2.1)."""
        try:
            utc = datetime.datetime.fromtimestamp(now, datetime.UTC)
        except (OverflowError, ValueError, OSError):
            raise LocalProtocolError(f"now={now!r} is not a wall-clock time in epoch seconds"
                                     ) from None
        resp = etree.Element(_D + "GetSystemDateAndTimeResponse", nsmap={"tds": TDS, "tt": TT})
        sdt = _sub(resp, _D + "SystemDateAndTime")
        _sub(sdt, _T + "DateTimeType", "NTP" if self.info.ntp else "Manual")
        _sub(sdt, _T + "DaylightSavings", "false")
        _sub(_sub(sdt, _T + "TimeZone"), _T + "TZ", self.info.timezone)
        dt = _sub(sdt, _T + "UTCDateTime")
        t = _sub(dt, _T + "Time")
        _sub(t, _T + "Hour", str(utc.hour))
        _sub(t, _T + "Minute", str(utc.minute))
        _sub(t, _T + "Second", str(utc.second))
        d = _sub(dt, _T + "Date")
        _sub(d, _T + "Year", str(utc.year))
        _sub(d, _T + "Month", str(utc.month))
        _sub(d, _T + "Day", str(utc.day))
        return resp

    def _capabilities(self, body: etree._Element, base: str, _now: float) -> etree._Element:
        """DEV-5, DEV-6: the legacy categories Device, Events, Media, in schema order."""
        asked: set[str] = set()
        for cat in body.iter(_D + "Category"):
            value = (cat.text or "").strip()
            if value not in _CATEGORIES:
                raise generic_fault("ter:InvalidArgVal")
            asked.add(value)
        events, media = self.entry(TEV), self.entry(TRT)
        have = {"Device"} | ({"Events"} if events else set()) | ({"Media"} if media else set())
        if not asked or "All" in asked:
            asked = have
        elif asked - have:
            raise _no_such_service()
        resp = etree.Element(_D + "GetCapabilitiesResponse", nsmap={"tds": TDS, "tt": TT})
        caps = _sub(resp, _D + "Capabilities")
        if "Device" in asked:
            dev = _sub(caps, _T + "Device")
            _sub(dev, _T + "XAddr", base + DEVICE_SERVICE_PATH)
        if "Events" in asked and events is not None:
            ev = _sub(caps, _T + "Events")
            _sub(ev, _T + "XAddr", base + events.path)
            _sub(ev, _T + "WSSubscriptionPolicySupport", "false")
            _sub(ev, _T + "WSPullPointSupport", "true")
            _sub(ev, _T + "WSPausableSubscriptionManagerInterfaceSupport", "false")
        if "Media" in asked and media is not None:
            me = _sub(caps, _T + "Media")
            _sub(me, _T + "XAddr", base + media.path)
            sc = _sub(me, _T + "StreamingCapabilities")
            _sub(sc, _T + "RTPMulticast", "false")
            _sub(sc, _T + "RTP_TCP", "false")
            _sub(sc, _T + "RTP_RTSP_TCP", "true")
        return resp

    def _services(self, body: etree._Element, base: str, _now: float) -> etree._Element:
        """DEV-7: one ``tds:Service`` per namespace, XAddrs under the request origin."""
        include = _parse_bool(body.findtext(_D + "IncludeCapability"), False)
        resp = etree.Element(_D + "GetServicesResponse", nsmap={"tds": TDS, "tt": TT})
        for entry in self.services:
            svc = _sub(resp, _D + "Service")
            _sub(svc, _D + "Namespace", entry.namespace)
            _sub(svc, _D + "XAddr", base + entry.path)
            if include and entry.capabilities is not None:
                _sub(svc, _D + "Capabilities").append(entry.capabilities())
            version = _sub(svc, _D + "Version")
            _sub(version, _T + "Major", str(entry.version[0]))
            _sub(version, _T + "Minor", str(entry.version[1]))
        return resp

    def service_capabilities(self) -> etree._Element:
        """``tds:Capabilities`` (``tds:DeviceServiceCapabilities``, DEV-8, DEV-9, DEV-R3)."""
        caps = etree.Element(_D + "Capabilities", nsmap={"tds": TDS})
        _sub(caps, _D + "Network", IPFilter="false", ZeroConfiguration="false",
             IPVersion6="false", DynDNS="false", Dot11Configuration="false",
             HostnameFromDHCP="false", NTP="0")
        security = _sub(caps, _D + "Security", UsernameToken=_bool(self.username_token),
                        HttpDigest=_bool(self.http_digest), DefaultAccessPolicy="true",
                        AccessPolicyConfig="false", MaxUserRoles="0")
        if self.hashing_algorithms:
            security.set("HashingAlgorithms", " ".join(self.hashing_algorithms))
        _sub(caps, _D + "System", DiscoveryResolve="false", DiscoveryBye="false",
             RemoteDiscovery="false", SystemBackup="false", SystemLogging="false",
             HttpFirmwareUpgrade="false", HttpSystemBackup="false", HttpSystemLogging="false",
             HttpSupportInformation="false")
        return caps

    def _device_information(self, _body: etree._Element, _base: str,
                            _now: float) -> etree._Element:
        """DEV-10: the five strings in order."""
        info = self.info
        resp = etree.Element(_D + "GetDeviceInformationResponse", nsmap={"tds": TDS})
        for name, value in (("Manufacturer", info.manufacturer), ("Model", info.model),
                            ("FirmwareVersion", info.firmware_version),
                            ("SerialNumber", info.serial_number),
                            ("HardwareId", info.hardware_id)):
            _sub(resp, _D + name, value)
        return resp

    def _scopes(self, _body: etree._Element, _base: str, _now: float) -> etree._Element:
        """DEV-11: ``tds:Scopes`` items of ``tt:ScopeDef`` + ``tt:ScopeItem``."""
        resp = etree.Element(_D + "GetScopesResponse", nsmap={"tds": TDS, "tt": TT})
        for scope in self.info.scopes:
            item = _sub(resp, _D + "Scopes")
            _sub(item, _T + "ScopeDef", "Fixed" if scope.fixed else "Configurable")
            _sub(item, _T + "ScopeItem", scope.item)
        return resp

    def _wsdl_url(self, _body: etree._Element, _base: str, _now: float) -> etree._Element:
        """DEV-12, DEV-R4: a fixed URL, not under the origin."""
        resp = etree.Element(_D + "GetWsdlUrlResponse", nsmap={"tds": TDS})
        _sub(resp, _D + "WsdlUrl", WSDL_URL)
        return resp

    def _hostname(self, _body: etree._Element, _base: str, _now: float) -> etree._Element:
        """DEV-13, DEV-R5: ``FromDHCP`` and ``Name`` (empty when none is assigned)."""
        resp = etree.Element(_D + "GetHostnameResponse", nsmap={"tds": TDS, "tt": TT})
        info = _sub(resp, _D + "HostnameInformation")
        _sub(info, _T + "FromDHCP", _bool(self.info.from_dhcp))
        _sub(info, _T + "Name", self.info.hostname or None)  # <tt:Name/> when empty
        return resp

    def _network_interfaces(self, _body: etree._Element, _base: str,
                            _now: float) -> etree._Element:
        """DEV-14, DEV-R6: the device's interfaces (at least one)."""
        resp = etree.Element(_D + "GetNetworkInterfacesResponse", nsmap={"tds": TDS, "tt": TT})
        for nic in self.info.network_interfaces:
            item = _sub(resp, _D + "NetworkInterfaces", token=nic.token)
            _sub(item, _T + "Enabled", _bool(nic.enabled))
            info = _sub(item, _T + "Info")
            _sub(info, _T + "Name", nic.token)
            _sub(info, _T + "HwAddress", nic.hw_address)
            _sub(info, _T + "MTU", str(nic.mtu))
            if nic.ipv4_address is not None:
                ipv4 = _sub(item, _T + "IPv4")
                _sub(ipv4, _T + "Enabled", "true")
                config = _sub(ipv4, _T + "Config")
                addr = _sub(config, _T + ("FromDHCP" if nic.dhcp else "Manual"))
                _sub(addr, _T + "Address", nic.ipv4_address)
                _sub(addr, _T + "PrefixLength", str(nic.prefix_length))
                _sub(config, _T + "DHCP", _bool(nic.dhcp))
        return resp


# --------------------------------------------------------------------------- GetServices only


def get_services_body(base: str, events_path: str) -> etree._Element:
    """``tds:GetServicesResponse`` naming the device and event services under ``base``."""
    resp = etree.Element(f"{{{TDS}}}GetServicesResponse", nsmap={"tds": TDS})
    for namespace, path, (major, minor) in ((TDS, DEVICE_SERVICE_PATH, (2, 6)),
                                            (TEV, events_path, (2, 6))):
        svc = etree.SubElement(resp, f"{{{TDS}}}Service")
        etree.SubElement(svc, f"{{{TDS}}}Namespace").text = namespace
        etree.SubElement(svc, f"{{{TDS}}}XAddr").text = base + path
        version = etree.SubElement(svc, f"{{{TDS}}}Version")
        etree.SubElement(version, f"{{{TDS}}}Major").text = str(major)
        etree.SubElement(version, f"{{{TDS}}}Minor").text = str(minor)
    return resp


def handle_device_service(body: bytes, content_type: str | None, *, scheme: str | None,
                          authority: str | None, events_path: str) -> SoapResponse:
    """Answer one device-service request: GetServices, or ``ter:ActionNotSupported``.

    The minimal device service of a host that has no :class:`DeviceService`.
    """
    base = f"{scheme or 'https'}://{authority or 'localhost'}"

    def dispatch(envelope: Envelope) -> etree._Element:
        if envelope.operation != f"{{{TDS}}}GetServices":
            raise generic_fault("ter:ActionNotSupported")
        return get_services_body(base, events_path)

    return handle_request(body, content_type, dispatch)

