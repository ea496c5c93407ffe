"""Tunable limits and timers of the uplink state machines, with safe defaults.

One settings object per end instead of many keyword arguments (the h2 habit).
The defaults reproduce the byte-exact transcript of uplink.md section 11 A:
the device advertises only ``MAX_CONCURRENT_STREAMS = 16`` and
``ENABLE_CONNECT_PROTOCOL = 1``; the cloud only ``ENABLE_PUSH = 0``.  Limits
that are not advertised (header list size, flood counters) are still enforced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from .errors import ConfigurationError

__all__ = ["CloudSettings", "DeviceSettings", "FloodSettings", "LivenessSettings"]


def _positive(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{attr.name} must be a positive number, got {value!r}")


def _window(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise ConfigurationError(f"{attr.name} must be in 1..2**31-1, got {value!r}")


def _frame_size(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or not 16384 <= value <= 2**24 - 1:
        raise ConfigurationError(f"{attr.name} must be in 16384..16777215, got {value!r}")


def _seconds_tuple(value: Iterable[float]) -> tuple[float, ...]:
    return tuple(value)


@attrs.frozen(slots=True)
class FloodSettings:
    """Counters against the known HTTP/2 floods (design.md, security shape).

    Rates are token buckets: ``*_burst`` events at once, then ``*_rate`` per
    second.  Crossing any limit ends the connection with GOAWAY
    ``ENHANCE_YOUR_CALM`` (0xb) instead of growing memory or burning CPU.
    """

    #: RST_STREAM frames received (rapid reset, CVE-2023-44487).
    reset_burst: int = attrs.field(default=200, validator=_positive)
    reset_rate: float = attrs.field(default=33.0, validator=_positive)
    #: PING, SETTINGS and PRIORITY frames received (CVE-2019-9512/9515/9513).
    control_burst: int = attrs.field(default=500, validator=_positive)
    control_rate: float = attrs.field(default=100.0, validator=_positive)
    #: Empty DATA/HEADERS/CONTINUATION without END_STREAM and unknown frames
    #: (CVE-2019-9518).
    empty_burst: int = attrs.field(default=200, validator=_positive)
    empty_rate: float = attrs.field(default=50.0, validator=_positive)
    #: Entries in one SETTINGS frame (CVE-2020-11080; nghttp2 uses 32).
    max_settings_entries: int = attrs.field(default=32, validator=_positive)
    #: CONTINUATION frames in one header block (the 2024 CONTINUATION flood).
    max_continuation_frames: int = attrs.field(default=8, validator=_positive)
    #: Octets of one compressed header block (HEADERS + CONTINUATIONs).
    max_header_block: int = attrs.field(default=64 * 1024, validator=_positive)
    #: Octets queued for the peer that the peer did not read yet, above which
    #: control frames that would add more (PING/SETTINGS ACKs) end the link.
    max_pending_output: int = attrs.field(default=1024 * 1024, validator=_positive)


@attrs.frozen(slots=True)
class LivenessSettings:
    """Timers of UPL-45..49 and UPL-R4, R23 (seconds).

    ``ping_after``: receive silences after which the device sends a PING.
    ``dead_after``: silence after which the link is declared lost (the 30 s
    rule is "more than 30 s", so the check fires strictly after it).
    ``handshake_timeout``: bound of upgrade + first SETTINGS (UPL-R4).
    """

    ping_after: tuple[float, ...] = attrs.field(default=(10.0, 20.0), converter=_seconds_tuple)
    dead_after: float = attrs.field(default=30.0, validator=_positive)
    handshake_timeout: float = attrs.field(default=30.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if any(not isinstance(p, int | float) or p <= 0 for p in self.ping_after):
            raise ConfigurationError(
                f"ping_after must hold positive numbers, got {self.ping_after!r}"
            )
        if list(self.ping_after) != sorted(self.ping_after):
            raise ConfigurationError(f"ping_after must ascend, got {self.ping_after!r}")
        if self.ping_after and self.ping_after[-1] >= self.dead_after:
            raise ConfigurationError(
                f"every PING must come before dead_after={self.dead_after!r}, "
                f"got {self.ping_after!r}"
            )


@attrs.frozen(slots=True)
class _H2Common:
    initial_window_size: int = attrs.field(default=65535, validator=_window)
    max_frame_size: int = attrs.field(default=16384, validator=_frame_size)
    #: Enforced on decoded header lists (names + values + 32 per field).
    max_header_list_size: int = attrs.field(default=16 * 1024, validator=_positive)
    #: Also advertise SETTINGS_MAX_HEADER_LIST_SIZE (off: keeps the preface minimal).
    advertise_header_list_size: bool = False
    #: Extra connection-level receive window opened right after the preface.
    connection_window_increment: int = attrs.field(default=0)
    #: Upgrade head (request or response) limit in octets (8-16 KiB).
    max_head_size: int = attrs.field(default=16 * 1024, validator=_positive)
    floods: FloodSettings = attrs.field(factory=FloodSettings)
    liveness: LivenessSettings = attrs.field(factory=LivenessSettings)


@attrs.frozen(slots=True)
class DeviceSettings(_H2Common):
    """Settings of the device (HTTP/2 server) end.

    ``max_concurrent_streams`` is advertised (design: 16-32, it serves one
    cloud); ``enable_connect_protocol`` advertises RFC 8441 (UPL-57).
    """

    max_concurrent_streams: int = attrs.field(default=16, validator=_positive)
    enable_connect_protocol: bool = True
    user_agent: str | None = None


@attrs.frozen(slots=True)
class CloudSettings(_H2Common):
    """Settings of the cloud (HTTP/2 client) end.

    Of ``liveness`` only ``handshake_timeout`` applies.  A live device is never
    silent for long: it PINGs after 10 s and 20 s of silence itself (UPL-47).
    So after ``idle_ping_after`` seconds of receive silence the cloud PINGs the
    device, and after more than ``idle_timeout`` seconds (default 35) it drops
    the uplink as hung, without waiting for a GOAWAY; requests to it then fail
    at once.  ``idle_timeout=None`` turns the probe off.
    """

    idle_timeout: float | None = attrs.field(default=35.0)
    idle_ping_after: tuple[float, ...] = attrs.field(default=(15.0, 25.0),
                                                   converter=_seconds_tuple)

    @idle_timeout.validator
    def _check_idle(self, _attribute: object, value: float | None) -> None:
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            raise ConfigurationError(f"idle_timeout must be positive or None, got {value!r}")

    def probe(self) -> LivenessSettings | None:
        """The receive-silence probe as liveness settings (PINGs before ``idle_timeout``)."""
        if self.idle_timeout is None:
            return None
        pings = tuple(p for p in self.idle_ping_after if 0 < p < self.idle_timeout)
        return LivenessSettings(ping_after=pings, dead_after=self.idle_timeout)


def __getattr__(name: str) -> object:
    """Old names of renamed classes still resolve, with a DeprecationWarning."""
    from ._moved import renamed

    return renamed(__name__, name)
