"""The HTTP/2 side of the front door: our hardened :class:`~uplink62676.tunnel.Tunnel`.

The tunnel in ``Role.DEVICE`` is exactly an HTTP/2 server that expects the
client magic; it brings the flood limits (GOAWAY ``ENHANCE_YOUR_CALM``),
per-stream output queues with ``StreamWritable`` and an orderly GOAWAY.
This class adds what a front door needs on top: a route per request,
request bodies acknowledged only as the device consumes them (manual flow
control), data of answered streams dropped, and an idle timer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from .. import events as ev
from ..errors import LocalProtocolError
from ..httpheaders import strip_hop_by_hop
from ..tunnel import ErrorCode, Role, Tunnel
from .answers import LocalAnswer
from .events import RequestRefused, RequestRouted
from .limits import Admission
from .routing import Router
from .settings import FrontDoorSettings

__all__ = ["Http2Front"]

_STATUS = {n: str(n).encode() for n in range(100, 600)}


class _Stream:
    __slots__ = ("answered", "client_done", "held", "method")

    def __init__(self, method: str, client_done: bool) -> None:
        self.method = method
        self.client_done = client_done
        self.answered = False  # our side ended: the client's body is dropped
        self.held = True  # holds a slot of the client's bound (Admission)


class Http2Front:
    """Server end of one HTTP/2 (prior knowledge) client connection."""

    http_version = "2"

    def __init__(self, settings: FrontDoorSettings, router: Router, now: float,
                 admission: Admission | None = None) -> None:
        self.settings = settings
        self.router = router
        self._admission = admission or Admission(None, None)
        self.tunnel = Tunnel(Role.DEVICE, settings.http2, now=now, manual_flow_control=True)
        self._streams: dict[int, _Stream] = {}
        self._now = now
        self._idle_since: float | None = now
        self.close_reason: str | None = None
        self.wants_data = True  # HTTP/2 windows do the pacing
        self._lost = False

    @property
    def closed(self) -> bool:
        """True once the connection is gone, or drained after a GOAWAY."""
        t = self.tunnel
        return self._lost or t.closed or (t.draining and not self._streams)

    def data_to_send(self) -> bytes:
        """Drain the octets to write to the client."""
        return self.tunnel.data_to_send()

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed client octets; returns the events they caused. ``b""`` means the client closed."""
        self._now = now
        if not data:
            return self.connection_lost(now)
        if self._lost:
            return []
        events = self.tunnel.receive_data(data, now)
        out: list[ev.Event] = []
        streams = self._streams
        skip = 0
        for i, e in enumerate(events):
            if skip == i and i:
                continue
            kind = type(e)
            if kind is ev.DataReceived:
                assert isinstance(e, ev.DataReceived)
                s = streams.get(e.stream_id)
                if s is None or s.answered:
                    self.tunnel.acknowledge_data(e.stream_id, e.flow_controlled_length)
                else:
                    out.append(e)
            elif kind is ev.RequestReceived:
                assert isinstance(e, ev.RequestReceived)
                nxt = events[i + 1] if i + 1 < len(events) else None
                end = type(nxt) is ev.StreamEnded and nxt.stream_id == e.stream_id
                if end:
                    skip = i + 1
                # A refused stream's DATA and END_STREAM find no stream: acknowledged, dropped.
                out.append(self._request(e, end))
            elif kind is ev.StreamEnded:
                assert isinstance(e, ev.StreamEnded)
                s = streams.get(e.stream_id)
                if s is not None:
                    s.client_done = True
                    if s.answered:
                        self._forget(e.stream_id)
                    else:
                        out.append(e)
            elif kind is ev.StreamReset or kind is ev.StreamWritable:
                sid = e.stream_id  # type: ignore[attr-defined]
                if sid in streams:
                    if kind is ev.StreamReset:
                        self._forget(sid)
                    out.append(e)
            elif kind is ev.ConnectionTerminated:
                assert isinstance(e, ev.ConnectionTerminated)
                self.close_reason = self.tunnel.close_reason
                if self.tunnel.closed:
                    self._drop_all(out, e.reason or "connection ended")
                out.append(e)
        return out

    def _request(self, e: ev.RequestReceived, end: bool) -> RequestRouted | RequestRefused:
        authority = e.authority
        if authority is None:
            authority = next((v.decode("latin-1") for k, v in e.headers if k == b"host"), None)
        admission = self._admission
        if not admission.admit():
            with contextlib.suppress(LocalProtocolError):
                self.tunnel.reset_stream(e.stream_id, ErrorCode.REFUSED_STREAM)
            return RequestRefused(e.stream_id, e.method, e.path, admission.peer,
                                  "too many requests in flight from this address")
        self._streams[e.stream_id] = _Stream(e.method, end)
        self._idle_since = None
        return RequestRouted(e.stream_id, e.method, e.path, authority,
                             tuple(strip_hop_by_hop(e.headers)),
                             self.router(e.method, e.path, authority), e.content_length, end,
                             peer=admission.peer)

    def _leave(self, s: _Stream) -> None:
        if s.held:
            s.held = False
            self._admission.leave()

    def _forget(self, stream_id: int) -> None:
        s = self._streams.pop(stream_id, None)
        if s is not None:
            self._leave(s)
        if not self._streams:
            self._idle_since = self._now

    def _drop_all(self, out: list[ev.Event], reason: str) -> None:
        for sid, s in self._streams.items():
            self._leave(s)
            out.append(ev.StreamReset(sid, ErrorCode.CANCEL, by_peer=True, reason=reason))
        self._streams.clear()

    def connection_lost(self, now: float) -> list[ev.Event]:
        """The transport closed: every open stream is reset, the connection ends."""
        self._now = now
        out: list[ev.Event] = []
        if not self.tunnel.closed and not self._lost:
            self._drop_all(out, "client closed the connection")
            self._lost = True
            self.close_reason = "client closed the connection"
            out.append(ev.ConnectionTerminated(0, self.tunnel.highest_stream_id, by_peer=True,
                                               reason=self.close_reason))
        return out

    # --- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the idle limit runs out; ``None`` while streams are open."""
        if self._idle_since is None or self.closed:
            return None
        return self._idle_since + self.settings.idle_timeout

    def handle_timeout(self, now: float) -> list[ev.Event]:
        """Close an idle connection (no streams for ``idle_timeout``) with GOAWAY."""
        self._now = now
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        self.tunnel.close(ErrorCode.NO_ERROR, "idle")
        self._idle_since = None
        return [ev.ConnectionTerminated(0, self.tunnel.highest_stream_id, by_peer=False,
                                        reason="idle HTTP/2 connection")]

    # --- commands -----------------------------------------------------------------------------

    def _live(self, stream_id: int) -> _Stream | None:
        s = self._streams.get(stream_id)
        if s is None or s.answered or self.tunnel.closed or self._lost:
            return None
        return s

    def _answered(self, stream_id: int, s: _Stream) -> None:
        s.answered = True
        self._leave(s)
        if s.client_done:
            self._forget(stream_id)

    def acknowledge_data(self, stream_id: int, size: int) -> None:
        """Report that ``size`` body octets were consumed, reopening the flow-control window."""
        self.tunnel.acknowledge_data(stream_id, size)

    def send_response(self, stream_id: int, status: int,
                      headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False) -> None:
        """Send the response HEADERS (hop-by-hop headers are dropped)."""
        s = self._live(stream_id)
        if s is None:
            return
        if not 200 <= status <= 599:
            raise LocalProtocolError(f"cannot send a final response with status {status}")
        self.tunnel.send_headers(stream_id, [(b":status", _STATUS[status]),
                                             *strip_hop_by_hop(headers)], end_stream=end_stream)
        if end_stream:
            self._answered(stream_id, s)

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send a piece of the response body."""
        s = self._live(stream_id)
        if s is None:
            return
        self.tunnel.send_data(stream_id, data, end_stream=end_stream)
        if end_stream:
            self._answered(stream_id, s)

    def end_stream(self, stream_id: int) -> None:
        """Finish the response body of a stream."""
        self.send_data(stream_id, b"", end_stream=True)

    def answer(self, stream_id: int, answer: LocalAnswer) -> None:
        """Send a complete local answer on the stream."""
        s = self._live(stream_id)
        if s is None:
            return
        head = s.method == "HEAD"
        self.send_response(stream_id, answer.status, answer.headers, end_stream=head)
        if not head:
            self.send_data(stream_id, answer.body, end_stream=True)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.INTERNAL_ERROR) -> None:
        """Abort one request with RST_STREAM; the connection stays up."""
        s = self._streams.pop(stream_id, None)
        if s is not None:
            self._leave(s)
        if s is None or self.tunnel.closed or self._lost:
            return
        if not self._streams:
            self._idle_since = self._now
        with contextlib.suppress(LocalProtocolError):  # it closed in between: nothing to reset
            self.tunnel.reset_stream(stream_id, error_code)

    def queued(self, stream_id: int) -> int:
        """Octets of the stream waiting for flow-control window."""
        return self.tunnel.queued(stream_id)

    def close(self) -> None:
        """GOAWAY NO_ERROR: streams in flight finish, no new ones start (UPL-R24)."""
        self.tunnel.close(ErrorCode.NO_ERROR, "front door closing")

    @property
    def open_streams(self) -> int:
        """Requests in progress."""
        return len(self._streams)
