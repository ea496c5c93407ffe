"""Limits and timers of one front-door client connection (seconds, octets)."""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import ConfigurationError
from ..settings import DeviceSettings

__all__ = ["FrontDoorSettings"]


def _positive(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{attr.name} must be a positive number, got {value!r}")


def _http2_default() -> DeviceSettings:
    # An HTTP/2 server for many ordinary clients, not for one cloud: more
    # streams (UPL-R22 allows up to 100), no RFC 8441 CONNECT.
    return DeviceSettings(max_concurrent_streams=100, enable_connect_protocol=False)


@attrs.frozen(slots=True)
class FrontDoorSettings:
    """``http2``: the hardened tunnel's settings for the HTTP/2 side (flood limits included).

    HTTP/1.1: ``max_head_size`` bounds a request head (431 beyond it);
    ``idle_timeout`` closes a connection that sends nothing (before its first
    request or between keep-alive requests); ``head_timeout`` bounds the
    time from the first octet of a head to its end (408); ``body_idle_timeout``
    bounds a silence inside a request body while the front door is reading
    (408 or close); ``body_window`` is how many unacknowledged body octets
    make the connection stop asking for more (``wants_data``), the HTTP/1.1
    twin of an HTTP/2 window.  An HTTP/2 connection without streams is closed
    (GOAWAY NO_ERROR) after ``idle_timeout``.

    ``max_requests_per_client``: requests one client address may have in
    flight across all its connections (:class:`~.limits.ClientLimits`); past it,
    503 with ``Retry-After: retry_after`` (HTTP/1.1) or REFUSED_STREAM (HTTP/2).
    128 by default: one full HTTP/2 connection (100 streams) and more, so a
    load generator or a NAT of several clients is not cut off, while a client
    opening connection after connection is.
    """

    http2: DeviceSettings = attrs.field(factory=_http2_default)
    max_head_size: int = attrs.field(default=16 * 1024, validator=_positive)
    idle_timeout: float = attrs.field(default=120.0, validator=_positive)
    head_timeout: float = attrs.field(default=30.0, validator=_positive)
    body_idle_timeout: float = attrs.field(default=60.0, validator=_positive)
    body_window: int = attrs.field(default=256 * 1024, validator=_positive)
    max_requests_per_client: int = attrs.field(default=128, validator=_positive)
    retry_after: int = attrs.field(default=1, validator=_positive)
