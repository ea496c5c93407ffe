"""RTSP through the uplink, sans-I/O: messages, URL rewriting, the HTTP tunnel, gateway sessions.

* :mod:`.message` -- RTSP heads and interleaved ``$`` frames on one byte stream (MED-12);
* :mod:`.rewrite` -- gateway URLs <-> device URLs in heads and SDP (MED-R14);
* :mod:`.httptunnel` -- RTSP over HTTP: cookies, streamed base64, channel heads (MED-13..17);
* :mod:`.gateway` -- one player's session at the cloud's gateway (MED-R12..R16).
"""

from __future__ import annotations

from .gateway import (
    ClosePlayer,
    CloseTunnel,
    GatewaySession,
    GatewaySettings,
    OpenTunnel,
    PlayerAuthenticated,
    Route,
    SessionLimits,
    SessionState,
    parse_route,
)
from .httptunnel import Base64Decoder, CookieTable, new_cookie, sniff_tunnel_head, tunnel_channel
from .message import Interleaved, RtspReader, RtspRequest, RtspResponse, serialize
from .rewrite import StreamRewriter, UrlMap, rewrite_request, rewrite_response, rewrite_sdp

__all__ = [
    "Base64Decoder",
    "ClosePlayer",
    "CloseTunnel",
    "CookieTable",
    "GatewaySession",
    "GatewaySettings",
    "Interleaved",
    "OpenTunnel",
    "PlayerAuthenticated",
    "Route",
    "RtspReader",
    "RtspRequest",
    "RtspResponse",
    "SessionLimits",
    "SessionState",
    "StreamRewriter",
    "UrlMap",
    "new_cookie",
    "parse_route",
    "rewrite_request",
    "rewrite_response",
    "rewrite_sdp",
    "serialize",
    "sniff_tunnel_head",
    "tunnel_channel",
]
