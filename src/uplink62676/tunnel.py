"""Role-reversed HTTP/2 over the upgraded link, on top of h2 (UPL-3..5, 15..19, 43, 44, 61).

:class:`Tunnel` wraps one ``h2.connection.H2Connection`` -- server role on the
device, client role on the cloud -- and adds what h2 alone does not do:

* the frame guard of :mod:`.framelimits` in front of h2, which checks the
  connection preface (UPL-17: magic, then a non-ACK SETTINGS) and counts the
  known floods; the tunnel ends the connection with the GOAWAY it names
  (``ENHANCE_YOUR_CALM`` for a flood, design.md table), and handles the
  peer's GOAWAY itself so streams in flight can finish (UPL-R24);
* a ``content-length`` mismatch kept a *stream* error (UPL-61) where h2
  would tear down the whole connection;
* a minimal preface that advertises only the settings that differ from the
  RFC 9113 defaults (transcript A3/A4);
* outbound flow control: bodies of any size are queued per stream and sent
  as the peer's windows allow; ``StreamWritable`` tells a producer when the
  queue is empty again;
* inbound flow control acknowledged automatically as events are handed out,
  or by the caller (``manual_flow_control``) as it consumes data.

No exception of h2, hpack or hyperframe leaves this module.
"""

from __future__ import annotations

import collections
import contextlib
import enum
from collections.abc import Iterable, Sequence
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h2.stream
import hpack
from hyperframe.frame import SettingsFrame, WindowUpdateFrame

from . import events as ev
from .errors import LocalProtocolError
from .framelimits import PREFACE_MAGIC, FrameGuard, GoawayFrame, LimitCrossed
from .settings import CloudSettings, DeviceSettings

__all__ = ["PREFACE_MAGIC", "ErrorCode", "Role", "Tunnel"]

# RFC 9113 defaults; only values that differ are advertised.
_RFC_DEFAULTS = {
    h2.settings.SettingCodes.HEADER_TABLE_SIZE: 4096,
    h2.settings.SettingCodes.ENABLE_PUSH: 1,
    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535,
    h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384,
    h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 0,
}


class ErrorCode(enum.IntEnum):
    """HTTP/2 error codes (RFC 9113 section 7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class Role(enum.Enum):
    """Which end of the tunnel: the device serves HTTP/2, the cloud is its client."""

    DEVICE = "device"  # HTTP/2 server
    CLOUD = "cloud"  # HTTP/2 client


_DEP_ERRORS = (
    h2.exceptions.H2Error,
    hpack.HPACKError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    UnicodeError,
)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def _lower_headers(headers: Iterable[tuple[bytes | str, bytes | str]]) -> list[tuple[bytes, bytes]]:
    """Header fields as lower-case byte names and byte values (str taken as Latin-1)."""
    out = []
    for name, value in headers:
        n = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        v = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        out.append((n.lower(), v))
    return out


class _BodyLengthMismatch(h2.events.Event):
    """Internal: h2 found a content-length mismatch on a stream (UPL-61)."""

    def __init__(self, stream_id: int, message: str) -> None:
        self.stream_id = stream_id
        self.message = message


#: Streams closed by RST_STREAM whose IDs h2 remembers (late frames on them are not errors).
MAX_RESET_STREAMS = 4096

_BY_RESET = (h2.stream.StreamClosedBy.SEND_RST_STREAM, h2.stream.StreamClosedBy.RECV_RST_STREAM)


class _ResetStreams(collections.OrderedDict[int, Any]):
    """h2's memory of closed streams, kept only for streams closed by RST_STREAM.

    h2 remembers how each of the last 65,536 closed streams ended (about 80
    octets each), so a long-lived uplink grew by ~5 MB under ordinary traffic.
    The memory only matters after a reset: frames the peer sent before it saw
    our RST_STREAM (or we sent before we saw its) must not be a connection
    error.  A frame on a stream that ended normally is a connection error
    either way (STREAM_CLOSED if remembered, PROTOCOL_ERROR if not), so those
    are not kept.  The oldest resets go first beyond ``MAX_RESET_STREAMS``.
    """

    def __setitem__(self, key: int, value: Any) -> None:
        if value in _BY_RESET:
            super().__setitem__(key, value)
            if len(self) > MAX_RESET_STREAMS:
                self.popitem(last=False)


class _H2Connection(h2.connection.H2Connection):
    """h2 with two changes: a content-length mismatch is a *stream* error, and
    only reset streams are remembered once closed (:class:`_ResetStreams`).

    h2 4.x raises ``InvalidBodyLengthError`` out of ``receive_data`` and tears
    down the whole connection (GOAWAY PROTOCOL_ERROR).  RFC 9113 section 8.1.1
    makes the malformed request a stream error, and UPL-61 requires the uplink
    to carry on.  We catch the error at the frame handler, give the octets'
    connection-level credit back, and reset only that stream.
    """

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        self._closed_streams = _ResetStreams()

    def _receive_data_frame(self, frame):  # type: ignore[no-untyped-def]
        try:
            return super()._receive_data_frame(frame)
        except h2.exceptions.InvalidBodyLengthError as exc:
            return self._body_length_error(frame.stream_id, frame.flow_controlled_length, exc)

    def _receive_headers_frame(self, frame):  # type: ignore[no-untyped-def]
        try:
            return super()._receive_headers_frame(frame)
        except h2.exceptions.InvalidBodyLengthError as exc:
            return self._body_length_error(frame.stream_id, 0, exc)

    def _body_length_error(self, stream_id: int, consumed: int, exc: Exception):  # type: ignore[no-untyped-def]
        frames = []
        if consumed:
            increment = self._inbound_flow_control_window_manager.process_bytes(consumed)
            if increment:
                wu = WindowUpdateFrame(0)
                wu.window_increment = increment
                frames.append(wu)
        self.reset_stream(stream_id, ErrorCode.PROTOCOL_ERROR)
        return frames, [_BodyLengthMismatch(stream_id, str(exc))]


class _Outbound:
    __slots__ = ("chunks", "end_stream", "queued", "trailers")

    def __init__(self) -> None:
        self.chunks: collections.deque[bytes | memoryview] = collections.deque()
        self.queued = 0
        self.end_stream = False
        self.trailers: list[tuple[bytes, bytes]] | None = None


class Tunnel:
    """One HTTP/2 connection with reversed roles; see the module docstring.

    ``receive_data(data, now)`` returns events; command methods queue frames;
    ``data_to_send()`` drains them.  After a fatal error the tunnel is
    ``closed`` and ignores further input.
    """

    def __init__(
        self,
        role: Role,
        settings: DeviceSettings | CloudSettings,
        *,
        now: float = 0.0,
        manual_flow_control: bool = False,
    ) -> None:
        self.role = role
        self.settings = settings
        self.manual_flow_control = manual_flow_control
        self.closed = False
        #: GOAWAY NO_ERROR sent or received: streams in flight may finish,
        #: no new ones start (UPL-R24).
        self.draining = False
        self.close_reason: str | None = None
        self._goaway_last: int | None = None  # last stream we accept after our GOAWAY
        self._refused: set[int] = set()
        client = role is Role.CLOUD
        config = h2.config.H2Configuration(
            client_side=client,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            split_outbound_cookies=False,
        )
        self._conn = _H2Connection(config=config)
        values: dict[h2.settings.SettingCodes, int] = {
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: settings.max_frame_size,
        }
        if client:
            values[h2.settings.SettingCodes.ENABLE_PUSH] = 0
        else:
            assert isinstance(settings, DeviceSettings)
            values[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = (
                settings.max_concurrent_streams
            )
            if settings.enable_connect_protocol:
                values[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        if settings.advertise_header_list_size:
            values[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] = settings.max_header_list_size
        self._conn.local_settings = h2.settings.Settings(client=client, initial_values=values)
        self._conn.decoder.max_header_list_size = settings.max_header_list_size
        self._conn.max_inbound_frame_size = settings.max_frame_size
        self._conn.initiate_connection()
        self._conn.data_to_send()  # replaced by our minimal preface:
        advertised = SettingsFrame(0)
        for code in sorted(values):
            if _RFC_DEFAULTS.get(code) != values[code]:
                advertised.settings[code] = values[code]
        self._out = bytearray(PREFACE_MAGIC if client else b"")
        self._out += advertised.serialize()
        if settings.connection_window_increment:
            self._conn.increment_flow_control_window(settings.connection_window_increment)
            self._out += self._conn.data_to_send()

        # The preface check and the flood limits (UPL-17, UPL-R22): the device
        # must see the 24-octet magic first.
        self._guard = FrameGuard(
            settings.floods,
            settings.max_frame_size,
            expect_magic=not client,
            pending_output=lambda: self.pending_output,
            now=now,
        )
        self._inbuf = bytearray()
        self.preface_received = False
        self._outbound: dict[int, _Outbound] = {}
        self._pings_out: dict[bytes, float] = {}
        self._ping_counter = 0

    # --- output -------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Drain the octets to write to the peer."""
        pending = self._conn.data_to_send()
        if not self._out:  # the common case: h2's octets as they are, no copy
            return bytes(pending)
        self._out += pending
        out = bytes(self._out)
        self._out.clear()
        return out

    def _collect(self) -> None:
        pending = self._conn.data_to_send()
        if pending:
            self._out += pending

    @property
    def pending_output(self) -> int:
        """Octets queued for the peer and not yet taken by ``data_to_send()``."""
        self._collect()
        return len(self._out)

    # --- input --------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed octets from the peer; returns the events they caused."""
        if self.closed:
            return []
        out: list[ev.Event] = []
        guard = self._guard
        # Scan the caller's octets in place when nothing is left over from the
        # last call (the common case): no copy of the payload into a buffer.
        buf: bytes | bytearray
        if self._inbuf or guard.need_magic:
            self._inbuf += data
            buf = self._inbuf
        else:
            buf = data if type(data) is bytes else bytes(data)
        batch = 0
        stop, verdict = guard.scan(buf, 0, now)
        while verdict is not None:
            if type(verdict) is LimitCrossed:
                return self._fatal(
                    ErrorCode(verdict.code), verdict.reason, out, feed=(buf, batch, stop, now)
                )
            assert type(verdict) is GoawayFrame
            # Handled here, not by h2: h2 closes its state machine on GOAWAY,
            # which would forbid finishing the streams in flight (UPL-R24).
            self._feed(buf, batch, stop, now, out)
            if self.closed:
                return out
            code = verdict.error_code
            out.append(
                ev.ConnectionTerminated(
                    code, verdict.last_stream_id, by_peer=True, reason=verdict.debug
                )
            )
            if code != ErrorCode.NO_ERROR:
                self.closed = True
                self.close_reason = f"GOAWAY from peer ({_code_name(code)})"
                self._inbuf.clear()
                return out
            self.draining = True
            self.close_reason = "GOAWAY from peer (NO_ERROR)"
            batch = verdict.end
            stop, verdict = guard.scan(buf, batch, now, resume=True)
        self._feed(buf, batch, stop, now, out)
        if not self.closed:
            if buf is self._inbuf:
                del self._inbuf[:stop]
            elif stop < len(buf):
                self._inbuf += buf[stop:]
        return out

    def _feed(
        self, buf: bytes | bytearray, start: int, stop: int, now: float, out: list[ev.Event]
    ) -> None:
        if stop <= start or self.closed:
            return
        try:
            h2_events = self._conn.receive_data(bytes(buf[start:stop]))
        except h2.exceptions.ProtocolError as exc:
            code = int(
                getattr(exc, "error_code", ErrorCode.PROTOCOL_ERROR) or ErrorCode.PROTOCOL_ERROR
            )
            self._fatal(
                ErrorCode(code)
                if code in ErrorCode._value2member_map_
                else ErrorCode.PROTOCOL_ERROR,
                f"peer broke HTTP/2: {exc}",
                out,
                goaway=False,
            )
            return
        except _DEP_ERRORS as exc:
            self._fatal(ErrorCode.PROTOCOL_ERROR, f"peer broke HTTP/2: {exc!r}", out, goaway=True)
            return
        self._translate(h2_events, now, out)

    def _translate(self, h2_events: Sequence[Any], now: float, out: list[ev.Event]) -> None:
        """h2's events into ours.  Dispatch on the exact class, commonest first
        (h2's event classes are final), so a DATA frame costs one comparison."""
        conn = self._conn
        refused = self._refused
        flush = False
        for e in h2_events:
            if refused and getattr(e, "stream_id", None) in refused:
                continue
            kind = type(e)
            if kind is h2.events.DataReceived:
                sid = e.stream_id
                fcl = e.flow_controlled_length or 0
                out.append(ev.DataReceived(sid, e.data, fcl))
                if fcl and not self.manual_flow_control:
                    try:  # noqa: SIM105 (hot path; automatic flow control: consumed as handed out)
                        conn.acknowledge_received_data(fcl, sid)
                    except (h2.exceptions.H2Error, KeyError, ValueError):
                        pass
            elif kind is h2.events.WindowUpdated:
                flush = True
            elif kind is h2.events.StreamEnded:
                out.append(ev.StreamEnded(e.stream_id))
            elif kind is h2.events.RequestReceived:
                self._on_request(e, out)
            elif kind is h2.events.ResponseReceived:
                status, headers, length = self._split_response(e.headers)
                out.append(ev.ResponseReceived(e.stream_id, status, headers, length))
            elif kind is _BodyLengthMismatch:
                self._outbound.pop(e.stream_id, None)
                out.append(
                    ev.StreamReset(
                        e.stream_id, ErrorCode.PROTOCOL_ERROR, by_peer=False, reason=e.message
                    )
                )
            elif kind is h2.events.StreamReset:
                self._outbound.pop(e.stream_id, None)
                out.append(
                    ev.StreamReset(
                        e.stream_id, int(e.error_code or 0), by_peer=bool(e.remote_reset)
                    )
                )
            elif kind is h2.events.InformationalResponseReceived:
                status, headers, _ = self._split_response(e.headers)
                out.append(ev.InformationalResponseReceived(e.stream_id, status, headers))
            elif kind is h2.events.TrailersReceived:
                out.append(
                    ev.TrailersReceived(
                        e.stream_id, tuple((bytes(k), bytes(v)) for k, v in e.headers)
                    )
                )
            elif kind is h2.events.RemoteSettingsChanged:
                if not self.preface_received:
                    self.preface_received = True
                    out.append(ev.Connected())  # in order: before what follows the preface
                flush = True
            elif kind is h2.events.PingAckReceived:
                payload = bytes(e.ping_data or b"")
                sent = self._pings_out.pop(payload, None)
                out.append(
                    ev.PingAcknowledged(payload, None if sent is None else max(now - sent, 0.0))
                )
            # PingReceived (h2 answers it), SettingsAcknowledged, PriorityUpdated,
            # UnknownFrameReceived, AlternativeServiceAvailable: nothing to do.
        if flush and self._outbound:  # once per batch, however many windows opened
            self._flush_all(out)

    def _on_request(self, e: h2.events.RequestReceived, out: list[ev.Event]) -> None:
        sid = e.stream_id
        assert sid is not None
        if self._goaway_last is not None and sid > self._goaway_last:
            # Opened after our GOAWAY crossed it in flight: refused (UPL-R24).
            self._refused.add(sid)
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.reset_stream(sid, ErrorCode.REFUSED_STREAM)
            return
        request = self._request_event(e)
        if e.stream_ended is not None and request.content_length:
            # END_STREAM on HEADERS that announce a body: malformed (UPL-61).
            self._refused.add(sid)
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.reset_stream(sid, ErrorCode.PROTOCOL_ERROR)
            out.append(
                ev.StreamReset(
                    sid,
                    ErrorCode.PROTOCOL_ERROR,
                    by_peer=False,
                    reason=f"content-length {request.content_length} but END_STREAM on HEADERS",
                )
            )
            return
        out.append(request)

    def _request_event(self, e: h2.events.RequestReceived) -> ev.RequestReceived:
        assert e.stream_id is not None and e.headers is not None
        method = path = b""
        scheme = authority = protocol = None
        regular: list[tuple[bytes, bytes]] = []
        length: int | None = None
        for k, v in e.headers:
            name = bytes(k)
            value = bytes(v)
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":scheme":
                    scheme = value
                elif name == b":authority":
                    authority = value
                elif name == b":protocol":
                    protocol = value
                continue
            if name == b"content-length":
                length = int(value)  # h2 validated it
            regular.append((name, value))
        return ev.RequestReceived(
            e.stream_id,
            method.decode("latin-1"),
            path.decode("latin-1"),
            scheme.decode("latin-1") if scheme is not None else None,
            authority.decode("latin-1") if authority is not None else None,
            tuple(regular),
            protocol.decode("latin-1") if protocol is not None else None,
            length,
        )

    @staticmethod
    def _split_response(
        headers: Iterable[tuple[bytes, bytes]],
    ) -> tuple[int, ev.Headers, int | None]:
        status = 0
        regular: list[tuple[bytes, bytes]] = []
        length = None
        for k, v in headers:
            name, value = bytes(k), bytes(v)
            if name == b":status":
                status = int(value)
            elif name[:1] != b":":
                if name == b"content-length":
                    length = int(value)
                regular.append((name, value))
        return status, tuple(regular), length

    def _fatal(
        self,
        code: ErrorCode,
        reason: str,
        out: list[ev.Event],
        *,
        goaway: bool = True,
        feed: tuple[bytes | bytearray, int, int, float] | None = None,
    ) -> list[ev.Event]:
        """End the connection: deliver what came before, GOAWAY, and stop reading."""
        if feed is not None:
            self._feed(*feed, out)
        if not self.closed and goaway:
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.close_connection(error_code=code, additional_data=reason.encode()[:256])
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            out.append(
                ev.ConnectionTerminated(
                    int(code), self._conn.highest_inbound_stream_id, by_peer=False, reason=reason
                )
            )
        self._inbuf.clear()
        return out

    # --- flow control -------------------------------------------------------------------------

    def _ack(self, size: int, stream_id: int) -> None:
        with contextlib.suppress(h2.exceptions.H2Error, KeyError, ValueError):
            self._conn.acknowledge_received_data(size, stream_id)

    def acknowledge_data(self, stream_id: int, size: int) -> None:
        """Manual flow control: ``size`` flow-controlled octets were consumed."""
        if size < 0:
            raise LocalProtocolError(f"cannot acknowledge {size} octets")
        if size and not self.closed:
            self._ack(size, stream_id)

    # --- commands -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise LocalProtocolError(f"the uplink is closed ({self.close_reason})")

    def send_headers(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool = False
    ) -> None:
        """Send HEADERS on a stream; the device may only answer streams the cloud opened (UPL-5)."""
        self._check_open()
        if self.role is Role.DEVICE and stream_id not in self._conn.streams:
            # h2 would let a server open a stream here; the device never does (UPL-5).
            raise LocalProtocolError(
                f"stream {stream_id} was not opened by the cloud; the device never opens streams"
            )
        try:
            self._conn.send_headers(stream_id, headers, end_stream=end_stream)
        except (h2.exceptions.H2Error, hpack.HPACKError, KeyError, ValueError, TypeError) as exc:
            raise LocalProtocolError(
                f"cannot send headers on stream {stream_id}: {exc!r}"
            ) from None

    def new_stream_id(self) -> int:
        """The next stream ID for a request; only the cloud opens streams (UPL-5)."""
        if self.role is not Role.CLOUD:
            raise LocalProtocolError("the device never opens streams (UPL-5)")
        self._check_open()
        if self.draining:
            raise LocalProtocolError(f"the uplink is closing ({self.close_reason}); no new streams")
        try:
            return int(self._conn.get_next_available_stream_id())
        except h2.exceptions.H2Error as exc:
            raise LocalProtocolError(f"no stream ID left: {exc}") from None

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue body octets; they leave as the peer's flow-control windows allow."""
        if self.closed:
            self._check_open()
        stream = self._conn.streams.get(stream_id)
        if stream is None or stream.closed:
            raise LocalProtocolError(f"stream {stream_id} is not open for sending")
        q = self._outbound.get(stream_id)
        if q is None:
            conn = self._conn
            size = len(data)
            if size <= conn.max_outbound_frame_size and size <= conn.local_flow_control_window(
                stream_id
            ):
                # Fast path: nothing queued and it fits; one DATA frame now.
                try:
                    conn.send_data(stream_id, bytes(data), end_stream=end_stream)
                except (h2.exceptions.H2Error, ValueError) as exc:
                    raise LocalProtocolError(
                        f"cannot send on stream {stream_id}: {exc!r}"
                    ) from None
                return
            q = self._outbound[stream_id] = _Outbound()
        if q.end_stream:
            raise LocalProtocolError(f"stream {stream_id} was already ended")
        # A non-empty queue means the stream waits for a window: the next
        # WINDOW_UPDATE flushes it, so there is nothing to try now.
        blocked = bool(q.chunks)
        if data:
            q.chunks.append(data if type(data) is bytes else bytes(data))
            q.queued += len(data)
        q.end_stream = end_stream
        if not blocked:
            self._flush(stream_id, q, None)

    def send_trailers(
        self, stream_id: int, headers: Iterable[tuple[bytes | str, bytes | str]]
    ) -> None:
        """End the stream with trailers once all queued data has left."""
        self._check_open()
        q = self._outbound.get(stream_id)
        if q is None:
            q = self._outbound[stream_id] = _Outbound()
        if q.end_stream:
            raise LocalProtocolError(f"stream {stream_id} was already ended")
        q.trailers = _lower_headers(headers)
        q.end_stream = True
        self._flush(stream_id, q, None)

    def queued(self, stream_id: int) -> int:
        """Body octets queued on a stream and not yet sent (for back-pressure)."""
        q = self._outbound.get(stream_id)
        return q.queued if q is not None else 0

    def _flush_all(self, out: list[ev.Event]) -> None:
        for sid, q in list(self._outbound.items()):
            self._flush(sid, q, out)

    def _flush(self, sid: int, q: _Outbound, out: list[ev.Event] | None) -> None:
        conn = self._conn
        had = q.queued
        try:
            while q.chunks:
                window = conn.local_flow_control_window(sid)
                if window <= 0:
                    break
                chunk = q.chunks[0]
                whole = len(chunk)
                size = min(window, whole, conn.max_outbound_frame_size)
                if size == whole:  # no copy: the chunk leaves as it is
                    piece = chunk
                    last = len(q.chunks) == 1
                    q.chunks.popleft()
                else:  # memoryview slices: O(1), no quadratic copying of big bodies
                    view = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
                    piece = view[:size]
                    last = False
                    q.chunks[0] = view[size:]
                q.queued -= size
                conn.send_data(sid, piece, end_stream=last and q.end_stream and q.trailers is None)
            if not q.chunks:
                if q.end_stream:
                    if q.trailers is not None:
                        conn.send_headers(sid, q.trailers, end_stream=True)
                    elif had == 0:
                        conn.end_stream(sid)
                    del self._outbound[sid]
                if had and out is not None:
                    out.append(ev.StreamWritable(sid))
        except (h2.exceptions.StreamClosedError, KeyError):
            self._outbound.pop(sid, None)
        except (h2.exceptions.H2Error, hpack.HPACKError, ValueError) as exc:
            self._outbound.pop(sid, None)
            raise LocalProtocolError(f"cannot send on stream {sid}: {exc!r}") from None

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """Abort one stream with RST_STREAM; the connection stays up."""
        self._check_open()
        self._outbound.pop(stream_id, None)
        try:
            self._conn.reset_stream(stream_id, error_code)
        except (h2.exceptions.H2Error, KeyError) as exc:
            raise LocalProtocolError(f"cannot reset stream {stream_id}: {exc!r}") from None

    def ping(self, now: float, payload: bytes | None = None) -> bytes:
        """Send a PING; returns its 8-octet payload (deterministic when not given)."""
        self._check_open()
        if payload is None:
            self._ping_counter += 1
            payload = b"UPLK" + self._ping_counter.to_bytes(4, "big")
        if len(payload) != 8:
            raise LocalProtocolError(f"a PING payload has 8 octets, got {len(payload)}")
        try:
            self._conn.ping(payload)
        except h2.exceptions.H2Error as exc:
            raise LocalProtocolError(f"cannot send PING: {exc}") from None
        self._pings_out[payload] = now
        if len(self._pings_out) > 16:
            self._pings_out.pop(next(iter(self._pings_out)))
        return payload

    def close(self, error_code: int = ErrorCode.NO_ERROR, reason: str | None = None) -> None:
        """Send GOAWAY with the last stream processed (UPL-R24).

        With NO_ERROR the tunnel drains: responses to streams up to that ID
        may still be sent, newer requests are refused (REFUSED_STREAM); the
        adapter closes the transport once ``open_streams`` is 0 or a grace
        period ends.  Any other code ends the connection at once.
        """
        if self.closed:
            return
        if error_code == ErrorCode.NO_ERROR:
            if self._goaway_last is not None:
                return
            last = self._conn.highest_inbound_stream_id if self.role is Role.DEVICE else 0
            self._goaway_last = last
            debug = reason.encode()[:256] if reason else b""
            self._collect()
            self._out += (
                (8 + len(debug)).to_bytes(3, "big")
                + b"\x07\x00\x00\x00\x00\x00"
                + last.to_bytes(4, "big")
                + b"\x00\x00\x00\x00"
                + debug
            )
            self.draining = True
            self.close_reason = reason or "closed by this end (NO_ERROR)"
            return
        with contextlib.suppress(h2.exceptions.H2Error):
            self._conn.close_connection(
                error_code=error_code,
                additional_data=reason.encode()[:256] if reason else None,
            )
        self.closed = True
        self.close_reason = reason or f"closed by this end ({_code_name(error_code)})"

    def open_stream_ids(self) -> list[int]:
        """IDs of the streams h2 does not consider closed, in order (to fail them on loss)."""
        return sorted(sid for sid, stream in self._conn.streams.items() if not stream.closed)

    @property
    def open_streams(self) -> int:
        """How many streams are open in either direction."""
        return int(self._conn.open_inbound_streams + self._conn.open_outbound_streams)

    @property
    def stream_slots(self) -> int:
        """Streams this end may still open under the peer's MAX_CONCURRENT_STREAMS."""
        limit = self._conn.remote_settings.max_concurrent_streams
        return max(int(limit) - int(self._conn.open_outbound_streams), 0)

    @property
    def peer_enables_connect_protocol(self) -> bool:
        """The peer's SETTINGS carried ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 section 3)."""
        return bool(self._conn.remote_settings.enable_connect_protocol)

    @property
    def highest_stream_id(self) -> int:
        """Highest stream ID the peer has opened (what a GOAWAY reports)."""
        return int(self._conn.highest_inbound_stream_id)


def _code_name(code: object) -> str:
    try:
        return ErrorCode(int(code)).name  # type: ignore[call-overload]
    except (ValueError, TypeError):
        return str(code)
