"""The ``wss`` uplink: h2c-reverse carried in WebSocket binary frames (UPL-7, UPL-20..29).

Three pieces, glued into :class:`~uplink62676.uplink.DeviceUplink` and
:class:`~uplink62676.uplink.CloudUplink` so their faces stay the same:

* the opening handshake -- :class:`DeviceWebSocketHandshake` (the device is
  the WebSocket *client*: ``GET`` with ``Upgrade: websocket`` and the
  sub-protocol ``h2c-reverse``, then a strict check of the ``101``) and
  :class:`CloudWebSocketHandshake` (the cloud is the WebSocket *server*; it
  checks the request and builds the ``101`` with wsproto);
* :class:`WebSocketFraming` -- RFC 6455 data transfer after the ``101`` on
  wsproto: binary payloads become one octet stream (UPL-R13), HTTP/2 output
  leaves as binary messages holding whole HTTP/2 frames, the device masks
  every frame with keys from the caller's entropy source (UPL-27), the cloud
  never masks (UPL-28), Ping is answered with Pong (UPL-29), text frames and
  wrongly masked frames end the connection (1003 / 1002);
* :class:`WebSocketTunnel` -- the HTTP/2 :class:`~uplink62676.tunnel.Tunnel`
  with the framing in front of it, so teardown follows UPL-R14: GOAWAY, then
  the WebSocket Close, then the transport.

Randomness comes in from the caller (sans-I/O): ``entropy`` is any callable
``(n) -> n octets`` -- ``os.urandom`` in production (RFC 6455 section 5.3 wants
unpredictable masking keys), :class:`SeededEntropy` or ``random.Random(seed).randbytes``
for reproducible runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import attrs
import h11
import wsproto.events as wse
import wsproto.utilities
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.frame_protocol import CloseReason, FrameProtocol, XorMaskerSimple
from wsproto.handshake import H11Handshake

from . import events as ev
from ._ratelimit import TokenBucket
from .errors import ConfigurationError, LocalProtocolError, RemoteProtocolError
from .handshake import DeviceHandshake, ParsedUpgrade, RemoteAddress
from .settings import CloudSettings, DeviceSettings
from .tunnel import PREFACE_MAGIC, ErrorCode, Role, Tunnel

__all__ = [
    "SUBPROTOCOL",
    "CloudWebSocketHandshake",
    "DeviceWebSocketHandshake",
    "Entropy",
    "SeededEntropy",
    "WebSocketClosed",
    "WebSocketFraming",
    "WebSocketSettings",
    "WebSocketTunnel",
    "accept_token",
]

#: The WebSocket sub-protocol naming reverse HTTP/2 (UPL-20, UPL-23; exact string, OQ-36).
SUBPROTOCOL = "h2c-reverse"

#: A source of octets: called with n, returns n octets (``os.urandom`` fits).
Entropy = Callable[[int], bytes]


def accept_token(key: bytes | str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2, UPL-23)."""
    raw = key.encode("latin-1") if isinstance(key, str) else bytes(key)
    return wsproto.utilities.generate_accept_token(raw).decode("ascii")


class SeededEntropy:
    """Deterministic octets from a seed: BLAKE2b keyed with the seed, in counter mode.

    Unpredictable to anyone who does not know the seed, reproducible for
    whoever does -- the sans-I/O way to feed WebSocket keys and masks.
    """

    __slots__ = ("_counter", "_key", "_pool")

    def __init__(self, seed: bytes | str | int) -> None:
        self._key = b""
        self._counter = 0
        self._pool = b""
        self.reseed(seed)

    def reseed(self, seed: bytes | str | int) -> None:
        """Start a new stream from ``seed``."""
        if isinstance(seed, bool) or not isinstance(seed, bytes | str | int):
            raise ConfigurationError(f"an entropy seed is bytes, str or int, got {seed!r}")
        if isinstance(seed, int):
            raw = seed.to_bytes((seed.bit_length() + 8) // 8 or 1, "big", signed=True)
        elif isinstance(seed, str):
            raw = seed.encode("utf-8")
        else:
            raw = bytes(seed)
        self._key = hashlib.blake2b(raw, digest_size=32, person=b"uplink62676-ws").digest()
        self._counter = 0
        self._pool = b""

    def __call__(self, n: int) -> bytes:
        while len(self._pool) < n:
            block = hashlib.blake2b(self._counter.to_bytes(8, "big"), key=self._key).digest()
            self._pool += block
            self._counter += 1
        out, self._pool = self._pool[:n], self._pool[n:]
        return out

    def __repr__(self) -> str:
        return "SeededEntropy(<seeded>)"


def _draw(entropy: Entropy, n: int) -> bytes:
    try:
        octets = entropy(n)
    except Exception as exc:  # a caller's callable: report it as our error
        raise ConfigurationError(f"the entropy source failed: {exc!r}") from None
    if not isinstance(octets, bytes | bytearray) or len(octets) != n:
        raise ConfigurationError(f"the entropy source must return {n} octets, got {octets!r:.60}")
    return bytes(octets)


def _positive_or_none(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ConfigurationError(f"{attr.name} must be a positive int or None, got {value!r}")


def _positive(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{attr.name} must be a positive number, got {value!r}")


@attrs.frozen(slots=True)
class WebSocketSettings:
    """Bounds of the WebSocket layer.

    Payloads are streamed into the HTTP/2 tunnel as they arrive, so memory
    stays bounded whatever the frame size; these limits are policy:

    ``max_message_size``: octets in one inbound message before closing with
    1009 (None: no limit).  ``max_outbound_message``: tunnel output is cut
    at HTTP/2 frame boundaries into binary messages of at most this size (a
    single larger HTTP/2 frame gets a message of its own), which keeps us
    below the 1 MiB default of common WebSocket servers.  ``control_burst`` /
    ``control_rate``: Ping, Pong and empty data frames received (a token
    bucket); past it the connection closes with 1008.
    """

    max_message_size: int | None = attrs.field(
        default=16 * 1024 * 1024, validator=_positive_or_none
    )
    max_outbound_message: int = attrs.field(default=64 * 1024, validator=_positive)
    control_burst: int = attrs.field(default=100, validator=_positive)
    control_rate: float = attrs.field(default=20.0, validator=_positive)


@attrs.frozen(slots=True)
class WebSocketClosed(ev.Event):
    """The WebSocket under the uplink closed.

    ``by_peer`` True: the peer sent Close with ``code`` (answered with Close).
    ``by_peer`` False: this end failed the connection because the peer broke
    RFC 6455 or UPL-R13 (1002 wrong masking, 1003 text frame, 1007 bad UTF-8,
    1008 flood, 1009 message too big) and sent Close with ``code``.
    """

    code: int
    reason: str | None = None
    by_peer: bool = True


# --- opening handshake, device end --------------------------------------------------------------


def _token_list(value: bytes) -> list[str]:
    return [t.strip().lower() for t in value.decode("latin-1").split(",") if t.strip()]


def _values(headers: ev.Headers, name: bytes) -> list[bytes]:
    return [v for k, v in headers if k == name]


class DeviceWebSocketHandshake(DeviceHandshake):
    """Device side of the WebSocket opening handshake (UPL-20, 21, 24, 25, R12, R17).

    The request is built with h11 in the order of transcript C1 (wsproto's
    own client handshake draws its key from ``os.urandom`` and orders the
    fields differently); the ``101`` is checked against RFC 6455 section 4.1
    and UPL-24/R12.  Reading the answer and the refusal path are the native
    handshake's.
    """

    def __init__(
        self,
        address: RemoteAddress,
        *,
        entropy: Entropy,
        access_token: str | None = None,
        token_in_query: bool = False,
        user_agent: str | None = None,
        max_head_size: int = 16 * 1024,
    ) -> None:
        if not address.websocket:
            raise ConfigurationError(f"{address.uri!r} is not a WebSocket (wss) address")
        if token_in_query and access_token is None:
            raise ConfigurationError("token_in_query needs an access token")
        super().__init__(
            address,
            access_token=None if token_in_query else access_token,
            user_agent=user_agent,
            max_head_size=max_head_size,
        )
        self._entropy = entropy
        self._query_token = access_token if token_in_query else None
        self._key: bytes | None = None

    @property
    def key(self) -> str | None:
        """The ``Sec-WebSocket-Key`` sent (None before ``request_bytes()``)."""
        return self._key.decode("ascii") if self._key is not None else None

    def _request(self) -> tuple[str, list[tuple[str, str]]]:
        target = self.address.target
        if self._query_token is not None:
            token = self._query_token
            if not token or any(c in token for c in "\r\n\x00"):
                raise ConfigurationError("the access token is empty or holds control characters")
            query = urlsplit(target).query
            if any(p.split("=", 1)[0] == "access_token" for p in query.split("&")):
                raise ConfigurationError(
                    f"RemoteAddress {self.address.uri!r} already has an access_token parameter"
                )
            # UPL-25: RFC 6750 section 2.3, the value form-urlencoded.
            target += ("&" if query else "?") + urlencode({"access_token": token})
        self._key = base64.b64encode(_draw(self._entropy, 16))
        headers = [
            ("Host", self.address.host_header),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", self._key.decode("ascii")),
            ("Sec-WebSocket-Protocol", SUBPROTOCOL),
        ]
        # UPL-38, R17: the token in the header unless the query carries it; no extensions (R12).
        _target, common = super()._request()
        headers += [(k, v) for k, v in common if k in ("Authorization", "User-Agent")]
        return target, headers

    def _check_101(self, headers: ev.Headers) -> str | None:
        upgrade = b",".join(_values(headers, b"upgrade"))
        if _token_list(upgrade) != ["websocket"]:
            return f"WebSocket 101 without Upgrade: websocket (got {upgrade!r})"
        if "upgrade" not in _token_list(b",".join(_values(headers, b"connection"))):
            return "WebSocket 101 without Connection: Upgrade"
        assert self._key is not None
        accept = _values(headers, b"sec-websocket-accept")
        expected = accept_token(self._key).encode("ascii")
        if len(accept) != 1 or accept[0].strip() != expected:  # UPL-24
            return f"wrong Sec-WebSocket-Accept {b','.join(accept)!r} (expected {expected!r})"
        if _values(headers, b"sec-websocket-extensions"):  # we offered none (UPL-R12)
            return "the 101 selects a WebSocket extension that was not offered"
        protocols = b",".join(_values(headers, b"sec-websocket-protocol"))
        if not protocols.strip():  # UPL-R12
            return f"the 101 selects no WebSocket sub-protocol (expected {SUBPROTOCOL})"
        if protocols.strip() != SUBPROTOCOL.encode():  # UPL-24
            return (
                f"the 101 selects sub-protocol {protocols.decode('latin-1')!r}, not {SUBPROTOCOL}"
            )
        return None


# --- opening handshake, cloud end ---------------------------------------------------------------


class CloudWebSocketHandshake:
    """Cloud side: check a device's WebSocket upgrade and build the ``101`` (UPL-22, 23).

    Built from the request :class:`~uplink62676.handshake.CloudHandshake`
    already parsed (tolerantly); wsproto's server handshake checks the RFC
    6455 fields.  Raises :class:`RemoteProtocolError` with ``http_status``
    (400, or 426 for another ``Sec-WebSocket-Version``) for a request to
    refuse, including one that does not offer ``h2c-reverse``.
    """

    def __init__(self, parsed: ParsedUpgrade) -> None:
        self._hs = H11Handshake(ConnectionType.SERVER)
        headers = list(parsed.headers)
        if parsed.host is None:  # a tolerated request without Host
            headers.insert(0, (b"host", b""))
        try:
            self._hs.initiate_upgrade_connection(headers, parsed.target.encode("latin-1"))
            request = next(iter(self._hs.events()), None)
        except wsproto.utilities.RemoteProtocolError as exc:
            hint = exc.event_hint
            status = hint.status_code if isinstance(hint, wse.RejectConnection) else 400
            raise RemoteProtocolError(f"WebSocket upgrade: {exc}", http_status=status) from None
        except (
            wsproto.utilities.ProtocolError,
            h11.ProtocolError,
            UnicodeError,
            ValueError,
        ) as exc:
            raise RemoteProtocolError(f"WebSocket upgrade: {exc}", http_status=400) from None
        if not isinstance(request, wse.Request):
            raise RemoteProtocolError("WebSocket upgrade: incomplete request", http_status=400)
        key = b",".join(_values(parsed.headers, b"sec-websocket-key")).strip()
        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 16:  # RFC 6455 section 4.2.1 item 5
            raise RemoteProtocolError(
                f"Sec-WebSocket-Key {key[:40]!r} is not base64 of 16 octets", http_status=400
            )
        #: Sub-protocols the device offered, in its order.
        self.subprotocols = tuple(request.subprotocols)
        if SUBPROTOCOL not in self.subprotocols:
            raise RemoteProtocolError(
                f"the WebSocket request does not offer sub-protocol {SUBPROTOCOL} "
                f"(offered {list(self.subprotocols)})",
                http_status=400,
            )

    def switch_bytes(self, extra_headers: ev.Headers = ()) -> bytes:
        """The ``101`` selecting ``h2c-reverse``, no extensions (UPL-22, 23, R12)."""
        try:
            return self._hs.send(
                wse.AcceptConnection(subprotocol=SUBPROTOCOL, extra_headers=list(extra_headers))
            )
        except (wsproto.utilities.ProtocolError, h11.ProtocolError) as exc:
            raise LocalProtocolError(f"cannot send the WebSocket 101: {exc}") from None


# --- framing ------------------------------------------------------------------------------------


_WS_ERRORS = (wsproto.utilities.ProtocolError, ValueError, TypeError, UnicodeError)


class WebSocketFraming:
    """RFC 6455 data transfer for one end after the ``101`` (wsproto underneath).

    ``client`` is the device (masks with ``entropy``), otherwise the cloud.
    :meth:`receive_data` returns the HTTP/2 octets carried in binary
    frames (fragments and message boundaries do not matter, UPL-R13) and a
    :class:`WebSocketClosed` when the WebSocket ended; :meth:`data_to_send`
    wraps HTTP/2 octets into binary messages and adds Pongs and the Close.
    """

    def __init__(
        self,
        *,
        client: bool,
        entropy: Entropy | None = None,
        limits: WebSocketSettings | None = None,
        now: float = 0.0,
        skip_magic: bool = False,
    ) -> None:
        if client and entropy is None:
            raise ConfigurationError("the WebSocket client (device) needs an entropy source")
        self.client = client
        self.limits = limits or WebSocketSettings()
        self._entropy = entropy
        self._rx = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
        self._tx = FrameProtocol(client=False, extensions=[])  # masked by us on the device
        self._control = TokenBucket(self.limits.control_burst, self.limits.control_rate, now)
        self._message = 0
        self._out = bytearray()
        self._close_pending: tuple[int | None, str | None] | None = None
        self._skip_magic = skip_magic  # the cloud's first output starts with the 24-octet magic
        self.close_sent = False
        self.close_received = False
        #: This end failed the connection (a protocol violation of the peer).
        self.failed = False

    @property
    def closed(self) -> bool:
        """Nothing more can be received: Close received, or this end failed the connection."""
        return self.close_received or self.failed

    # --- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> tuple[bytes, WebSocketClosed | None]:
        """Unwrap WebSocket frames: returns the HTTP/2 octets carried and a close event if the
        socket ended.
        """
        if self.closed or not data:
            return b"", None
        parts: list[bytes | bytearray] = []
        try:
            self._rx.receive_data(data)
            for event in self._rx.events():
                if isinstance(event, wse.BytesMessage):
                    size = len(event.data)
                    if size == 0 and not self._control.take(now):
                        return b"".join(parts), self._fail(
                            CloseReason.POLICY_VIOLATION, "flood of empty WebSocket frames"
                        )
                    self._message += size
                    limit = self.limits.max_message_size
                    if limit is not None and self._message > limit:
                        return b"".join(parts), self._fail(
                            CloseReason.MESSAGE_TOO_BIG,
                            f"WebSocket message larger than {limit} octets",
                        )
                    if event.message_finished:
                        self._message = 0
                    parts.append(event.data)
                elif isinstance(event, wse.TextMessage):  # UPL-R13
                    return b"".join(parts), self._fail(
                        CloseReason.UNSUPPORTED_DATA, "text frame (HTTP/2 travels in binary frames)"
                    )
                elif isinstance(event, wse.Ping | wse.Pong):
                    if not self._control.take(now):
                        return b"".join(parts), self._fail(
                            CloseReason.POLICY_VIOLATION, "WebSocket Ping/Pong flood"
                        )
                    if isinstance(event, wse.Ping):  # UPL-29
                        self._emit(self._tx.pong(bytes(event.payload)))
                elif isinstance(event, wse.CloseConnection):
                    if self._rx.state is ConnectionState.OPEN:
                        # wsproto's parser failed (e.g. wrong masking, UPL-28).
                        return b"".join(parts), self._fail(int(event.code), event.reason or "")
                    self.close_received = True
                    if not self.close_sent and self._close_pending is None:
                        self._close_pending = (event.code, None)  # echo the code
                    return b"".join(parts), WebSocketClosed(
                        int(event.code), event.reason or None, by_peer=True
                    )
        except _WS_ERRORS as exc:
            return b"".join(parts), self._fail(
                CloseReason.PROTOCOL_ERROR, f"bad WebSocket data: {exc}"
            )
        return b"".join(parts), None

    def _fail(self, code: int, reason: str) -> WebSocketClosed:
        self.failed = True
        if not self.close_sent:
            self._close_pending = (code, reason[:120])
        return WebSocketClosed(code, f"WebSocket: {reason}", by_peer=False)

    # --- output ---------------------------------------------------------------------------------

    def close(self, code: int = CloseReason.NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Queue a Close; it leaves after the data handed to the next :meth:`data_to_send`."""
        if not self.close_sent and self._close_pending is None:
            self._close_pending = (code, reason)

    def data_to_send(self, h2_octets: bytes = b"") -> bytes:
        """Pongs, ``h2_octets`` as binary messages (UPL-26, R13), then a pending Close."""
        if h2_octets and not self.close_sent:
            self._wrap(h2_octets)
        if self._close_pending is not None and not self.close_sent:
            code, reason = self._close_pending
            self._close_pending = None
            self.close_sent = True
            try:
                frame = self._tx.close(code, reason)
            except (TypeError, ValueError):
                frame = self._tx.close(CloseReason.NORMAL_CLOSURE)
            self._emit(frame)
        out = bytes(self._out)
        self._out.clear()
        return out

    def _emit(self, frame: bytearray) -> None:
        if self.close_sent and frame[0] & 0x0F != 0x8:
            return  # nothing after our Close (RFC 6455 section 5.5.1)
        if not self.client:
            self._out += frame  # UPL-28: the cloud never masks
            return
        # UPL-27: a fresh key per frame; the unmasked header is 2, 4 or 10 octets.
        short = frame[1] & 0x7F
        head = 2 + (2 if short == 126 else 8 if short == 127 else 0)
        assert self._entropy is not None
        key = _draw(self._entropy, 4)
        frame[1] |= 0x80
        self._out += frame[:head]
        self._out += key
        self._out += XorMaskerSimple(key).process(frame[head:])

    def _wrap(self, data: bytes) -> None:
        """Cut at HTTP/2 frame boundaries into messages of at most ``max_outbound_message``."""
        limit = self.limits.max_outbound_message
        n = len(data)
        if n <= limit and not self._skip_magic:
            self._emit(self._tx.send_data(data))
            return
        view = memoryview(data)
        start = pos = 0
        if self._skip_magic and data.startswith(PREFACE_MAGIC):
            pos = len(PREFACE_MAGIC)
        self._skip_magic = False
        while pos < n:
            if n - pos < 9:
                pos = n  # not a whole frame header: goes with the rest
                break
            end = pos + 9 + int.from_bytes(data[pos : pos + 3], "big")
            if end - start > limit and pos > start:
                self._emit(self._tx.send_data(bytes(view[start:pos])))
                start = pos
            pos = min(end, n)
        if start < n:
            self._emit(self._tx.send_data(bytes(view[start:n])))


# --- the tunnel in WebSocket frames -------------------------------------------------------------


class WebSocketTunnel(Tunnel):
    """A :class:`~uplink62676.tunnel.Tunnel` whose octets travel in WebSocket frames.

    ``receive_data`` takes WebSocket octets, ``data_to_send`` returns them;
    everything else is the tunnel's.  Teardown (UPL-R14): when the HTTP/2
    connection ends -- GOAWAY with an error, or a drained NO_ERROR GOAWAY
    with no stream left -- the Close follows the GOAWAY.  A WebSocket Close
    from the peer ends the HTTP/2 connection.  A dead link (the uplink sets
    ``closed``) gets no Close: it is just closed.
    """

    def __init__(
        self,
        role: Role,
        settings: DeviceSettings | CloudSettings,
        *,
        now: float = 0.0,
        manual_flow_control: bool = False,
        entropy: Entropy | None = None,
        limits: WebSocketSettings | None = None,
    ) -> None:
        self.framing = WebSocketFraming(
            client=role is Role.DEVICE,
            entropy=entropy,
            limits=limits,
            now=now,
            skip_magic=role is Role.CLOUD,
        )
        super().__init__(role, settings, now=now, manual_flow_control=manual_flow_control)

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed WebSocket octets; the HTTP/2 octets inside go to the tunnel, events come back."""
        if self.closed or self.framing.closed:
            return []
        octets, closed = self.framing.receive_data(data, now)
        out = super().receive_data(octets, now) if octets else []
        if self.closed and closed is None:
            self.framing.close()  # the tunnel failed or got a GOAWAY with an error
        if closed is None:
            return out
        if not closed.by_peer:
            if not self.closed:
                # UPL-R14: GOAWAY before the Close, also when the WebSocket failed.
                super().close(ErrorCode.PROTOCOL_ERROR, closed.reason)
                out.append(
                    ev.ConnectionTerminated(
                        ErrorCode.PROTOCOL_ERROR,
                        self.highest_stream_id,
                        by_peer=False,
                        reason=closed.reason,
                    )
                )
            self.close_reason = closed.reason
        else:
            if not self.closed and not self.draining:
                out.append(
                    ev.ConnectionTerminated(
                        ErrorCode.NO_ERROR,
                        None,
                        by_peer=True,
                        reason=f"WebSocket Close {closed.code} without GOAWAY",
                    )
                )
            if self.close_reason is None:
                self.close_reason = f"WebSocket closed by the peer ({closed.code})"
        self.closed = True
        out.append(closed)
        return out

    def close(self, error_code: int = ErrorCode.NO_ERROR, reason: str | None = None) -> None:
        super().close(error_code, reason)
        if self.closed:
            self.framing.close()  # after the GOAWAY (UPL-R14)

    def data_to_send(self) -> bytes:
        """Drain the WebSocket frames to write; once drained after a GOAWAY, the Close follows."""
        h2_octets = super().data_to_send()
        if self.draining and not self.closed and self.open_streams == 0:
            self.framing.close()  # drained: GOAWAY went out, now the Close (UPL-R14)
        return self.framing.data_to_send(h2_octets)


def __getattr__(name: str) -> object:
    """Old names of renamed classes still resolve, with a DeprecationWarning."""
    from ._moved import renamed

    return renamed(__name__, name)
