"""uplink62676: IEC 62676-2-33 (ONVIF Uplink and Resource Query), sans-I/O.

This package exports the sans-I/O API only: values, codecs, state machines
and services, which take bytes and ``now`` and give bytes and events back.
Importing it loads no ``ssl``, ``socket``, ``asyncio``, ``threading``,
``selectors`` or ``tempfile``.  What does I/O lives apart: the adapters
:mod:`uplink62676.aio` (asyncio) and :mod:`uplink62676.threaded` (blocking
sockets), their helpers in :mod:`uplink62676.io` (TLS contexts, certificates,
the configuration store) and the applications in :mod:`uplink62676.app`.
See the documentation for the three audiences (firmware teams, cloud/VMS
builders, integrators).
"""

from __future__ import annotations

from . import events
from .adaption import AdaptionResult, TokenAdapter, adapt_request, adapt_response
from .agent import (
    CancelHandler,
    CloseTransport,
    EndBody,
    FeedBody,
    PingAnswered,
    RequestHead,
    StartHandler,
    UplinkKeeper,
    UplinkSession,
    Wake,
)
from .clientauth import (
    Allowed,
    Challenge,
    ClientAuthenticator,
    ClientAuthSettings,
    Decision,
    PreAuth,
    SoapNotAuthorized,
    without_credentials,
)
from .cloudauth import (
    Accept,
    AuthDecision,
    Authenticator,
    AuthMethod,
    Refuse,
    UpgradeContext,
    ValidateToken,
)
from .config import Capabilities, Status, UplinkConfiguration
from .deviceid import DeviceId
from .deviceregistry import DeviceInfo, DeviceRegistry, InMemoryDeviceRegistry
from .errors import (
    AuthenticationError,
    ConfigStoreError,
    ConfigurationError,
    CorruptStoreError,
    InvalidDeviceIdError,
    InvalidTokenError,
    LocalProtocolError,
    NotificationFault,
    OAuthError,
    RemoteProtocolError,
    SoapFault,
    TransportError,
    UplinkError,
    UsersFileError,
    XmlRejectedError,
)
from .events import (
    Connected,
    ConnectionTerminated,
    DataReceived,
    Event,
    InformationalResponseReceived,
    LinkLost,
    PingAcknowledged,
    RequestReceived,
    ResponseReceived,
    StatusChanged,
    StreamEnded,
    StreamReset,
    StreamWritable,
    TrailersReceived,
    UpgradeAccepted,
    UpgradeRefused,
    UpgradeRequested,
)
from .framelimits import FrameGuard
from .frontdoor import (
    FrontDoorConnection,
    FrontDoorSettings,
    PathRouter,
    RequestRouted,
    Route,
    RouteKind,
    Router,
)
from .handshake import RemoteAddress
from .httpauth import DigestSettings, DigestVerifier, parse_authorization
from .httpclient import Http1Client, ResponseBody, ResponseComplete, ResponseStarted
from .liveness import ReconnectSchedule
from .oauth import (
    AccessToken,
    AuthorizationServerSettings,
    ClientAuth,
    ClientCredentialsFlow,
)
from .origins import (
    ForwardedElement,
    Origin,
    PublicOrigin,
    forwarding_headers,
    parse_forwarded,
    public_origin,
    without_forwarding_headers,
)
from .query.client import Query, QueryClient, ResourceMirror
from .query.filters import ResourceFilter, compile_filter
from .query.pullpoint import PullPointManager, PullPointSettings
from .query.resources import (
    GeoLocation,
    Notification,
    PropertyOperation,
    Resource,
    ResourceRegistry,
)
from .services.access import AccessPolicy
from .services.device import (
    DeviceInformation,
    DeviceService,
    NetworkInterface,
    Scope,
    ServiceEntry,
    access_class,
)
from .services.events import EventService, EventServiceSettings, PendingResponse
from .services.media import MediaProfile, MediaService, media_access_class
from .services.uplink import (
    ConfigurationChange,
    Profile,
    StaticSecurityLookup,
    UplinkService,
)
from .services.uplink_client import UplinkServiceClient
from .settings import CloudSettings, DeviceSettings, FloodSettings, LivenessSettings
from .soap import (
    SoapRequest,
    SoapResponse,
    build_envelope,
    fault_response,
    parse_envelope,
    parse_fault,
    parse_response,
    soap_action,
)
from .tokenmap import TokenMapper
from .tokens import ReferenceToken, RemoteToken, TokenContext
from .tunnel import ErrorCode
from .uplink import (
    CLOUD_TRANSITIONS,
    DEVICE_TRANSITIONS,
    PHASE_STATUS,
    CloudUplink,
    DeviceUplink,
    Phase,
    Trigger,
)
from .urirewrite import RewriteResult, UriRewriter, UriRule, rewrite_soap_uris
from .users import User, Users, parse_users
from .websocket import SeededEntropy, WebSocketClosed, WebSocketSettings
from .wsse import UsernameTokenSettings, UsernameTokenVerifier, strip_security_headers

__version__ = "0.1.0"


_OLD_CLIENT_FUNCTIONS = frozenset({
    "build_get_service_capabilities",
    "build_get_uplinks",
    "build_set_uplink",
    "build_delete_uplink",
    "parse_get_service_capabilities_response",
    "parse_get_uplinks_response",
    "parse_set_uplink_response",
    "parse_delete_uplink_response",
})


def __getattr__(name: str) -> object:
    """Names that moved out of the sans-I/O package still resolve, with a DeprecationWarning."""
    from ._moved import MOVED_NAMES, RENAMED, moved_name, renamed

    if name in MOVED_NAMES:
        return moved_name(name)
    if name in _OLD_CLIENT_FUNCTIONS:
        from .services import uplink_client

        return getattr(uplink_client, name)
    for module, old in RENAMED:
        if old == name:
            return renamed(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CLOUD_TRANSITIONS",
    "DEVICE_TRANSITIONS",
    "PHASE_STATUS",
    "Accept",
    "AccessPolicy",
    "AccessToken",
    "AdaptionResult",
    "Allowed",
    "AuthDecision",
    "AuthMethod",
    "AuthenticationError",
    "Authenticator",
    "AuthorizationServerSettings",
    "CancelHandler",
    "Capabilities",
    "Challenge",
    "ClientAuth",
    "ClientAuthSettings",
    "ClientAuthenticator",
    "ClientCredentialsFlow",
    "CloseTransport",
    "CloudSettings",
    "CloudUplink",
    "ConfigStoreError",
    "ConfigurationChange",
    "ConfigurationError",
    "Connected",
    "ConnectionTerminated",
    "CorruptStoreError",
    "DataReceived",
    "Decision",
    "DeviceId",
    "DeviceInfo",
    "DeviceInformation",
    "DeviceRegistry",
    "DeviceService",
    "DeviceSettings",
    "DeviceUplink",
    "DigestSettings",
    "DigestVerifier",
    "EndBody",
    "ErrorCode",
    "Event",
    "EventService",
    "EventServiceSettings",
    "FeedBody",
    "FloodSettings",
    "ForwardedElement",
    "FrameGuard",
    "FrontDoorConnection",
    "FrontDoorSettings",
    "GeoLocation",
    "Http1Client",
    "InMemoryDeviceRegistry",
    "InformationalResponseReceived",
    "InvalidDeviceIdError",
    "InvalidTokenError",
    "LinkLost",
    "LivenessSettings",
    "LocalProtocolError",
    "MediaProfile",
    "MediaService",
    "NetworkInterface",
    "Notification",
    "NotificationFault",
    "OAuthError",
    "Origin",
    "PathRouter",
    "PendingResponse",
    "Phase",
    "PingAcknowledged",
    "PingAnswered",
    "PreAuth",
    "Profile",
    "PropertyOperation",
    "PublicOrigin",
    "PullPointManager",
    "PullPointSettings",
    "Query",
    "QueryClient",
    "ReconnectSchedule",
    "ReferenceToken",
    "Refuse",
    "RemoteAddress",
    "RemoteProtocolError",
    "RemoteToken",
    "RequestHead",
    "RequestReceived",
    "RequestRouted",
    "Resource",
    "ResourceFilter",
    "ResourceMirror",
    "ResourceRegistry",
    "ResponseBody",
    "ResponseComplete",
    "ResponseReceived",
    "ResponseStarted",
    "RewriteResult",
    "Route",
    "RouteKind",
    "Router",
    "Scope",
    "SeededEntropy",
    "ServiceEntry",
    "SoapFault",
    "SoapNotAuthorized",
    "SoapRequest",
    "SoapResponse",
    "StartHandler",
    "StaticSecurityLookup",
    "Status",
    "StatusChanged",
    "StreamEnded",
    "StreamReset",
    "StreamWritable",
    "TokenAdapter",
    "TokenContext",
    "TokenMapper",
    "TrailersReceived",
    "TransportError",
    "Trigger",
    "UpgradeAccepted",
    "UpgradeContext",
    "UpgradeRefused",
    "UpgradeRequested",
    "UplinkConfiguration",
    "UplinkError",
    "UplinkKeeper",
    "UplinkService",
    "UplinkServiceClient",
    "UplinkSession",
    "UriRewriter",
    "UriRule",
    "User",
    "UsernameTokenSettings",
    "UsernameTokenVerifier",
    "Users",
    "UsersFileError",
    "ValidateToken",
    "Wake",
    "WebSocketClosed",
    "WebSocketSettings",
    "XmlRejectedError",
    "__version__",
    "access_class",
    "adapt_request",
    "adapt_response",
    "build_envelope",
    "compile_filter",
    "events",
    "fault_response",
    "forwarding_headers",
    "media_access_class",
    "parse_authorization",
    "parse_envelope",
    "parse_fault",
    "parse_forwarded",
    "parse_response",
    "parse_users",
    "public_origin",
    "rewrite_soap_uris",
    "soap_action",
    "strip_security_headers",
    "without_credentials",
    "without_forwarding_headers",
]
