"""The client end of plain HTTP/1.1 exchanges, sans-I/O (h11 underneath, never seen).

Used by the device's forwarder (tunneled request -> local web server), the
resource-query client and the demo.  ``send_request`` / ``send_body`` /
``end_body`` queue octets for ``data_to_send()``; ``receive_data(data)``
returns :class:`ResponseStarted`, :class:`ResponseBody` and
:class:`ResponseComplete` (1xx answers are skipped); ``b""`` means the
server closed.  A broken answer raises
:class:`~uplink62676.errors.RemoteProtocolError`, a close before the answer
ended :class:`~uplink62676.errors.TransportError`.  Body framing follows the
request's own headers (``content-length`` or ``transfer-encoding: chunked``);
:func:`uplink62676.httpheaders.local_request_head` picks them for a forwarder.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import h11

from .errors import LocalProtocolError, RemoteProtocolError, TransportError
from .events import Event, Headers, _headers_repr

__all__ = ["Http1Client", "ResponseBody", "ResponseComplete", "ResponseStarted"]

_SEND_ERRORS = (h11.ProtocolError, ValueError, TypeError, RuntimeError)


@attrs.frozen(slots=True)
class ResponseStarted(Event):
    """The final response head (``headers``: lower-case names, as received)."""

    status_code: int
    headers: Headers = attrs.field(repr=_headers_repr)
    reason: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        """First value of a response header (lower-case name), or ``None``."""
        return next((v for k, v in self.headers if k == name), None)


@attrs.frozen(slots=True)
class ResponseBody(Event):
    """A chunk of the response body."""

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} octets>")


@attrs.frozen(slots=True)
class ResponseComplete(Event):
    """The response ended; ``reusable``: the connection may carry another request."""

    reusable: bool


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


class Http1Client:
    """One HTTP/1.1 client connection: request after request, one at a time.

    ``max_head_size`` bounds a response head (a longer one is a
    :class:`RemoteProtocolError`).  ``received`` counts octets of the
    current answer, so a caller can tell a kept-alive connection the server
    closed while idle (nothing received) from one that died mid-answer.
    """

    def __init__(self, *, max_head_size: int = 16 * 1024) -> None:
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head_size)
        self._out = bytearray()
        self.received = 0
        self._complete = False

    @property
    def idle(self) -> bool:
        """True when a new request may be sent on this connection."""
        return self._h11.our_state is h11.IDLE and self._h11.their_state is h11.IDLE

    def data_to_send(self) -> bytes:
        """Drain the octets to write to the server."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _send(self, event: h11.Event) -> None:
        try:
            chunks = self._h11.send_with_data_passthrough(event)
        except _SEND_ERRORS as exc:
            raise LocalProtocolError(f"cannot send {type(event).__name__}: {exc}") from None
        for chunk in chunks or ():
            self._out += chunk

    def send_request(self, method: str, target: str,
                     headers: Iterable[tuple[str | bytes, str | bytes]], body: bytes | None = None,
                     ) -> None:
        """Queue a request head; with ``body`` the whole body and its end as well.

        ``headers`` must include ``host`` and say how a body is framed.
        """
        if not self.idle:
            raise LocalProtocolError("the previous exchange on this connection is not over")
        self.received = 0
        self._complete = False
        try:
            request = h11.Request(method=method, target=target,
                                  headers=[(_as_bytes(k), _as_bytes(v)) for k, v in headers])
        except _SEND_ERRORS as exc:
            raise LocalProtocolError(f"cannot send this request: {exc}") from None
        self._send(request)
        if body is not None:
            self.send_body(body)
            self.end_body()

    def send_body(self, data: bytes) -> None:
        """Queue a piece of the request body (empty pieces are skipped)."""
        if data:
            self._send(h11.Data(data=data))

    def end_body(self) -> None:
        """Finish the request body."""
        self._send(h11.EndOfMessage())

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed what the server sent (``b""``: it closed); returns the events it completes."""
        conn = self._h11
        self.received += len(data)
        try:
            conn.receive_data(data)
        except RuntimeError as exc:
            raise TransportError(f"server sent data after closing: {exc}") from None
        out: list[Event] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if not data and not self._complete:
                    raise TransportError("the server closed the connection mid-answer") from None
                raise RemoteProtocolError(f"server broke HTTP/1.1: {exc}",
                                          http_status=exc.error_status_hint) from None
            kind = type(event)
            if kind is h11.Data:
                out.append(ResponseBody(bytes(event.data)))  # type: ignore[union-attr]
            elif kind is h11.Response:
                assert isinstance(event, h11.Response)
                out.append(ResponseStarted(event.status_code,
                                           tuple((bytes(k), bytes(v)) for k, v in event.headers),
                                           bytes(event.reason)))
            elif kind is h11.EndOfMessage:
                self._complete = True
                reusable = conn.our_state is h11.DONE and conn.their_state is h11.DONE
                if reusable:
                    conn.start_next_cycle()
                out.append(ResponseComplete(reusable))
                return out
            elif kind is h11.ConnectionClosed:
                if not self._complete:
                    raise TransportError("the server closed the connection")
                return out
            elif event is h11.NEED_DATA or event is h11.PAUSED:
                if not data and not self._complete:
                    raise TransportError("the server closed the connection before answering")
                return out
            # InformationalResponse (100 Continue, ...): skipped
