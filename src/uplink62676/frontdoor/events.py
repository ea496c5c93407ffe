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

__all__ = ["RequestRouted"]


@attrs.frozen(slots=True)
class RequestRouted(Event):
    """A client's request head, with where it goes.

    ``stream_id``: the HTTP/2 stream, or for HTTP/1.1 a number of the
    connection's own (1, 2, 3, ... one exchange at a time).  ``headers``
    has no pseudo-headers and no hop-by-hop fields.  ``end_stream``: the
    request has no body (no ``DataReceived``/``StreamEnded`` follow).
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
