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

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names, for type checkers and readers; loaded lazily at run time
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
    from .clusterregistry import ClusterRegistry, Registration
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

#: Public name -> (module, attribute; None for a module).  ``import uplink62676`` loads
#: nothing of the library until a name is used: the protocol dependencies (h2's logging
#: starts ``threading``) load with the first state machine, not with the package.
_EXPORTS: dict[str, tuple[str, str | None]] = {
    "ClusterRegistry": ("uplink62676.clusterregistry", "ClusterRegistry"),
    "Registration": ("uplink62676.clusterregistry", "Registration"),
    "Accept": ("uplink62676.cloudauth", 'Accept'),
    "AccessPolicy": ("uplink62676.services.access", 'AccessPolicy'),
    "AccessToken": ("uplink62676.oauth", 'AccessToken'),
    "AdaptionResult": ("uplink62676.adaption", 'AdaptionResult'),
    "Allowed": ("uplink62676.clientauth", 'Allowed'),
    "AuthDecision": ("uplink62676.cloudauth", 'AuthDecision'),
    "AuthMethod": ("uplink62676.cloudauth", 'AuthMethod'),
    "AuthenticationError": ("uplink62676.errors", 'AuthenticationError'),
    "Authenticator": ("uplink62676.cloudauth", 'Authenticator'),
    "AuthorizationServerSettings": ("uplink62676.oauth", 'AuthorizationServerSettings'),
    "CLOUD_TRANSITIONS": ("uplink62676.uplink", 'CLOUD_TRANSITIONS'),
    "CancelHandler": ("uplink62676.agent", 'CancelHandler'),
    "Capabilities": ("uplink62676.config", 'Capabilities'),
    "Challenge": ("uplink62676.clientauth", 'Challenge'),
    "ClientAuth": ("uplink62676.oauth", 'ClientAuth'),
    "ClientAuthSettings": ("uplink62676.clientauth", 'ClientAuthSettings'),
    "ClientAuthenticator": ("uplink62676.clientauth", 'ClientAuthenticator'),
    "ClientCredentialsFlow": ("uplink62676.oauth", 'ClientCredentialsFlow'),
    "CloseTransport": ("uplink62676.agent", 'CloseTransport'),
    "CloudSettings": ("uplink62676.settings", 'CloudSettings'),
    "CloudUplink": ("uplink62676.uplink", 'CloudUplink'),
    "ConfigStoreError": ("uplink62676.errors", 'ConfigStoreError'),
    "ConfigurationChange": ("uplink62676.services.uplink", 'ConfigurationChange'),
    "ConfigurationError": ("uplink62676.errors", 'ConfigurationError'),
    "Connected": ("uplink62676.events", 'Connected'),
    "ConnectionTerminated": ("uplink62676.events", 'ConnectionTerminated'),
    "CorruptStoreError": ("uplink62676.errors", 'CorruptStoreError'),
    "DEVICE_TRANSITIONS": ("uplink62676.uplink", 'DEVICE_TRANSITIONS'),
    "DataReceived": ("uplink62676.events", 'DataReceived'),
    "Decision": ("uplink62676.clientauth", 'Decision'),
    "DeviceId": ("uplink62676.deviceid", 'DeviceId'),
    "DeviceInfo": ("uplink62676.deviceregistry", 'DeviceInfo'),
    "DeviceInformation": ("uplink62676.services.device", 'DeviceInformation'),
    "DeviceRegistry": ("uplink62676.deviceregistry", 'DeviceRegistry'),
    "DeviceService": ("uplink62676.services.device", 'DeviceService'),
    "DeviceSettings": ("uplink62676.settings", 'DeviceSettings'),
    "DeviceUplink": ("uplink62676.uplink", 'DeviceUplink'),
    "DigestSettings": ("uplink62676.httpauth", 'DigestSettings'),
    "DigestVerifier": ("uplink62676.httpauth", 'DigestVerifier'),
    "EndBody": ("uplink62676.agent", 'EndBody'),
    "ErrorCode": ("uplink62676.tunnel", 'ErrorCode'),
    "Event": ("uplink62676.events", 'Event'),
    "EventService": ("uplink62676.services.events", 'EventService'),
    "EventServiceSettings": ("uplink62676.services.events", 'EventServiceSettings'),
    "FeedBody": ("uplink62676.agent", 'FeedBody'),
    "FloodSettings": ("uplink62676.settings", 'FloodSettings'),
    "ForwardedElement": ("uplink62676.origins", 'ForwardedElement'),
    "FrameGuard": ("uplink62676.framelimits", 'FrameGuard'),
    "FrontDoorConnection": ("uplink62676.frontdoor", 'FrontDoorConnection'),
    "FrontDoorSettings": ("uplink62676.frontdoor", 'FrontDoorSettings'),
    "GeoLocation": ("uplink62676.query.resources", 'GeoLocation'),
    "Http1Client": ("uplink62676.httpclient", 'Http1Client'),
    "InMemoryDeviceRegistry": ("uplink62676.deviceregistry", 'InMemoryDeviceRegistry'),
    "InformationalResponseReceived": ("uplink62676.events", 'InformationalResponseReceived'),
    "InvalidDeviceIdError": ("uplink62676.errors", 'InvalidDeviceIdError'),
    "InvalidTokenError": ("uplink62676.errors", 'InvalidTokenError'),
    "LinkLost": ("uplink62676.events", 'LinkLost'),
    "LivenessSettings": ("uplink62676.settings", 'LivenessSettings'),
    "LocalProtocolError": ("uplink62676.errors", 'LocalProtocolError'),
    "MediaProfile": ("uplink62676.services.media", 'MediaProfile'),
    "MediaService": ("uplink62676.services.media", 'MediaService'),
    "NetworkInterface": ("uplink62676.services.device", 'NetworkInterface'),
    "Notification": ("uplink62676.query.resources", 'Notification'),
    "NotificationFault": ("uplink62676.errors", 'NotificationFault'),
    "OAuthError": ("uplink62676.errors", 'OAuthError'),
    "Origin": ("uplink62676.origins", 'Origin'),
    "PHASE_STATUS": ("uplink62676.uplink", 'PHASE_STATUS'),
    "PathRouter": ("uplink62676.frontdoor", 'PathRouter'),
    "PendingResponse": ("uplink62676.services.events", 'PendingResponse'),
    "Phase": ("uplink62676.uplink", 'Phase'),
    "PingAcknowledged": ("uplink62676.events", 'PingAcknowledged'),
    "PingAnswered": ("uplink62676.agent", 'PingAnswered'),
    "PreAuth": ("uplink62676.clientauth", 'PreAuth'),
    "Profile": ("uplink62676.services.uplink", 'Profile'),
    "PropertyOperation": ("uplink62676.query.resources", 'PropertyOperation'),
    "PublicOrigin": ("uplink62676.origins", 'PublicOrigin'),
    "PullPointManager": ("uplink62676.query.pullpoint", 'PullPointManager'),
    "PullPointSettings": ("uplink62676.query.pullpoint", 'PullPointSettings'),
    "Query": ("uplink62676.query.client", 'Query'),
    "QueryClient": ("uplink62676.query.client", 'QueryClient'),
    "ReconnectSchedule": ("uplink62676.liveness", 'ReconnectSchedule'),
    "ReferenceToken": ("uplink62676.tokens", 'ReferenceToken'),
    "Refuse": ("uplink62676.cloudauth", 'Refuse'),
    "RemoteAddress": ("uplink62676.handshake", 'RemoteAddress'),
    "RemoteProtocolError": ("uplink62676.errors", 'RemoteProtocolError'),
    "RemoteToken": ("uplink62676.tokens", 'RemoteToken'),
    "RequestHead": ("uplink62676.agent", 'RequestHead'),
    "RequestReceived": ("uplink62676.events", 'RequestReceived'),
    "RequestRouted": ("uplink62676.frontdoor", 'RequestRouted'),
    "Resource": ("uplink62676.query.resources", 'Resource'),
    "ResourceFilter": ("uplink62676.query.filters", 'ResourceFilter'),
    "ResourceMirror": ("uplink62676.query.client", 'ResourceMirror'),
    "ResourceRegistry": ("uplink62676.query.resources", 'ResourceRegistry'),
    "ResponseBody": ("uplink62676.httpclient", 'ResponseBody'),
    "ResponseComplete": ("uplink62676.httpclient", 'ResponseComplete'),
    "ResponseReceived": ("uplink62676.events", 'ResponseReceived'),
    "ResponseStarted": ("uplink62676.httpclient", 'ResponseStarted'),
    "RewriteResult": ("uplink62676.urirewrite", 'RewriteResult'),
    "Route": ("uplink62676.frontdoor", 'Route'),
    "RouteKind": ("uplink62676.frontdoor", 'RouteKind'),
    "Router": ("uplink62676.frontdoor", 'Router'),
    "Scope": ("uplink62676.services.device", 'Scope'),
    "SeededEntropy": ("uplink62676.websocket", 'SeededEntropy'),
    "ServiceEntry": ("uplink62676.services.device", 'ServiceEntry'),
    "SoapFault": ("uplink62676.errors", 'SoapFault'),
    "SoapNotAuthorized": ("uplink62676.clientauth", 'SoapNotAuthorized'),
    "SoapRequest": ("uplink62676.soap", 'SoapRequest'),
    "SoapResponse": ("uplink62676.soap", 'SoapResponse'),
    "StartHandler": ("uplink62676.agent", 'StartHandler'),
    "StaticSecurityLookup": ("uplink62676.services.uplink", 'StaticSecurityLookup'),
    "Status": ("uplink62676.config", 'Status'),
    "StatusChanged": ("uplink62676.events", 'StatusChanged'),
    "StreamEnded": ("uplink62676.events", 'StreamEnded'),
    "StreamReset": ("uplink62676.events", 'StreamReset'),
    "StreamWritable": ("uplink62676.events", 'StreamWritable'),
    "TokenAdapter": ("uplink62676.adaption", 'TokenAdapter'),
    "TokenContext": ("uplink62676.tokens", 'TokenContext'),
    "TokenMapper": ("uplink62676.tokenmap", 'TokenMapper'),
    "TrailersReceived": ("uplink62676.events", 'TrailersReceived'),
    "TransportError": ("uplink62676.errors", 'TransportError'),
    "Trigger": ("uplink62676.uplink", 'Trigger'),
    "UpgradeAccepted": ("uplink62676.events", 'UpgradeAccepted'),
    "UpgradeContext": ("uplink62676.cloudauth", 'UpgradeContext'),
    "UpgradeRefused": ("uplink62676.events", 'UpgradeRefused'),
    "UpgradeRequested": ("uplink62676.events", 'UpgradeRequested'),
    "UplinkConfiguration": ("uplink62676.config", 'UplinkConfiguration'),
    "UplinkError": ("uplink62676.errors", 'UplinkError'),
    "UplinkKeeper": ("uplink62676.agent", 'UplinkKeeper'),
    "UplinkService": ("uplink62676.services.uplink", 'UplinkService'),
    "UplinkServiceClient": ("uplink62676.services.uplink_client", 'UplinkServiceClient'),
    "UplinkSession": ("uplink62676.agent", 'UplinkSession'),
    "UriRewriter": ("uplink62676.urirewrite", 'UriRewriter'),
    "UriRule": ("uplink62676.urirewrite", 'UriRule'),
    "User": ("uplink62676.users", 'User'),
    "UsernameTokenSettings": ("uplink62676.wsse", 'UsernameTokenSettings'),
    "UsernameTokenVerifier": ("uplink62676.wsse", 'UsernameTokenVerifier'),
    "Users": ("uplink62676.users", 'Users'),
    "UsersFileError": ("uplink62676.errors", 'UsersFileError'),
    "ValidateToken": ("uplink62676.cloudauth", 'ValidateToken'),
    "Wake": ("uplink62676.agent", 'Wake'),
    "WebSocketClosed": ("uplink62676.websocket", 'WebSocketClosed'),
    "WebSocketSettings": ("uplink62676.websocket", 'WebSocketSettings'),
    "XmlRejectedError": ("uplink62676.errors", 'XmlRejectedError'),
    "access_class": ("uplink62676.services.device", 'access_class'),
    "adapt_request": ("uplink62676.adaption", 'adapt_request'),
    "adapt_response": ("uplink62676.adaption", 'adapt_response'),
    "build_envelope": ("uplink62676.soap", 'build_envelope'),
    "compile_filter": ("uplink62676.query.filters", 'compile_filter'),
    "events": ("uplink62676.events", None),
    "fault_response": ("uplink62676.soap", 'fault_response'),
    "forwarding_headers": ("uplink62676.origins", 'forwarding_headers'),
    "media_access_class": ("uplink62676.services.media", 'media_access_class'),
    "parse_authorization": ("uplink62676.httpauth", 'parse_authorization'),
    "parse_envelope": ("uplink62676.soap", 'parse_envelope'),
    "parse_fault": ("uplink62676.soap", 'parse_fault'),
    "parse_forwarded": ("uplink62676.origins", 'parse_forwarded'),
    "parse_response": ("uplink62676.soap", 'parse_response'),
    "parse_users": ("uplink62676.users", 'parse_users'),
    "public_origin": ("uplink62676.origins", 'public_origin'),
    "rewrite_soap_uris": ("uplink62676.urirewrite", 'rewrite_soap_uris'),
    "soap_action": ("uplink62676.soap", 'soap_action'),
    "strip_security_headers": ("uplink62676.wsse", 'strip_security_headers'),
    "without_credentials": ("uplink62676.clientauth", 'without_credentials'),
    "without_forwarding_headers": ("uplink62676.origins", 'without_forwarding_headers'),
}

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
    """Load a public name on first use (and cache it); names that moved out of the sans-I/O
    package, or were renamed, still resolve with a DeprecationWarning."""
    export = _EXPORTS.get(name)
    if export is not None:
        home = importlib.import_module(export[0])
        value = home if export[1] is None else getattr(home, export[1])
        globals()[name] = value
        return value
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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


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
    "ClusterRegistry",
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
    "Registration",
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
