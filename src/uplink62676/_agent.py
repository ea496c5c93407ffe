"""What the asyncio and threaded device agents share: protocol decisions, no I/O.

Both :class:`uplink62676.aio.DeviceAgent` and :class:`uplink62676.threaded.DeviceAgent`
move bytes in their own way; the request head they hand to an application,
the reconnect schedule of an uplink, its ``(Status, Error)`` bookkeeping and
how one attempt's state machine is set up are the same and live here once.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import Protocol

from . import events as ev
from .handshake import RemoteAddress
from .liveness import ReconnectSchedule
from .settings import DeviceSettings
from .status import Status as UplinkStatus
from .uplink import DeviceUplink


class UplinkSpecLike(Protocol):
    """What the agent core reads of an uplink spec (:class:`uplink62676.io.common.UplinkSpec`)."""

    @property
    def remote_address(self) -> str: ...
    @property
    def address(self) -> RemoteAddress: ...
    @property
    def insecure_plaintext(self) -> bool: ...
    @property
    def user_level(self) -> tuple[str, ...]: ...
    def token(self) -> str | None: ...

#: TLS 1.3 servers judge the client certificate after the client's handshake
#: is done; a refusal then shows up as a silent close (asyncio servers send no alert).
_SILENT_CLOSE = ("TLS: cloud closed the connection after the handshake "
                 "(client certificate missing or not accepted)")


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """First value of header ``name`` (lower-case bytes) or None."""
    for k, v in headers:
        if k == name:
            return v
    return None


def closed_before_upgrade(tls: bool) -> str:
    """Why the uplink failed when the cloud closed before answering the upgrade."""
    return _SILENT_CLOSE if tls else "connection closed by the cloud before answering the upgrade"


def default_schedule(identity: str) -> ReconnectSchedule:
    """The reconnect schedule of one uplink, seeded by device and uplink (UPL-50)."""
    return ReconnectSchedule(identity=identity)


class RequestHead:
    """The head of a tunneled request and the uplink it came through (UPL-4, UPL-41)."""

    def __init__(self, event: ev.RequestReceived, user_level: tuple[str, ...],
                 remote_address: str) -> None:
        self.stream_id = event.stream_id
        self.method = event.method
        self.path = event.path
        self.scheme = event.scheme
        self.authority = event.authority
        self.headers = event.headers
        self.protocol = event.protocol
        self.content_length = event.content_length
        self.user_level = user_level
        self.remote_address = remote_address

    def __repr__(self) -> str:
        return (f"TunneledRequest({self.method} {self.path} stream={self.stream_id} "
                f"user_level={' '.join(self.user_level)})")

    def header(self, name: str) -> str | None:
        value = header_value(self.headers, name.lower().encode())
        return value.decode("latin-1") if value is not None else None


class RunnerState(abc.ABC):
    """Status, Error, attempts and reconnect schedule of one uplink (UPL-50, UPL-R27).

    The adapter's runner subclasses this and provides :meth:`set_status`.
    """

    def __init__(self, identity: str, spec: UplinkSpecLike,
                 schedule_factory: Callable[[str], ReconnectSchedule]) -> None:
        self.spec = spec
        self.schedule = schedule_factory(f"{identity}|{spec.remote_address}")
        self.status = UplinkStatus.OFFLINE
        self.error: str | None = None
        self.attempts = 0

    @abc.abstractmethod
    def set_status(self, status: UplinkStatus, error: str | None) -> None:
        """Record and publish a new ``(Status, Error)`` (the adapter decides how)."""

    def _record_status(self, status: UplinkStatus, error: str | None) -> bool:
        """Take a new ``(Status, Error)``; False when nothing changed."""
        if status is self.status and error == self.error:
            return False
        self.status, self.error = status, error
        return True

    def new_uplink(self, settings: DeviceSettings, clock: Callable[[], float],
                   entropy: Callable[[int], bytes]) -> DeviceUplink | None:
        """A started state machine for the next attempt; None without an access token."""
        spec = self.spec
        try:
            token = spec.token()
        except Exception as exc:
            self.set_status(UplinkStatus.OFFLINE, f"no access token: {exc.__class__.__name__}")
            return None
        uplink = DeviceUplink(spec.address, settings=settings, access_token=token,
                              manual_flow_control=True, allow_plaintext=spec.insecure_plaintext,
                              entropy=entropy)  # WebSocket key and masks (UPL-21, UPL-27)
        for e in uplink.start(clock()):
            if isinstance(e, ev.StatusChanged):
                self.set_status(e.status, e.error)
        return uplink

    def attempt_ended(self, uplink: DeviceUplink) -> None:
        """After an attempt's connection closed: OFFLINE with the uplink's reason."""
        if uplink.status is not UplinkStatus.OFFLINE:
            self.set_status(UplinkStatus.OFFLINE, uplink.error or "connection closed")
