"""The HTTP/1.1 side of the front door, on h11; one exchange at a time.

Bounds what a client can hold: a request head of at most ``max_head_size``
octets (431 beyond), ``head_timeout`` seconds from its first octet to its
end (408), ``idle_timeout`` between requests (silent close), and
``body_idle_timeout`` of silence inside a body while we are reading (408, or
a close once the response has started).  Answers to broken requests are
written by hand, since h11 refuses to talk once the peer broke HTTP.
Pipelined requests wait in h11's buffer until the response before them ends;
``next_deadline()`` then asks for an immediate ``handle_timeout`` that reads on.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from http import HTTPStatus

import h11

from .. import events as ev
from ..errors import LocalProtocolError
from ..httpheaders import strip_hop_by_hop
from ..tunnel import ErrorCode
from .answers import LocalAnswer
from .events import RequestRefused, RequestRouted
from .limits import Admission
from .routing import Router
from .settings import FrontDoorSettings

__all__ = ["Http1Front"]

_H11_ERRORS = (h11.ProtocolError, ValueError, TypeError, RuntimeError)


class _Wait(enum.Enum):
    IDLE = "idle"  # no octet of the next head yet
    HEAD = "head"  # inside a head
    EXCHANGE = "exchange"  # a request is being answered


class Http1Front:
    """Server end of one HTTP/1.1 client connection (see the module docstring)."""

    http_version = "1.1"

    def __init__(self, settings: FrontDoorSettings, router: Router, now: float,
                 admission: Admission | None = None) -> None:
        self.settings = settings
        self.router = router
        self._admission = admission or Admission(None, None)
        self._held = False  # this exchange holds a slot of the client's bound
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=settings.max_head_size)
        self._out: list[bytes | bytearray | memoryview] = []
        self.closed = False
        self.close_reason: str | None = None
        self._now = now
        self._wait = _Wait.IDLE
        self._deadline: float | None = now + settings.idle_timeout
        self._sid = 0
        self._method = ""
        self._started = False  # response head sent
        self._answered = False  # response complete: the rest of the body is discarded
        self._body_done = True
        self._unacked = 0
        self._resume = False  # buffered input to read once the response ended

    # --- output -------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Drain the octets to write to the client."""
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        return out if type(out) is bytes else bytes(out)

    def _send(self, event: h11.Event) -> None:
        try:
            chunks = self._h11.send_with_data_passthrough(event)
        except _H11_ERRORS as exc:
            raise LocalProtocolError(f"cannot send {type(event).__name__}: {exc}") from None
        if chunks:
            self._out += chunks

    # --- input --------------------------------------------------------------------------------

    @property
    def wants_data(self) -> bool:
        """False while ``body_window`` body octets wait for acknowledgement."""
        return self._unacked < self.settings.body_window

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed client octets; returns the events they caused. ``b""`` means the client closed."""
        if self.closed:
            return []
        self._now = now
        if not data:
            return self.connection_lost(now)
        if self._wait is _Wait.IDLE:
            self._wait = _Wait.HEAD
            self._deadline = now + self.settings.head_timeout
        elif self._wait is _Wait.EXCHANGE and not self._body_done:
            self._deadline = now + self.settings.body_idle_timeout
        try:
            self._h11.receive_data(data)
        except _H11_ERRORS as exc:  # data after the peer's close: nothing to read any more
            return self._fail(400, f"client broke HTTP/1.1: {exc}")
        return self._read([])

    def _read(self, out: list[ev.Event]) -> list[ev.Event]:
        conn = self._h11
        while not self.closed:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return self._fail(exc.error_status_hint, f"client broke HTTP/1.1: {exc}", out)
            except _H11_ERRORS as exc:
                return self._fail(400, f"client broke HTTP/1.1: {exc}", out)
            kind = type(event)
            if kind is h11.Data:
                assert isinstance(event, h11.Data)
                if not self._answered:
                    size = len(event.data)
                    self._unacked += size
                    out.append(ev.DataReceived(self._sid, bytes(event.data), size))
            elif kind is h11.EndOfMessage:
                self._body_done = True
                if not self._answered:
                    out.append(ev.StreamEnded(self._sid))
                    if self._wait is _Wait.EXCHANGE:
                        self._deadline = None
                else:
                    self._next_cycle()
            elif kind is h11.Request:
                assert isinstance(event, h11.Request)
                self._request(event, out)
            elif event is h11.NEED_DATA or event is h11.PAUSED:
                self._resume = False
                break
            elif kind is h11.ConnectionClosed:
                return self._gone("client closed the connection", out)
        return out

    def _request(self, request: h11.Request, out: list[ev.Event]) -> None:
        self._sid += 1
        self._wait = _Wait.EXCHANGE
        self._started = self._answered = False
        self._method = method = request.method.decode("latin-1")
        target = request.target.decode("latin-1")
        host: str | None = None
        length: int | None = None
        for name, value in request.headers:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value)  # h11 validated it
        headers = tuple(strip_hop_by_hop(request.headers))
        route = self.router(method, target, host)
        try:
            peek = self._h11.next_event()
        except h11.ProtocolError:
            peek = h11.NEED_DATA  # reported by the next read
        end = type(peek) is h11.EndOfMessage
        self._body_done = end
        self._deadline = None if end else self._now + self.settings.body_idle_timeout
        admission = self._admission
        if not admission.admit():
            out.append(RequestRefused(self._sid, method, target, admission.peer,
                                      "too many requests in flight from this address"))
            self.answer(self._sid, admission.busy)  # the body, if any, is read and dropped
            return
        self._held = True
        out.append(RequestRouted(self._sid, method, target, host, headers, route, length, end,
                                 request.http_version.decode("ascii"), admission.peer))
        if not end and self._h11.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]))
        if type(peek) is h11.Data:
            assert isinstance(peek, h11.Data)
            self._unacked += len(peek.data)
            out.append(ev.DataReceived(self._sid, bytes(peek.data), len(peek.data)))

    def _next_cycle(self) -> None:
        """Both sides of the exchange are complete: keep the connection or close it."""
        conn = self._h11
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            self.closed = True
            self.close_reason = "HTTP/1.1 connection not kept alive"
            return
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()
        self._wait = _Wait.IDLE
        self._unacked = 0
        self._deadline = self._now + self.settings.idle_timeout
        self._resume = True  # a pipelined request may already be buffered

    def _fail(self, status: int, reason: str, out: list[ev.Event] | None = None) -> list[ev.Event]:
        """The client broke HTTP (or a timer ran out): answer ``status`` if we still can, close."""
        out = [] if out is None else out
        if not self._started:
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
            body = f"{status} {phrase}\n".encode()
            self._out.append(
                f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
            self._started = True
        return self._gone(reason, out, code=ErrorCode.PROTOCOL_ERROR, by_peer=False)

    def _release(self) -> None:
        if self._held:
            self._held = False
            self._admission.leave()

    def _gone(self, reason: str, out: list[ev.Event], code: int = ErrorCode.NO_ERROR,
              by_peer: bool = True) -> list[ev.Event]:
        self._release()
        if self._wait is _Wait.EXCHANGE and not (self._answered and self._body_done):
            out.append(ev.StreamReset(self._sid, ErrorCode.CANCEL, by_peer=True, reason=reason))
        self.closed = True
        self.close_reason = reason
        self._deadline = None
        out.append(ev.ConnectionTerminated(int(code), self._sid, by_peer=by_peer, reason=reason))
        return out

    def connection_lost(self, now: float) -> list[ev.Event]:
        """The transport closed (or the client half-closed): the client is gone."""
        if self.closed:
            return []
        self._now = now
        return self._gone("client closed the connection", [])

    # --- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must run next; ``None`` when no timer is armed."""
        if self.closed:
            return None
        if self._resume:
            return self._now
        if self._wait is _Wait.EXCHANGE and not self.wants_data:
            return None  # we stopped reading; the client is not the slow one
        return self._deadline

    def handle_timeout(self, now: float) -> list[ev.Event]:
        """Run the timers due at ``now``: head, body and idle limits."""
        if self.closed:
            return []
        self._now = now
        out: list[ev.Event] = []
        if self._resume:
            self._resume = False
            self._read(out)
        deadline = self.next_deadline()
        if deadline is None or now < deadline or self.closed:
            return out
        if self._wait is _Wait.IDLE:
            return self._gone("idle HTTP/1.1 connection", out, by_peer=False)
        if self._wait is _Wait.HEAD:
            return self._fail(408, f"request head not complete within "
                                   f"{self.settings.head_timeout:g} s", out)
        return self._fail(408, f"request body stalled for {self.settings.body_idle_timeout:g} s",
                          out)

    # --- commands -----------------------------------------------------------------------------

    def _current(self, stream_id: int) -> bool:
        return not self.closed and stream_id == self._sid and self._wait is _Wait.EXCHANGE \
            and not self._answered

    def acknowledge_data(self, stream_id: int, size: int) -> None:
        """Report that ``size`` body octets were consumed, so reading goes on."""
        if size < 0:
            raise LocalProtocolError(f"cannot acknowledge {size} octets")
        if stream_id == self._sid:
            self._unacked = max(self._unacked - size, 0)
            if not self._body_done:
                self._deadline = self._now + self.settings.body_idle_timeout

    def send_response(self, stream_id: int, status: int,
                      headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False) -> None:
        """Send the response head."""
        if not self._current(stream_id):
            return
        if self._started:
            raise LocalProtocolError(f"the response of stream {stream_id} has started")
        if not 200 <= status <= 999:
            raise LocalProtocolError(f"cannot send a final response with status {status}")
        try:
            response = h11.Response(status_code=status, headers=strip_hop_by_hop(headers))
        except _H11_ERRORS as exc:
            raise LocalProtocolError(f"cannot send this response head: {exc}") from None
        self._send(response)
        self._started = True
        if end_stream:
            self.end_stream(stream_id)

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send a piece of the response body."""
        if not self._current(stream_id):
            return
        if not self._started:
            raise LocalProtocolError(f"stream {stream_id}: body before the response head")
        if data and self._method != "HEAD":
            self._send(h11.Data(data=data))
        if end_stream:
            self.end_stream(stream_id)

    def end_stream(self, stream_id: int) -> None:
        """Finish the response; the connection then serves the next request or closes."""
        if not self._current(stream_id):
            return
        self._send(h11.EndOfMessage())
        self._answered = True
        self._release()
        if self._body_done:
            self._next_cycle()
        else:
            self._deadline = self._now + self.settings.body_idle_timeout
            self._unacked = 0  # what follows is read and dropped

    def answer(self, stream_id: int, answer: LocalAnswer) -> None:
        """Send a complete local answer on the stream."""
        self.send_response(stream_id, answer.status, answer.headers)
        self.send_data(stream_id, answer.body, end_stream=True)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.INTERNAL_ERROR) -> None:
        """HTTP/1.1 cannot abort one response: the connection is closed instead."""
        if not self._current(stream_id):
            return
        self._h11.send_failed()
        self._answered = self._body_done = True
        self._release()
        self.closed = True
        self.close_reason = f"response of stream {stream_id} aborted"

    def queued(self, stream_id: int) -> int:
        """Always 0: HTTP/1.1 has no flow-control window to wait for."""
        return 0  # nothing waits for a window: the transport's buffer is the only queue

    def close(self) -> None:
        """Close after what is queued (no new request is read)."""
        self._release()
        self.closed = True
        self.close_reason = self.close_reason or "closed by the front door"

    @property
    def open_streams(self) -> int:
        """1 while a request is being served, else 0."""
        return int(self._wait is _Wait.EXCHANGE)
