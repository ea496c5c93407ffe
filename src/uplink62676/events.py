"""Events the uplink state machines return from ``receive_data`` and ``handle_timeout``.

One class per thing that can happen (the h2 habit), all frozen attrs
classes with slots and a readable repr.  Header lists are tuples of
``(name, value)`` byte pairs with the pseudo-headers taken out into fields.
Secrets (bearer tokens) are never shown in a repr.
"""

from __future__ import annotations

import re

import attrs

from .status import Status

__all__ = [
    "Connected",
    "ConnectionTerminated",
    "DataReceived",
    "Event",
    "Headers",
    "InformationalResponseReceived",
    "LinkLost",
    "PingAcknowledged",
    "RequestReceived",
    "ResponseReceived",
    "StatusChanged",
    "StreamEnded",
    "StreamReset",
    "StreamWritable",
    "TrailersReceived",
    "UpgradeAccepted",
    "UpgradeRefused",
    "UpgradeRequested",
]

Headers = tuple[tuple[bytes, bytes], ...]


def _redact(value: object) -> str:
    return "None" if value is None else "'<redacted>'"


_SECRET_HEADERS = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"})


def _headers_repr(headers: Headers) -> str:
    """Header lists in reprs, with credential values hidden."""
    shown = tuple((k, b"<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in headers)
    return repr(shown)


_QUERY_TOKEN = re.compile(r"(?<=[?&]access_token=)[^&#]*")


def _target_repr(target: str) -> str:
    """A request-target in reprs, with an ``access_token`` query value hidden (UPL-25)."""
    return repr(_QUERY_TOKEN.sub("<redacted>", target))


class Event:
    """Base class of every event (for ``isinstance`` and type hints)."""

    __slots__ = ()


# --- establishment ---------------------------------------------------------------------------


@attrs.frozen(slots=True)
class UpgradeRequested(Event):
    """Cloud end: a device asked to upgrade; call ``accept()`` or ``refuse()``.

    ``host`` is the ``Host`` header (None when a tolerated request omitted it),
    ``bearer_token`` the RFC 6750 token from ``Authorization`` or from the
    ``access_token`` query parameter (UPL-R17), ``tolerated`` names every
    deviation from textbook HTTP/1.1 that was accepted.  ``websocket`` is
    True for the ``wss`` variant (``Upgrade: websocket`` with sub-protocol
    ``h2c-reverse``, UPL-20); ``accept()`` then answers with a WebSocket ``101``.
    """

    target: str = attrs.field(repr=_target_repr)
    host: str | None
    headers: Headers = attrs.field(repr=_headers_repr)
    bearer_token: str | None = attrs.field(default=None, repr=_redact)
    tolerated: tuple[str, ...] = ()
    websocket: bool = False

    @property
    def path(self) -> str:
        """The request-target without its query."""
        return self.target.split("?", 1)[0]


@attrs.frozen(slots=True)
class UpgradeAccepted(Event):
    """Device end: the cloud answered ``101`` with ``h2c-reverse``; roles are swapped."""

    headers: Headers = attrs.field(repr=_headers_repr)


@attrs.frozen(slots=True)
class UpgradeRefused(Event):
    """Device end: the cloud did not switch protocols (UPL-R7).

    ``bearer_error`` is the RFC 6750 ``error`` attribute of a ``401``/``403``
    Bearer challenge (``invalid_token`` means: discard the cached token);
    ``bearer_challenge`` says whether a Bearer challenge was present at all.
    """

    status_code: int
    reason: str
    headers: Headers = attrs.field(repr=_headers_repr)
    bearer_challenge: bool = False
    bearer_error: str | None = None


@attrs.frozen(slots=True)
class Connected(Event):
    """The peer's HTTP/2 preface was valid; the uplink is ``Connected`` (UPL-17, R27)."""


@attrs.frozen(slots=True)
class StatusChanged(Event):
    """The uplink's ``Status`` changed; ``error`` is the short reason of a failure."""

    status: Status
    error: str | None = None


# --- HTTP over the reversed link ---------------------------------------------------------------


@attrs.frozen(slots=True)
class RequestReceived(Event):
    """Device end: the cloud opened a stream with a request (UPL-4, UPL-43).

    ``protocol`` is the ``:protocol`` of an RFC 8441 extended CONNECT.
    ``content_length`` is the parsed ``content-length`` header, if any.
    """

    stream_id: int
    method: str
    path: str
    scheme: str | None
    authority: str | None
    headers: Headers = attrs.field(repr=_headers_repr)
    protocol: str | None = None
    content_length: int | None = None


@attrs.frozen(slots=True)
class ResponseReceived(Event):
    """Cloud end: the device answered a request with a final status."""

    stream_id: int
    status_code: int
    headers: Headers = attrs.field(repr=_headers_repr)
    content_length: int | None = None


@attrs.frozen(slots=True)
class InformationalResponseReceived(Event):
    """Cloud end: a 1xx response (e.g. ``100 Continue``) arrived on a stream."""

    stream_id: int
    status_code: int
    headers: Headers = attrs.field(repr=_headers_repr)


@attrs.frozen(slots=True)
class DataReceived(Event):
    """Body octets arrived on a stream.

    With automatic flow control (the default) the window is reopened as the
    event is handed out.  With ``manual_flow_control=True`` call
    ``acknowledge_data(stream_id, flow_controlled_length)`` once the octets
    are consumed; the peer can then never have more than the window in flight.
    """

    stream_id: int
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} octets>")
    flow_controlled_length: int = 0


@attrs.frozen(slots=True)
class TrailersReceived(Event):
    """Trailing headers ended a response (or request) body on ``stream_id``."""

    stream_id: int
    headers: Headers = attrs.field(repr=_headers_repr)


@attrs.frozen(slots=True)
class StreamEnded(Event):
    """The peer finished its side of the stream (END_STREAM)."""

    stream_id: int


@attrs.frozen(slots=True)
class StreamReset(Event):
    """The stream was reset.  ``by_peer`` is False when this end reset it
    because the peer broke a rule on that stream (e.g. a content-length
    mismatch, UPL-61); ``reason`` then says which."""

    stream_id: int
    error_code: int
    by_peer: bool = True
    reason: str | None = None


@attrs.frozen(slots=True)
class StreamWritable(Event):
    """Everything queued on the stream has been sent; a paused producer may go on."""

    stream_id: int


@attrs.frozen(slots=True)
class PingAcknowledged(Event):
    """The peer answered one of our PINGs (``round_trip`` in seconds of ``now``)."""

    payload: bytes
    round_trip: float | None = None


@attrs.frozen(slots=True)
class ConnectionTerminated(Event):
    """The HTTP/2 connection ended (GOAWAY sent or received, or a fatal error).

    ``by_peer`` tells who ended it; ``error_code`` is the HTTP/2 error code
    (0 NO_ERROR, 1 PROTOCOL_ERROR, 11 ENHANCE_YOUR_CALM, ...); the adapter
    should send what ``data_to_send()`` holds and then close the transport.
    """

    error_code: int
    last_stream_id: int | None
    by_peer: bool
    reason: str | None = None


@attrs.frozen(slots=True)
class LinkLost(Event):
    """Device end: nothing was received for more than 30 s (UPL-48); close and reconnect."""

    silence: float
