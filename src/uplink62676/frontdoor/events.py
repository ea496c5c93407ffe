"""The one event the front door adds to :mod:`uplink62676.events`: a routed request.

Everything else a front-door connection reports is an event the tunnel
already has, with the same meaning on HTTP/1.1 and HTTP/2:
``DataReceived`` (body octets; acknowledge them as the device consumes
them), ``StreamEnded`` (end of the request body), ``StreamReset`` (the
client reset the stream or went away: cancel the device's stream),
``StreamWritable`` (queued response octets left) and
``ConnectionTerminated`` (write what is left, then close the transport).
"""

from __future__ import annotations

import attrs

from ..events import Event, Headers, _headers_repr, _target_repr
from .routing import Route

__all__ = ["PeerInfo", "RequestRefused", "RequestRouted"]


@attrs.frozen(slots=True)
class PeerInfo:
    """The client end of a front-door connection, as the adapter accepted it.

    ``address``: the client's IP (what per-client limits count; ``""`` when
    unknown); ``tls``: the connection is TLS (``scheme`` is then ``https``);
    ``alpn``: the protocol TLS negotiated; ``certificate``: the subject CN of
    a verified client certificate (``--expose-client-ca``); ``local_port``: the
    front-door port it reached.  Authentication reads these (DEV-R18).
    """

    address: str = ""
    port: int = 0
    tls: bool = False
    alpn: str | None = None
    certificate: str | None = None
    local_port: int = 0

    @property
    def scheme(self) -> str:
        """``https`` over TLS, else ``http``: the client-visible scheme (DEV-R14)."""
        return "https" if self.tls else "http"


@attrs.frozen(slots=True)
class RequestRouted(Event):
    """A client's request head, with where it goes.

    ``stream_id``: the HTTP/2 stream, or for HTTP/1.1 a number of the
    connection's own (1, 2, 3, ... one exchange at a time).  ``headers``
    has no pseudo-headers and no hop-by-hop fields.  ``end_stream``: the
    request has no body (no ``DataReceived``/``StreamEnded`` follow).
    ``peer``: the connection's client end (address, TLS), when the adapter gave it.
    """

    stream_id: int
    method: str
    target: str = attrs.field(repr=_target_repr)
    authority: str | None
    headers: Headers = attrs.field(repr=_headers_repr)
    route: Route
    content_length: int | None = None
    end_stream: bool = False
    http_version: str = "2"
    peer: PeerInfo | None = None

    @property
    def scheme(self) -> str:
        """The scheme the client used: ``https`` when its connection is TLS."""
        return self.peer.scheme if self.peer is not None else "http"


@attrs.frozen(slots=True)
class RequestRefused(Event):
    """A request the front door refused itself before routing it (``reason`` says why).

    Already answered: HTTP/1.1 503 with ``Retry-After``, HTTP/2 REFUSED_STREAM.
    """

    stream_id: int
    method: str
    target: str = attrs.field(repr=_target_repr)
    peer: PeerInfo | None
    reason: str
