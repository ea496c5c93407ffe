"""Crash-safe file replacement: temporary file, fsync, rename, directory fsync.

After a crash at any moment the file holds either its old or its new bytes,
never a mix.  :class:`~uplink62676.io.store.ConfigStore` keeps the same
discipline; the device-port store (:mod:`.portstore`) uses these helpers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Final

__all__ = ["TMP_SUFFIX", "atomic_write", "move_aside", "remove_stale_temporaries"]

TMP_SUFFIX: Final = ".tmp"


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (the directory is created); raises OSError."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp: str | None = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=TMP_SUFFIX)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def remove_stale_temporaries(path: str) -> None:
    """Remove what interrupted :func:`atomic_write` calls of ``path`` left behind."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(TMP_SUFFIX):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def move_aside(path: str) -> str | None:
    """Rename an unreadable ``path`` to ``<path>.corrupt-<n>``; returns the new name or None."""
    for n in range(1, 10_000):
        target = f"{path}.corrupt-{n}"
        if os.path.lexists(target):
            continue
        try:
            os.rename(path, target)
        except OSError:
            return None
        return target
    return None
