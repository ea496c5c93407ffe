"""What the adapters report to an observer: metrics and tracing stay out of the core.

An adapter with an ``observer`` (a callable, None by default) calls it with
every event its state machines give it (:mod:`uplink62676.events`:
``Connected``, ``ConnectionTerminated``, ``UpgradeRefused``,
``PingAcknowledged``, ``LinkLost``, ``ResponseReceived``, front-door
``RequestRouted`` / ``RequestRefused``, ...) and with the records below,
which only an adapter can see.  An observer must be quick and
must not raise: it runs on the adapter's I/O path.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..events import Event
from ..status import Status

__all__ = ["AttemptStarted", "Observation", "Observer", "RequestDone", "Transferred",
           "UplinkStatusChanged"]


@attrs.frozen(slots=True)
class Transferred:
    """``size`` octets of an uplink read (``"in"``) or written (``"out"``), inside TLS."""

    direction: str
    size: int


@attrs.frozen(slots=True)
class RequestDone:
    """A tunneled request reached its answer: ``status`` (None: failed) after ``seconds``.

    In the cloud the time runs from sending the request to the response head;
    in a device, from the request head to the handler's response.
    """

    status: int | None
    seconds: float


@attrs.frozen(slots=True)
class AttemptStarted:
    """A device begins a connection attempt of the uplink to ``remote_address``."""

    remote_address: str


@attrs.frozen(slots=True)
class UplinkStatusChanged:
    """A device's uplink to ``remote_address`` has a new Status / Error (UPL-R27)."""

    remote_address: str
    status: Status
    error: str | None


#: Everything an observer is called with.
Observation = Event | Transferred | RequestDone | AttemptStarted | UplinkStatusChanged
#: The hook: ``observer(observation)``.
Observer = Callable[[Observation], None]
