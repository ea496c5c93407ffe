"""One accepted front-door client: sniff the first 24 octets, then HTTP/2 or HTTP/1.1.

A client that starts with the HTTP/2 magic (``PRI * HTTP/2.0``, prior
knowledge: h2c or h2 after ALPN) gets the HTTP/2 side, anything else the
HTTP/1.1 side; both report the same events (see :mod:`.events`) and take
the same commands, so the adapter does not care which one it talks to.
The face is the uplink's: ``receive_data(data, now)``, commands,
``data_to_send()``, ``next_deadline()`` / ``handle_timeout(now)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .. import events as ev
from ..tunnel import PREFACE_MAGIC, ErrorCode
from .answers import LocalAnswer
from .events import PeerInfo
from .http1 import Http1Front
from .http2 import Http2Front
from .limits import Admission, ClientLimits
from .routing import PathRouter, Router
from .settings import FrontDoorSettings

__all__ = ["FrontDoorConnection"]


class _Side(Protocol):
    @property
    def http_version(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def close_reason(self) -> str | None: ...
    @property
    def wants_data(self) -> bool: ...
    @property
    def open_streams(self) -> int: ...

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]: ...
    def data_to_send(self) -> bytes: ...
    def connection_lost(self, now: float) -> list[ev.Event]: ...
    def next_deadline(self) -> float | None: ...
    def handle_timeout(self, now: float) -> list[ev.Event]: ...
    def acknowledge_data(self, stream_id: int, size: int) -> None: ...
    def send_response(self, stream_id: int, status: int, headers: Iterable[tuple[bytes, bytes]],
                      *, end_stream: bool = False) -> None: ...
    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None: ...
    def end_stream(self, stream_id: int) -> None: ...
    def answer(self, stream_id: int, answer: LocalAnswer) -> None: ...
    def reset_stream(self, stream_id: int, error_code: int = ...) -> None: ...
    def queued(self, stream_id: int) -> int: ...
    def close(self) -> None: ...


class FrontDoorConnection:
    """Sans-I/O server end of one front-door client connection.

    Commands on a stream the client already reset, or whose exchange is
    over, are ignored (that race is normal); a misuse raises
    :class:`~uplink62676.errors.LocalProtocolError`.  Once ``closed`` is
    True, write what ``data_to_send()`` holds and close the transport.

    ``peer``: the client end as accepted (address, TLS); every
    :class:`~.events.RequestRouted` carries it.  ``limits``: the front door's
    shared :class:`~.limits.ClientLimits`; a request past the bound of its
    address is answered by the connection itself (:class:`~.events.RequestRefused`).
    """

    def __init__(self, settings: FrontDoorSettings | None = None, router: Router | None = None,
                 *, now: float = 0.0, peer: PeerInfo | None = None,
                 limits: ClientLimits | None = None) -> None:
        self.settings = settings or FrontDoorSettings()
        self.router: Router = router or PathRouter()
        self.peer = peer
        self._admission = Admission(limits, peer, self.settings.retry_after)
        self._side: _Side | None = None
        self._first = bytearray()
        self._closed = False
        self._deadline: float | None = now + self.settings.idle_timeout
        self._now = now

    @property
    def http_version(self) -> str | None:
        """``"1.1"``, ``"2"``, or None while the first 24 octets are still awaited."""
        return self._side.http_version if self._side is not None else None

    @property
    def closed(self) -> bool:
        """True once nothing more will be received or sent."""
        return self._closed if self._side is None else self._side.closed

    @property
    def close_reason(self) -> str | None:
        """Why the connection closed, once the protocol is known and it has; else ``None``."""
        return self._side.close_reason if self._side is not None else None

    @property
    def wants_data(self) -> bool:
        """False while unacknowledged request body fills the window (stop reading)."""
        return self._side is None or self._side.wants_data

    @property
    def open_streams(self) -> int:
        """Requests in progress (0 until the protocol is known)."""
        return 0 if self._side is None else self._side.open_streams

    def data_to_send(self) -> bytes:
        """Drain the octets to write to the client."""
        return b"" if self._side is None else self._side.data_to_send()

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed client octets; the first ones decide between HTTP/1.1 and HTTP/2 prior knowledge."""
        side = self._side
        if side is not None:
            return side.receive_data(data, now)
        if self._closed:
            return []
        self._now = now
        if not data:
            return self.connection_lost(now)
        self._first += data
        have = bytes(self._first[:len(PREFACE_MAGIC)])
        if PREFACE_MAGIC.startswith(have) and len(have) < len(PREFACE_MAGIC):
            if self._deadline is not None and self._deadline - now > self.settings.head_timeout:
                self._deadline = now + self.settings.head_timeout
            return []  # could still be HTTP/2
        first = bytes(self._first)
        self._first.clear()
        side = (Http2Front if have == PREFACE_MAGIC else Http1Front)(
            self.settings, self.router, now, self._admission)
        self._side = side
        return side.receive_data(first, now)

    def connection_lost(self, now: float) -> list[ev.Event]:
        """The transport closed: open exchanges are reset (events say which)."""
        if self._side is not None:
            return self._side.connection_lost(now)
        if self._closed:
            return []
        self._closed = True
        return [ev.ConnectionTerminated(0, None, by_peer=True,
                                        reason="client closed the connection")]

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must run next; ``None`` when no timer is armed."""
        if self._side is not None:
            return self._side.next_deadline()
        return None if self._closed else self._deadline

    def handle_timeout(self, now: float) -> list[ev.Event]:
        """Run the timers due at ``now``; before the protocol is known, give up on a silent client.
        """
        if self._side is not None:
            return self._side.handle_timeout(now)
        if self._closed or self._deadline is None or now < self._deadline:
            return []
        self._closed = True
        return [ev.ConnectionTerminated(int(ErrorCode.NO_ERROR), None, by_peer=False,
                                        reason="no request from the client in time")]

    # --- commands (see the class docstring) ---------------------------------------------------

    def _require(self) -> _Side:
        if self._side is None:
            from ..errors import LocalProtocolError

            raise LocalProtocolError("no request has arrived on this connection yet")
        return self._side

    def send_response(self, stream_id: int, status: int, headers: Iterable[tuple[bytes, bytes]],
                      *, end_stream: bool = False) -> None:
        """Send the response head (hop-by-hop fields are dropped)."""
        self._require().send_response(stream_id, status, headers, end_stream=end_stream)

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue body octets (HTTP/2: they leave as the client's windows allow)."""
        self._require().send_data(stream_id, data, end_stream=end_stream)

    def end_stream(self, stream_id: int) -> None:
        """Finish the response body of a stream."""
        self._require().end_stream(stream_id)

    def answer(self, stream_id: int, answer: LocalAnswer) -> None:
        """Answer locally: head, body (none for HEAD) and end in one go."""
        self._require().answer(stream_id, answer)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.INTERNAL_ERROR) -> None:
        """Abort a response (HTTP/2: RST_STREAM; HTTP/1.1: close the connection)."""
        self._require().reset_stream(stream_id, error_code)

    def acknowledge_data(self, stream_id: int, size: int) -> None:
        """``size`` flow-controlled request-body octets were consumed by the device."""
        self._require().acknowledge_data(stream_id, size)

    def queued(self, stream_id: int) -> int:
        """Response octets waiting for the client's window (wait for ``StreamWritable``)."""
        return 0 if self._side is None else self._side.queued(stream_id)

    def close(self) -> None:
        """HTTP/2: GOAWAY NO_ERROR and drain; HTTP/1.1: close after what is queued."""
        if self._side is None:
            self._closed = True
        else:
            self._side.close()
