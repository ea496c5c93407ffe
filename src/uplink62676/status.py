"""Status of one uplink as the configuration service reports it (UPL-R27, CFG-3)."""

from __future__ import annotations

import enum

from .errors import ConfigurationError

__all__ = ["Status"]


class Status(enum.Enum):
    """``tup:Configuration/Status``: ``Offline``, ``Connecting`` or ``Connected``.

    ``Online`` (the older prose name, OQ-7) is accepted by :meth:`parse` as a
    synonym of ``Connected``; we always emit ``Connected``.
    """

    OFFLINE = "Offline"
    CONNECTING = "Connecting"
    CONNECTED = "Connected"

    @classmethod
    def parse(cls, text: str) -> Status:
        value = text.strip()
        if value == "Online":
            return cls.CONNECTED
        for member in cls:
            if member.value == value:
                return member
        raise ConfigurationError(
            f"unknown uplink status {text!r} (expected Offline, Connecting, Connected)"
        )

    def __str__(self) -> str:
        return self.value
