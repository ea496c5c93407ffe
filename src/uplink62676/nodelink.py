"""The HTTP/2 client end of a link between two cloud nodes, sans-I/O.

A cluster node forwards a request for a device held by another node over one
pooled HTTP/2 connection to that node's internal front door (h2 with prior
knowledge, over mTLS or loopback).  :class:`NodeLinkClient` is a
:class:`~uplink62676.uplink.CloudUplink` that starts in the HTTP/2 phase (no
upgrade handshake: the connecting node is the client, as HTTP/2 has it), so
the cloud adapter's request machinery -- streams, flow control, stream slots,
GOAWAY -- serves both kinds of connection unchanged.
"""

from __future__ import annotations

from . import events as ev
from .settings import CloudSettings
from .tunnel import Role, Tunnel
from .uplink import CloudUplink, Phase

__all__ = ["NodeLinkClient"]


class NodeLinkClient(CloudUplink):
    """An HTTP/2 client connection to a peer node; the preface is queued at once.

    The ``Connected`` event of an uplink (a device's first SETTINGS) is not
    reported: no device is behind this connection, only a node.
    """

    def __init__(self, *, settings: CloudSettings | None = None, now: float = 0.0) -> None:
        super().__init__(settings=settings, now=now, manual_flow_control=True)
        self._tunnel = Tunnel(Role.CLOUD, self.settings, now=now, manual_flow_control=True)
        self._phase = Phase.HTTP2
        self._started = True
        self.default_authority = "node.invalid"

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        return [e for e in super().receive_data(data, now) if type(e) is not ev.Connected]

    def next_deadline(self) -> float | None:
        return None  # the link lives as long as its TCP connection; requests carry timeouts
