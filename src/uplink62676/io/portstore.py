"""The device-port leases on disk, crash-safe (adapter level, beside the broker).

One JSON file (:mod:`uplink62676.frontdoor.portformat`) written with
:func:`~uplink62676.io.atomic.atomic_write`, so a broker killed at any moment
restarts with the old or the new table and every device finds its port.  A
file that cannot be read is moved aside to ``<name>.corrupt-<n>`` and the
broker starts with no leases (devices get ports again, lowest first) -- a lost
table costs stable ports, not the broker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from ..errors import ConfigStoreError, ConfigurationError
from ..frontdoor.portformat import MAX_PORT_FILE_BYTES, decode_leases, encode_leases
from ..frontdoor.ports import PortLease
from ..storeformat import NewerFormatError
from .atomic import atomic_write, move_aside, remove_stale_temporaries

__all__ = ["PORT_FILE_NAME", "PortStore"]

#: The file's name in the state directory.
PORT_FILE_NAME = "device-ports.json"

log = logging.getLogger("uplink62676.expose")


class PortStore:
    """Reads and atomically replaces one device-port file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"PortStore({self.path!r})"

    def load(self) -> list[PortLease]:
        """The stored leases; [] for a missing file, or (moved aside, logged) a corrupt one.

        A file of a newer format raises :class:`ConfigStoreError` and is left in place.
        """
        remove_stale_temporaries(self.path)
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_PORT_FILE_BYTES + 1)
        except FileNotFoundError:
            return []
        except OSError as exc:
            return self._corrupt(f"cannot read it: {exc.strerror or exc}")
        try:
            return decode_leases(data)
        except NewerFormatError as exc:
            raise ConfigStoreError(f"{self.path}: {exc}", path=self.path) from None
        except ConfigurationError as exc:
            return self._corrupt(str(exc))

    def _corrupt(self, why: str) -> list[PortLease]:
        moved = move_aside(self.path)
        log.warning("device-port file %s is unusable (%s); %s; starting with no port leases",
                    self.path, why, f"moved aside to {moved}" if moved else "could not move it")
        return []

    def save(self, leases: Iterable[PortLease], port_range: tuple[int, int]) -> None:
        """Replace the file atomically; ConfigStoreError (old file intact) when that fails."""
        try:
            atomic_write(self.path, encode_leases(leases, port_range))
        except OSError as exc:
            raise ConfigStoreError(f"cannot save {self.path}: {exc.strerror or exc}",
                                   path=self.path) from exc
